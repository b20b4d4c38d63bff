# Copyright 2026 The vis-mae-hf developers. Licensed under the Apache License, Version 2.0.
"""Start a VIS-MAE model from a Transformers Swin checkpoint (the paper's ImageNet baseline initialisation).

    model, report = vis_mae_from_swin("microsoft/swin-tiny-patch4-window7-224", VisMaeForSemanticSegmentation,
                                      num_labels=4, depths=[2, 2, 6, 2])
    print(report.format())

The VIS-MAE encoder is a Swin encoder with the same parameters under other names, so the weights of
`transformers.SwinModel` / `SwinForImageClassification` carry over wherever the shapes agree. The mapping is the table
`SWIN_KEY_RULES` below (Swin key, with or without the prefix `swin.` -> our key), applied by the one engine
`weights.key_mapping` in lenient mode; Swin's separate query/key/value projections are concatenated into our fused
`qkv` (rows ordered query, key, value, each head-major, which is how our attention splits it). Every Swin key must
match exactly one rule: an unknown key means Transformers renamed something, and the conversion stops instead of
silently leaving weights behind.

What is carried and what is not (the `LoadReport` lists it key by key):
- loaded: patch embedding and its norm, every encoder block whose (stage, index) exists in the target, the patch
  mergings, and Swin's final LayerNorm into the classifier's pooling norm (`vis_mae.layernorm`; Swin pools the
  same way: LayerNorm, then the mean over tokens). A segmenter has no such norm: it is reported unused.
- dropped on purpose (each rule says why): absolute position embeddings (VIS-MAE has none), the mask token, the
  ImageNet classifier.
- unused: encoder blocks beyond the target's depths (a (2, 2, 2, 2) classifier from Swin-T's (2, 2, 6, 2) leaves
  stage-2 blocks 2-5 behind) and tensors whose shapes differ.
- fresh: the whole decoder, the skip projections and the heads: Swin has nothing for them.

Differences between the two architectures, and how `vis_mae_config_from_swin` handles them:
- LayerNorm eps: Swin uses `config.layer_norm_eps` (1e-5) in its blocks and final norm and PyTorch's default 1e-5 in
  its patch-embedding and patch-merging norms; VIS-MAE uses one eps everywhere (1e-6 published). The converted
  config takes Swin's eps, so with Swin's default every norm agrees.
- Single-window stages: Swin switches the shift off in stages whose map is no larger than the window (and shrinks
  the window to the map); the published VIS-MAE keeps shifting there. The converted config sets
  `shift_single_window_stages=False`. The encoders then compute the same function whenever every stage map is at
  least the window size (224 px: maps 56, 28, 14, 7); on smaller maps Swin shrinks its window while VIS-MAE pads the
  map to the window, and the outputs differ.
- Stochastic depth: Transformers' Swin applies drop path to the attention branch only, VIS-MAE to both branches
  (training only; inference is unaffected).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    SwinForImageClassification,
    SwinModel,
    SwinPreTrainedModel,
)

from ..configuration_vis_mae import VisMaeConfig
from ..modeling_vis_mae import VisMaePreTrainedModel
from .key_mapping import KeyRule, map_state_dict
from .load_report import LoadReport

# A Swin state dict has the prefix `swin.` under a task head and none in a bare `SwinModel`.
_SWIN = r"(?:swin\.)?"
# Our targets take `{model}`: `vis_mae.` under a task head, nothing in a bare `VisMaeModel`.
_OUR_BLOCK = r"{model}encoder.stages.\g<s>.blocks.\g<b>."

# Swin block parameter (inside `encoder.layers.<s>.blocks.<b>.`) -> ours (inside `encoder.stages.<s>.blocks.<b>.`).
_SWIN_BLOCK_RULES: list[tuple[str, str]] = [
    (r"layernorm_before\.(?P<p>weight|bias)", r"layernorm_before.\g<p>"),
    (r"attention\.o_proj\.(?P<p>weight|bias)", r"attention.projection.\g<p>"),
    (r"attention\.relative_position_bias\.relative_position_bias_table", r"attention.relative_position_bias_table"),
    (r"layernorm_after\.(?P<p>weight|bias)", r"layernorm_after.\g<p>"),
    (r"mlp\.fc1\.(?P<p>weight|bias)", r"mlp.fc1.\g<p>"),
    (r"mlp\.fc2\.(?P<p>weight|bias)", r"mlp.fc2.\g<p>"),
]

# The Swin key table, applied by `weights.key_mapping` in lenient mode.
SWIN_KEY_RULES: list[KeyRule] = [
    KeyRule(
        rf"{_SWIN}embeddings\.patch_embeddings\.projection\.(?P<p>weight|bias)", r"{model}embeddings.projection.\g<p>"
    ),
    KeyRule(rf"{_SWIN}embeddings\.norm\.(?P<p>weight|bias)", r"{model}embeddings.norm.\g<p>"),
    KeyRule(
        rf"{_SWIN}embeddings\.position_embeddings",
        dropped_because="absolute position embeddings: VIS-MAE has relative position bias only",
    ),
    KeyRule(
        rf"{_SWIN}embeddings\.mask_token", dropped_because="SimMIM's mask token: VIS-MAE fine-tuning models have none"
    ),
    *[
        KeyRule(rf"{_SWIN}encoder\.layers\.(?P<s>\d+)\.blocks\.(?P<b>\d+)\.{swin}", _OUR_BLOCK + ours)
        for swin, ours in _SWIN_BLOCK_RULES
    ],
    # Swin's separate projections, concatenated into our fused qkv: rows query, key, value, each head-major, which is
    # how our attention splits it.
    KeyRule(
        rf"{_SWIN}encoder\.layers\.(?P<s>\d+)\.blocks\.(?P<b>\d+)\.attention\.(?P<part>q|k|v)_proj\.(?P<p>weight|bias)",
        _OUR_BLOCK + r"attention.qkv.\g<p>",
        concatenate=("q", "k", "v"),
    ),
    KeyRule(
        rf"{_SWIN}encoder\.layers\.\d+\.blocks\.\d+\.attention\.relative_position_bias\.relative_position_index",
        dropped_because="derived from the window size; rebuilt by our model",
    ),
    KeyRule(
        rf"{_SWIN}encoder\.layers\.(?P<s>\d+)\.downsample\.norm\.(?P<p>weight|bias)",
        r"{model}encoder.stages.\g<s>.resample.norm.\g<p>",
    ),
    KeyRule(
        rf"{_SWIN}encoder\.layers\.(?P<s>\d+)\.downsample\.reduction\.weight",
        r"{model}encoder.stages.\g<s>.resample.reduction.weight",
    ),
    KeyRule(rf"{_SWIN}layernorm\.(?P<p>weight|bias)", r"{model}layernorm.\g<p>"),  # the pooling norm; classifiers only
    KeyRule(r"classifier\.(weight|bias)", dropped_because="the ImageNet classifier: other classes than the task's"),
]

ARCHITECTURE_NOTES = [
    "LayerNorm eps: taken from the Swin config (Swin's patch-embedding and patch-merging norms use 1e-5).",
    "shift_single_window_stages=False: like Swin, no shift in stages whose map fits one window.",
    "Equal outputs only where every stage map is at least the window size (e.g. 224 px): on smaller maps Swin "
    "shrinks its window, VIS-MAE pads the map to the window.",
    "Drop path: Swin (Transformers) drops the attention branch only, VIS-MAE both branches (training only).",
]


def transfer_swin_weights(
    swin_state_dict: dict[str, torch.Tensor], model: VisMaePreTrainedModel, source: str = "state dict"
) -> LoadReport:
    """Copy a Swin state dict into `model` (in place) wherever names map and shapes agree; report the rest.

    Args:
        swin_state_dict: the parameters of a `SwinModel` or `SwinForImageClassification` under Transformers' current
            (in-memory) names, with or without the `swin.` prefix. `load_swin_state_dict` produces it from a checkpoint.
        model: any VIS-MAE model (`VisMaeForSemanticSegmentation`, `VisMaeForImageClassification`, a bare
            `VisMaeModel`, ...). Its other parameters keep their fresh values.
        source: where the weights came from, for the report.

    Raises:
        ConversionError: a Swin key that matches no rule of `SWIN_KEY_RULES` (or several): this Transformers version
            names Swin's parameters differently, and carrying on would leave weights behind.
    """
    target_state = model.state_dict()
    values, report = map_state_dict(
        swin_state_dict,
        SWIN_KEY_RULES,
        {key: tensor.shape for key, tensor in target_state.items()},
        source=source,
        target=type(model).__name__,
        strict=False,
        template_fields={"model": "" if model.base_model is model else f"{model.base_model_prefix}."},
    )
    report.notes = list(ARCHITECTURE_NOTES)
    with torch.no_grad():
        for key, tensor in values.items():
            target_state[key].copy_(tensor.to(target_state[key].dtype))
    return report


def load_swin_state_dict(source) -> tuple[dict[str, torch.Tensor], object, str]:
    """(state dict under current names, `SwinConfig`, description) from a Swin model, a directory or a Hub repo id.

    Checkpoints on disk use Swin's original key names (`attention.self.query`, ...); loading them through
    `from_pretrained` lets Transformers translate them, so the rules above see one naming only.
    """

    if isinstance(source, SwinPreTrainedModel):
        return dict(source.state_dict()), source.config, type(source).__name__
    if not isinstance(source, (str, Path)):
        raise TypeError(
            f"A Swin source must be a SwinModel, a directory or a Hub repo id, got {type(source).__name__}."
        )
    try:
        config = AutoConfig.from_pretrained(str(source))
    except OSError as error:
        raise OSError(
            f"Cannot read a Swin config from {source!r}: expected a directory holding a Transformers Swin checkpoint "
            "(config.json + weights) or a Hub repo id such as microsoft/swin-tiny-patch4-window7-224 (offline: it "
            f"must be in the Hugging Face cache). ({error})"
        ) from error
    if config.model_type != "swin":
        raise ValueError(
            f"{source!r} is a {config.model_type!r} checkpoint; the Swin initialisation needs a Transformers Swin "
            "(model_type 'swin') checkpoint such as microsoft/swin-tiny-patch4-window7-224."
        )
    # Load with the class the checkpoint was saved from, so nothing is reported missing or unexpected and the
    # ImageNet head shows up in our report as dropped on purpose rather than vanishing.
    architectures = config.architectures or []
    swin_class = SwinForImageClassification if "SwinForImageClassification" in architectures else SwinModel
    swin = swin_class.from_pretrained(str(source), dtype=torch.float32)
    return dict(swin.state_dict()), swin.config, str(source)


def vis_mae_config_from_swin(swin_config, **overrides) -> VisMaeConfig:
    """A `VisMaeConfig` whose encoder has the shapes of `swin_config` (see the module docstring for the choices).

    `overrides` set any other field (task fields such as `num_labels`, `id2label`, `image_size`, or `depths` to keep a
    published VIS-MAE depth layout).
    """
    image_size, patch_size = swin_config.image_size, swin_config.patch_size
    kwargs = dict(
        image_size=list(image_size) if isinstance(image_size, (list, tuple)) else int(image_size),
        patch_size=int(patch_size if isinstance(patch_size, int) else patch_size[0]),
        num_channels=swin_config.num_channels,
        embed_dim=swin_config.embed_dim,
        depths=list(swin_config.depths),
        num_heads=list(swin_config.num_heads),
        window_size=swin_config.window_size,
        mlp_ratio=float(swin_config.mlp_ratio),
        qkv_bias=bool(swin_config.qkv_bias),
        hidden_act=swin_config.hidden_act,
        layer_norm_eps=float(swin_config.layer_norm_eps),
        shift_single_window_stages=False,
    )
    kwargs.update(overrides)
    return VisMaeConfig(**kwargs)


def vis_mae_from_swin(source, model_class: type[VisMaePreTrainedModel], **config_overrides):
    """Build `model_class` with a Swin checkpoint's encoder widths and copy its weights in.

    Args:
        source: a Swin model instance, a directory, or a Hub repo id (see `load_swin_state_dict`).
        model_class: e.g. `VisMaeForSemanticSegmentation` or `VisMaeForImageClassification`.
        config_overrides: `VisMaeConfig` fields; pass the task's `num_labels`, `id2label`, `label2id`, `image_size` and
            the published `depths` of the task.

    Returns:
        `(model, LoadReport)`.
    """
    swin_state, swin_config, description = load_swin_state_dict(source)
    config = vis_mae_config_from_swin(swin_config, **config_overrides)
    model = model_class(config)
    report = transfer_swin_weights(swin_state, model, source=description)
    return model, report


__all__ = [
    "transfer_swin_weights",
    "vis_mae_from_swin",
]
