# Copyright 2026 The vis-mae-hf developers. Licensed under the Apache License, Version 2.0.
"""VIS-MAE configuration.

One config describes the whole family (pretraining MAE, encoder, classifier, Swin-Unet segmenter). The defaults are
the published *pretraining* model: Swin-T widths with depths (2, 2, 2, 2), window 7, LayerNorm eps 1e-6, a symmetric
Swin decoder, 75 % masking in 16x16-pixel units. Field names follow `SwinConfig` wherever the concept exists there.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers.activations import ACT2FN
from transformers.backbone_utils import BackboneConfigMixin
from transformers.configuration_utils import PreTrainedConfig

# Sane bounds, far beyond any published Swin or VIS-MAE model (Swin-L: 18 blocks in its deepest stage, widest stage
# 1536, window 7 or 12, MLP ratio 4), so that a typo or a hostile config.json is refused here, naming its field,
# instead of allocating gigabytes or building layers for minutes before anything else can fail.
MAX_IMAGE_SIDE = 4096  # px per side: tokens grow with the area (1 M at 4096 px, patch 4); tile larger images
MAX_STAGES = 8  # each stage halves the feature map, so 8 stages already need sides divisible by patch_size * 128
MAX_BLOCKS_PER_STAGE = 64
MAX_STAGE_WIDTH = 16384  # channels of the widest stage, embed_dim * 2**(stages - 1)
MAX_HEADS_PER_STAGE = 256
MAX_WINDOW_SIZE = 64  # each block's relative position table has (2 * window - 1)**2 rows per head
MAX_NUM_CHANNELS = 64  # grey, RGB, a few MR sequences stacked: a larger count is a misread config
MAX_MLP_RATIO = 16.0


@strict
class VisMaeConfig(BackboneConfigMixin, PreTrainedConfig):
    r"""
    Args:
        image_size (`int` or `(height, width)`, defaults to 224):
            Nominal input size. Any height and width that are multiples of `patch_size * 2 ** (len(depths) - 1)`
            (32 by default) work; this size is what the image processor resizes to and what default masks are drawn
            for. At most `MAX_IMAGE_SIDE` (4096) px per side: larger images are tiled by the caller.
        patch_size (`int`, defaults to 4): Side of the square patch each token embeds.
        num_channels (`int`, defaults to 3): Input channels (the published models repeat grey images to 3; a 1-channel
            model is possible).
        embed_dim (`int`, defaults to 96): Width of stage 0; stage `i` has width `embed_dim * 2**i`.
        depths (`list[int]`, defaults to `(2, 2, 2, 2)`): Swin blocks per encoder stage. The published segmentation
            model uses `(2, 2, 6, 2)`.
        num_heads (`list[int]`, defaults to `(3, 6, 12, 24)`): Attention heads per encoder stage.
        window_size (`int`, defaults to 7): Side of the attention windows; maps that are not a multiple of it are
            zero-padded bottom/right (the published behaviour).
        mlp_ratio (`float`, defaults to 4.0): MLP hidden width as a multiple of the block width.
        qkv_bias (`bool`, defaults to `True`): Bias in the fused query/key/value projection.
        hidden_act (`str`, defaults to `"gelu"`): MLP activation.
        hidden_dropout_prob (`float`, defaults to 0.0): Dropout after the attention projection and in the MLP.
        attention_probs_dropout_prob (`float`, defaults to 0.0): Dropout on attention probabilities.
        drop_path_rate (`float`, defaults to 0.1): Stochastic depth, linearly spaced over the encoder blocks; each
            decoder stage reuses the rates of the encoder stage of the same width.
        layer_norm_eps (`float`, defaults to 1e-6): Epsilon of every LayerNorm.
        initializer_range (`float`, defaults to 0.02): Std of the truncated normal used for fresh weights.
        shift_single_window_stages (`bool`, defaults to `True`): Keep the shifted-window blocks shifting (with the
            region mask) in stages whose feature map fits in a single window (the 7x7 map at 224). The published
            VIS-MAE does; reference Swin/timm switch the shift off there. `True` is needed to reproduce published
            checkpoints.
        mask_ratio (`float`, defaults to 0.75): Fraction of mask units replaced by the mask token in pretraining.
        mask_unit_size (`int`, defaults to 16): Side, in pixels, of the square unit that is masked as a whole
            (4x4 tokens of 4x4 pixels in the published model).
        decoder_depths (`list[int]`, *optional*): Blocks per decoder up-stage (widest first). `None` mirrors the
            encoder: `depths[-2::-1]`.
        decoder_num_heads (`list[int]`, *optional*): Heads per decoder up-stage. `None` mirrors the encoder:
            `num_heads[-2::-1]`.
        norm_pix_loss (`bool`, defaults to `False`): Normalise each target patch by its own mean and std (MAE option;
            off in VIS-MAE).
        segmentation_ce_weight (`float`, defaults to 0.4): Weight of cross-entropy in the segmentation loss.
        segmentation_dice_weight (`float`, defaults to 0.6): Weight of soft Dice in the segmentation loss.
        dice_include_background (`bool`, defaults to `False`): Whether class 0 enters the Dice loss. The published
            loss skipped the background but divided by all classes; we average over the classes that enter, so the
            Dice term is a true mean and its weight means what it says.
        semantic_loss_ignore_index (`int`, defaults to 255): Label value ignored by both segmentation loss terms.
        out_features (`list[str]`, *optional*): Backbone only (`VisMaeBackbone`): the stages whose feature maps it
            returns, named from `stage_names` (`"stem"`, the patch embeddings, then `"stage1"` ... one per encoder
            stage). Not given (nor `out_indices`): every encoder stage, `["stage1", ..., "stage4"]`, the pyramid a
            segmentation head takes. Given as `None` with `out_indices` `None`: the last stage, as Transformers'
            backbones read it.
        out_indices (`list[int]`, *optional*): The same stages by index into `stage_names`; give either or both.
        apply_layernorm (`bool`, defaults to `False`): Backbone only: a fresh LayerNorm on each returned feature map.
            Off, the maps are the pretrained encoder's own stage outputs.
    """

    model_type = "vis_mae"
    attribute_map = {"num_attention_heads": "num_heads", "num_hidden_layers": "num_layers"}

    image_size: int | list[int] | tuple[int, int] = 224
    patch_size: int = 4
    num_channels: int = 3
    embed_dim: int = 96
    depths: list[int] | tuple[int, ...] = (2, 2, 2, 2)
    num_heads: list[int] | tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float | int = 4.0
    qkv_bias: bool = True
    hidden_act: str = "gelu"
    hidden_dropout_prob: float | int = 0.0
    attention_probs_dropout_prob: float | int = 0.0
    drop_path_rate: float | int = 0.1
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    shift_single_window_stages: bool = True
    mask_ratio: float = 0.75
    mask_unit_size: int = 16
    decoder_depths: list[int] | tuple[int, ...] | None = None
    decoder_num_heads: list[int] | tuple[int, ...] | None = None
    norm_pix_loss: bool = False
    segmentation_ce_weight: float | int = 0.4
    segmentation_dice_weight: float | int = 0.6
    dice_include_background: bool = False
    semantic_loss_ignore_index: int = 255
    apply_layernorm: bool = False
    _out_features: list[str] | None = None
    _out_indices: list[int] | None = None

    def __post_init__(self, **kwargs):
        # JSON round trips turn tuples into lists; keep one type so saved and loaded configs compare equal.
        self.depths = list(self.depths)
        self.num_heads = list(self.num_heads)
        if isinstance(self.image_size, (list, tuple)):
            self.image_size = list(self.image_size)
        if self.decoder_depths is not None:
            self.decoder_depths = list(self.decoder_depths)
        if self.decoder_num_heads is not None:
            self.decoder_num_heads = list(self.decoder_num_heads)
        self.num_layers = len(self.depths)
        # Width of the last stage: what pipelines and VisionEncoderDecoder read as the model's hidden size.
        self.hidden_size = int(self.embed_dim * 2 ** (len(self.depths) - 1))
        self._set_backbone_stages(kwargs)
        super().__post_init__(**kwargs)

    def _set_backbone_stages(self, kwargs: dict) -> None:
        """`stage_names` from `depths` (a saved list is ignored: it could disagree), then the backbone's stages."""
        kwargs.pop("stage_names", None)
        self.stage_names = ["stem"] + [f"stage{index}" for index in range(1, len(self.depths) + 1)]
        selected = "out_features" in kwargs or "out_indices" in kwargs
        out_features, out_indices = kwargs.pop("out_features", None), kwargs.pop("out_indices", None)
        if not selected:
            # Every stage: the feature pyramid a segmentation head (UperNet, Swin-Unet) takes. Explicit `None`s keep
            # Transformers' meaning (the last stage), which its backbone tests and `config.out_features = None` use.
            out_features = self.stage_names[1:]
        try:
            self.set_output_features_output_indices(out_features=out_features, out_indices=out_indices)
        except ValueError as error:
            raise ValueError(f"VisMaeConfig.out_features/out_indices: {error}") from None

    # ----------------------------------------------------------------------------------------------------------------
    # Derived layout (kept out of the saved fields so that changing `depths` keeps the decoder symmetric)
    # ----------------------------------------------------------------------------------------------------------------
    @property
    def image_height_width(self) -> tuple[int, int]:
        if isinstance(self.image_size, int):
            return self.image_size, self.image_size
        return int(self.image_size[0]), int(self.image_size[1])

    @property
    def stage_dims(self) -> list[int]:
        return [self.embed_dim * 2**i for i in range(len(self.depths))]

    @property
    def resolved_decoder_depths(self) -> list[int]:
        return list(self.decoder_depths) if self.decoder_depths is not None else list(self.depths[-2::-1])

    @property
    def resolved_decoder_num_heads(self) -> list[int]:
        return list(self.decoder_num_heads) if self.decoder_num_heads is not None else list(self.num_heads[-2::-1])

    @property
    def size_divisor(self) -> int:
        """Input height and width must be multiples of this (patching, then one halving per patch merging)."""
        return self.patch_size * 2 ** (len(self.depths) - 1)

    # ----------------------------------------------------------------------------------------------------------------
    # Validation (run by `@strict` at construction, also after `from_pretrained` kwargs are applied)
    # ----------------------------------------------------------------------------------------------------------------
    def validate_architecture(self):
        self._check_size_bounds()  # first, so that no later check computes with an absurd size
        positive_ints = {
            "patch_size": self.patch_size,
            "num_channels": self.num_channels,
            "embed_dim": self.embed_dim,
            "window_size": self.window_size,
            "mask_unit_size": self.mask_unit_size,
        }
        for name, value in positive_ints.items():
            if value < 1:
                raise ValueError(f"VisMaeConfig.{name} must be a positive integer, got {value}.")
        if len(self.depths) < 2:
            raise ValueError(f"VisMaeConfig.depths needs at least 2 stages (encoder and decoder), got {self.depths}.")
        if len(self.num_heads) != len(self.depths):
            raise ValueError(
                f"VisMaeConfig.num_heads has {len(self.num_heads)} entries but depths has {len(self.depths)}: "
                "give one head count per stage."
            )
        if any(d < 1 for d in self.depths):
            raise ValueError(f"VisMaeConfig.depths must all be >= 1, got {self.depths}.")
        for stage, (dim, heads) in enumerate(zip(self.stage_dims, self.num_heads)):
            if heads < 1 or dim % heads:
                raise ValueError(
                    f"VisMaeConfig.num_heads[{stage}]={heads} must divide the stage width {dim} "
                    f"(embed_dim={self.embed_dim} * 2**{stage})."
                )
        decoder_dims = self.stage_dims[-2::-1]
        for name, values in (
            ("decoder_depths", self.resolved_decoder_depths),
            ("decoder_num_heads", self.resolved_decoder_num_heads),
        ):
            if len(values) != len(self.depths) - 1:
                raise ValueError(
                    f"VisMaeConfig.{name} needs {len(self.depths) - 1} entries (one per decoder up-stage), got {values}."
                )
            if any(v < 1 for v in values):
                raise ValueError(f"VisMaeConfig.{name} must all be >= 1, got {values}.")
        for stage, (dim, heads) in enumerate(zip(decoder_dims, self.resolved_decoder_num_heads)):
            if dim % heads:
                raise ValueError(
                    f"VisMaeConfig.decoder_num_heads[{stage}]={heads} must divide the decoder stage width {dim}."
                )
        if self.mask_unit_size % self.patch_size:
            raise ValueError(
                f"VisMaeConfig.mask_unit_size {self.mask_unit_size} must be a multiple of patch_size {self.patch_size}: "
                "masks are drawn on whole tokens."
            )
        if isinstance(self.image_size, (list, tuple)) and len(self.image_size) != 2:
            raise ValueError(f"VisMaeConfig.image_size must be an int or (height, width), got {self.image_size}.")
        for axis, size in zip(("height", "width"), self.image_height_width):
            if size < 1 or size % self.size_divisor:
                raise ValueError(
                    f"VisMaeConfig.image_size {axis} {size} must be a positive multiple of {self.size_divisor} "
                    f"(patch_size {self.patch_size} x 2**{len(self.depths) - 1} patch mergings)."
                )
            if size % self.mask_unit_size:
                raise ValueError(
                    f"VisMaeConfig.image_size {axis} {size} must be a multiple of mask_unit_size {self.mask_unit_size}."
                )
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"VisMaeConfig.mask_ratio must be in [0, 1), got {self.mask_ratio}.")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"VisMaeConfig.drop_path_rate must be in [0, 1), got {self.drop_path_rate}.")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"VisMaeConfig.{name} must be in [0, 1), got {getattr(self, name)}.")
        if self.mlp_ratio <= 0:
            raise ValueError(f"VisMaeConfig.mlp_ratio must be positive, got {self.mlp_ratio}.")
        if self.layer_norm_eps <= 0:
            raise ValueError(f"VisMaeConfig.layer_norm_eps must be positive, got {self.layer_norm_eps}.")
        if self.hidden_act not in ACT2FN:
            raise ValueError(f"VisMaeConfig.hidden_act {self.hidden_act!r} is unknown; use one of {sorted(ACT2FN)}.")
        if self.segmentation_ce_weight < 0 or self.segmentation_dice_weight < 0:
            raise ValueError(
                "VisMaeConfig.segmentation_ce_weight and segmentation_dice_weight must be >= 0, got "
                f"{self.segmentation_ce_weight} and {self.segmentation_dice_weight}."
            )

    def _check_size_bounds(self):
        """Every size a whole number within the sane bounds at the top of this file (which say why each bound)."""
        sides = self.image_size if isinstance(self.image_size, list) else [self.image_size]
        per_stage = {
            name: values or []
            for name, values in (
                ("depths", self.depths),
                ("num_heads", self.num_heads),
                ("decoder_depths", self.decoder_depths),
                ("decoder_num_heads", self.decoder_num_heads),
            )
        }
        whole_numbers = {
            **{f"image_size[{index}]" if len(sides) > 1 else "image_size": side for index, side in enumerate(sides)},
            **{name: getattr(self, name) for name in ("patch_size", "num_channels", "embed_dim", "window_size")},
            "mask_unit_size": self.mask_unit_size,
            **{f"{name}[{index}]": v for name, values in per_stage.items() for index, v in enumerate(values)},
        }
        for name, value in whole_numbers.items():
            # What JSON gives for a whole number: a float or string here would fail later, deep in the model.
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"VisMaeConfig.{name} is {value!r}; expected a whole number.")
        if isinstance(self.mlp_ratio, bool) or not isinstance(self.mlp_ratio, (int, float)):
            raise ValueError(f"VisMaeConfig.mlp_ratio is {self.mlp_ratio!r}; expected a number.")
        stages = len(self.depths)
        if stages > MAX_STAGES:
            raise ValueError(f"VisMaeConfig.depths has {stages} stages; at most {MAX_STAGES} (each one halves the map).")
        widest = self.embed_dim * 2 ** max(stages - 1, 0)
        if widest > MAX_STAGE_WIDTH:
            raise ValueError(
                f"VisMaeConfig.embed_dim {self.embed_dim} makes the widest of {stages} stages {widest} channels wide "
                f"(embed_dim * 2**{stages - 1}); at most {MAX_STAGE_WIDTH}."
            )
        bounds = {
            **{name: MAX_IMAGE_SIDE for name in whole_numbers if name.startswith("image_size")},
            "num_channels": MAX_NUM_CHANNELS,
            "window_size": MAX_WINDOW_SIZE,
            **{name: MAX_BLOCKS_PER_STAGE for name in whole_numbers if "depths[" in name},
            **{name: MAX_HEADS_PER_STAGE for name in whole_numbers if "num_heads[" in name},
        }
        values = {**whole_numbers, "mlp_ratio": self.mlp_ratio}
        for name, bound in {**bounds, "mlp_ratio": MAX_MLP_RATIO}.items():
            if values[name] > bound:
                advice = " px per side (tile larger images)" if name.startswith("image_size") else ""
                raise ValueError(f"VisMaeConfig.{name} is {values[name]}; at most {bound}{advice}.")

__all__ = ["VisMaeConfig"]
