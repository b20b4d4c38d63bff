# Copyright 2026 The vis-mae-hf developers. Licensed under the Apache License, Version 2.0.
"""VIS-MAE models: a Swin-Transformer masked autoencoder for medical images and its downstream heads.

This is an independent implementation of the functions the published VIS-MAE code computes (see the project's
ARCHITECTURE notes); published quirks that checkpoints depend on are kept and marked. Tensors inside the stages are
channels-last maps `(batch, height, width, channels)`; public outputs follow Transformers (`(batch, tokens, channels)`
plus `(batch, channels, height, width)` "reshaped" maps).

The file imports only torch and transformers (and its config, relatively) so Hub repositories can carry it as remote code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.backbone_utils import BackboneMixin
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BackboneOutput,
    ImageClassifierOutput,
    SemanticSegmenterOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.utils import ModelOutput, can_return_tuple, logging

from .configuration_vis_mae import VisMaeConfig

logger = logging.get_logger(__name__)


# ---------------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------------
def window_partition(hidden_states: torch.Tensor, window_size: int) -> torch.Tensor:
    """(batch, height, width, channels) -> (batch, num_windows, window_size**2, channels), windows row-major."""
    batch_size, height, width, channels = hidden_states.shape
    hidden_states = hidden_states.view(
        batch_size, height // window_size, window_size, width // window_size, window_size, channels
    )
    hidden_states = hidden_states.permute(0, 1, 3, 2, 4, 5)
    return hidden_states.reshape(batch_size, -1, window_size * window_size, channels)


def window_reverse(windows: torch.Tensor, window_size: int, height: int, width: int) -> torch.Tensor:
    """Inverse of `window_partition`. Height and width are kept apart (the published code used height for both)."""
    batch_size, _, _, channels = windows.shape
    windows = windows.view(
        batch_size, height // window_size, width // window_size, window_size, window_size, channels
    )
    return windows.permute(0, 1, 3, 2, 4, 5).reshape(batch_size, height, width, channels)


def relative_position_index(window_size: int) -> torch.Tensor:
    """(window_size**2, window_size**2) index into the relative position bias table, laid out the standard Swin way."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ).flatten(1)  # (2, window_size**2)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
    return relative[..., 0] * (2 * window_size - 1) + relative[..., 1]


def shifted_window_attention_mask(
    height: int, width: int, window_size: int, shift_size: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Additive mask (num_windows, window_size**2, window_size**2) for shifted windows: -100 between tokens that the
    cyclic shift brought together from different image regions, 0 elsewhere. Built with tensor arithmetic only, so it
    needs no host round trip. `height` and `width` are the padded map size (padded tokens are not masked, as published).
    """

    def regions(size: int) -> torch.Tensor:
        index = torch.arange(size, device=device)
        return (index >= size - window_size).long() + (index >= size - shift_size).long()

    region_map = regions(height)[:, None] * 3 + regions(width)[None, :]  # (height, width), 9 region labels
    region_windows = window_partition(region_map[None, :, :, None], window_size)[0, :, :, 0]  # (windows, tokens)
    different = region_windows[:, :, None] != region_windows[:, None, :]
    return torch.zeros(different.shape, device=device, dtype=dtype).masked_fill(different, -100.0)


@functools.lru_cache(maxsize=64)
def cached_shifted_window_attention_mask(
    height: int, width: int, window_size: int, shift_size: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """`shifted_window_attention_mask`, built once per map size, device and dtype instead of once per step. The mask
    is a constant: callers only read it (it enters the attention bias out of place)."""
    return shifted_window_attention_mask(height, width, window_size, shift_size, device, dtype)


def random_window_masking(
    batch_size: int,
    grid_height: int,
    grid_width: int,
    mask_unit_tokens: int,
    mask_ratio: float,
    device: torch.device | str | None = None,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw the VIS-MAE mask: whole `mask_unit_tokens x mask_unit_tokens` groups of tokens are masked, independently
    per sample, keeping `int(num_units * (1 - mask_ratio))` units (49 of 196 at 224 px and ratio 0.75).

    Everything stays on `device` (argsort of uniform noise, then a scatter): no host synchronisation, unlike the
    published per-sample numpy loop. Reproducible from `torch.manual_seed`, an explicit `generator`, or `noise`
    (batch_size, num_units) whose lowest values are kept.

    Returns:
        bool tensor (batch_size, grid_height * grid_width), True where a token is replaced by the mask token,
        row-major over the token grid.
    """
    if grid_height % mask_unit_tokens or grid_width % mask_unit_tokens:
        raise ValueError(
            f"The token grid {grid_height}x{grid_width} is not a whole number of {mask_unit_tokens}x{mask_unit_tokens} "
            "mask units; use an input size that is a multiple of config.mask_unit_size."
        )
    units_high, units_wide = grid_height // mask_unit_tokens, grid_width // mask_unit_tokens
    num_units = units_high * units_wide
    # The small epsilon keeps e.g. 100 * (1 - 0.9) = 9.999999999999998 from rounding down to 9.
    num_keep = int(num_units * (1.0 - mask_ratio) + 1e-6)
    if noise is None:
        noise = torch.rand(batch_size, num_units, device=device, generator=generator)
    elif noise.shape != (batch_size, num_units):
        raise ValueError(f"noise must have shape ({batch_size}, {num_units}) (one value per mask unit), got {tuple(noise.shape)}.")
    keep_units = torch.argsort(noise, dim=1)[:, :num_keep]
    unit_mask = torch.ones(batch_size, num_units, dtype=torch.bool, device=noise.device)
    unit_mask.scatter_(1, keep_units, False)
    token_mask = (
        unit_mask.view(batch_size, units_high, 1, units_wide, 1)
        .expand(batch_size, units_high, mask_unit_tokens, units_wide, mask_unit_tokens)
        .reshape(batch_size, grid_height * grid_width)
    )
    return token_mask


def patchify(pixel_values: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(batch, channels, height, width) -> (batch, tokens, patch_size**2 * channels), per token ordered (p, q, c)
    with the channel fastest: the published prediction layout."""
    batch_size, channels, height, width = pixel_values.shape
    grid_h, grid_w = height // patch_size, width // patch_size
    patches = pixel_values.reshape(batch_size, channels, grid_h, patch_size, grid_w, patch_size)
    return patches.permute(0, 2, 4, 3, 5, 1).reshape(batch_size, grid_h * grid_w, patch_size * patch_size * channels)


def unpatchify(patches: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    """Inverse of `patchify`: (batch, tokens, patch_size**2 * channels) -> (batch, channels, height, width)."""
    batch_size, _, patch_dim = patches.shape
    channels = patch_dim // (patch_size * patch_size)
    grid_h, grid_w = height // patch_size, width // patch_size
    pixels = patches.reshape(batch_size, grid_h, grid_w, patch_size, patch_size, channels)
    return pixels.permute(0, 5, 1, 3, 2, 4).reshape(batch_size, channels, height, width)


def drop_path(hidden_states: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample."""
    if drop_prob == 0.0 or not training:
        return hidden_states
    keep_prob = 1.0 - drop_prob
    shape = (hidden_states.shape[0],) + (1,) * (hidden_states.ndim - 1)
    keep = hidden_states.new_empty(shape).bernoulli_(keep_prob)
    return hidden_states * keep / keep_prob


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out. query, key, value: `(*batch, heads, tokens, head_dim)` with any number of leading batch
    axes (the window attention passes `(batch, windows)`, so its maps come out per image and window); the mask
    broadcasts against `(*batch, heads, tokens, tokens)`. Returns the output `(*batch, tokens, heads, head_dim)` and
    the attention maps that produced it (the very tensor multiplied with the values, so gradients reach it)."""
    attn_weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(-3, -2).contiguous()
    return attn_output, attn_weights


def check_pixel_values(pixel_values: torch.Tensor, config: VisMaeConfig) -> None:
    """Fail early, naming what was given and what is required (the published code broke deep inside instead)."""
    if pixel_values.ndim != 4:
        raise ValueError(
            f"pixel_values must be a 4-D tensor (batch, channels, height, width), got shape {tuple(pixel_values.shape)}."
        )
    _, channels, height, width = pixel_values.shape
    if channels != config.num_channels:
        raise ValueError(
            f"pixel_values has {channels} channels but the model expects {config.num_channels} "
            "(config.num_channels); the image processor converts grey/RGB to the model's channel count."
        )
    divisor = config.size_divisor
    if height % divisor or width % divisor or height == 0 or width == 0:
        raise ValueError(
            f"pixel_values height and width must be positive multiples of {divisor} (patch size {config.patch_size} "
            f"and {len(config.depths) - 1} 2x patch mergings), got {height}x{width}. Resize or pad the image, e.g. "
            f"to {max(divisor, round(height / divisor) * divisor)}x{max(divisor, round(width / divisor) * divisor)}."
        )


# ---------------------------------------------------------------------------------------------------------------------
# Output dataclasses
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class VisMaeModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`(batch_size, num_tokens, hidden_size)`): Output of the last encoder stage, no final norm.
        pooler_output (`(batch_size, hidden_size)`, *optional*): LayerNorm then mean over tokens (classification).
        hidden_states (*optional*): One `(batch_size, num_tokens_i, dim_i)` per stage input plus the last output:
            patch embeddings, each patch-merged map, and the final map (`output_hidden_states=True` or
            `config.output_hidden_states`). They are the tensors the forward computed with, so `retain_grad()` works.
        reshaped_hidden_states (*optional*): The same as `(batch_size, dim_i, height_i, width_i)` (views of them).
        attentions (*optional*): One `(batch_size, num_windows, num_heads, window_size**2, window_size**2)` per
            encoder block (`output_attentions=True` or `config.output_attentions`). Attention maps are computed on
            the eager path: with `attn_implementation="sdpa"` the blocks fall back to it for that call, with a warning.
    """

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    reshaped_hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class VisMaeForPreTrainingOutput(ModelOutput):
    """
    Args:
        loss (`(1,)`, *optional*): Mean squared error per token over its `patch_size**2 * num_channels` values,
            averaged over masked tokens only.
        logits (`(batch_size, num_tokens, patch_size**2 * num_channels)`): Predicted (normalised) pixels per token,
            ordered (p, q, c) with the channel fastest; `VisMaeForPreTraining.unpatchify` makes images of them.
        mask (`(batch_size, num_tokens)` bool): True where the token was replaced by the mask token.
        hidden_states, reshaped_hidden_states: As in `VisMaeModelOutput` (encoder).
        attentions (*optional*): As in `VisMaeModelOutput`, one per encoder block and then one per decoder block.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    reshaped_hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------------------------------
class VisMaeEmbeddings(nn.Module):
    """Non-overlapping patch embedding (Conv2d, kernel = stride = patch_size) followed by LayerNorm; in pretraining,
    masked tokens are then replaced by a learnable mask token (the encoder sees the full grid, unlike ViT-MAE)."""

    def __init__(self, config: VisMaeConfig, use_mask_token: bool = False):
        super().__init__()
        self.projection = nn.Conv2d(
            config.num_channels, config.embed_dim, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps)
        self.mask_token = nn.Parameter(torch.empty(1, 1, config.embed_dim)) if use_mask_token else None

    def forward(self, pixel_values: torch.Tensor, bool_masked_pos: torch.Tensor | None = None) -> torch.Tensor:
        embeddings = self.projection(pixel_values).permute(0, 2, 3, 1)  # (batch, grid_h, grid_w, embed_dim)
        embeddings = self.norm(embeddings)
        if bool_masked_pos is not None:
            if self.mask_token is None:
                raise ValueError(
                    "bool_masked_pos was given but this model has no mask token; use VisMaeForPreTraining or "
                    "VisMaeModel(config, use_mask_token=True)."
                )
            batch_size, grid_h, grid_w, _ = embeddings.shape
            if bool_masked_pos.shape != (batch_size, grid_h * grid_w):
                raise ValueError(
                    f"bool_masked_pos must have shape (batch_size, num_tokens) = ({batch_size}, {grid_h * grid_w}) "
                    f"for this input (a {grid_h}x{grid_w} token grid, row-major), got {tuple(bool_masked_pos.shape)}."
                )
            mask = bool_masked_pos.view(batch_size, grid_h, grid_w, 1)
            embeddings = torch.where(mask, self.mask_token.view(1, 1, 1, -1).to(embeddings.dtype), embeddings)
        return embeddings


# ---------------------------------------------------------------------------------------------------------------------
# Attention, MLP, block
# ---------------------------------------------------------------------------------------------------------------------
class VisMaeWindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias (no absolute positions)."""

    def __init__(self, config: VisMaeConfig, dim: int, num_heads: int):
        super().__init__()
        self.config = config
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window_size = config.window_size
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        # Transformers' SDPA wrapper applies a causal mask unless told otherwise.
        self.is_causal = False
        self.qkv = nn.Linear(dim, 3 * dim, bias=config.qkv_bias)
        self.projection = nn.Linear(dim, dim)
        self.projection_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * self.window_size - 1) ** 2, num_heads))
        # Derived from window_size alone, so not saved. Computed here, so that a model built without weight
        # initialisation (`no_init_weights`, then `load_state_dict`) has it, and again by `_init_weights`, which is
        # what fills it after the meta-device construction of `from_pretrained`.
        self.register_buffer("relative_position_index", relative_position_index(self.window_size), persistent=False)

    def relative_position_bias(self) -> torch.Tensor:
        tokens = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(tokens, tokens, self.num_heads).permute(2, 0, 1)  # (heads, tokens, tokens)

    def forward(
        self, hidden_states: torch.Tensor, shift_mask: torch.Tensor | None = None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states: the normalised map `(batch, height, width, dim)`, padded to whole windows and, for SW-MSA,
        already rolled. Returns the attended map in the same layout and, with `output_attentions`, the attention maps
        `(batch, windows, heads, tokens, tokens)`.

        Windows form the attention batch. q, k and v stay strided views of the one fused qkv projection (the
        attention kernels read them in place: no head-split copy); the attention output goes through the output
        projection window by window and is copied back onto the map once."""
        batch_size, height, width, dim = hidden_states.shape
        size = self.window_size
        num_windows, tokens = (height // size) * (width // size), size * size
        windows = window_partition(hidden_states, size).view(batch_size * num_windows, tokens, dim)
        qkv = self.qkv(windows).view(batch_size * num_windows, tokens, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch * windows, heads, tokens, head_dim)

        bias = self.relative_position_bias().to(query.dtype).unsqueeze(0)  # (1, heads, tokens, tokens)
        if shift_mask is not None:
            bias = bias + shift_mask.to(query.dtype).unsqueeze(1)  # (windows, heads, tokens, tokens)

        implementation = self.config._attn_implementation
        if output_attentions and implementation != "eager":
            logger.warning_once(
                f'Attention maps need the eager attention path; attn_implementation="{implementation}" falls back to '
                'it while output_attentions=True (load the model with attn_implementation="eager" to silence this).'
            )
            implementation = "eager"
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        if attention_interface is eager_attention_forward:
            # Images and windows as two batch axes: the per-window bias broadcasts over images, and the maps come out
            # per image and window without a reshape after use.
            query, key, value = (t.unflatten(0, (batch_size, num_windows)) for t in (query, key, value))
        elif shift_mask is not None:
            # The fused kernels take one attention batch axis, so the per-window bias is laid out for every window of
            # the batch: batch x windows x heads x tokens^2 values, the price of the copy-free q, k and v.
            # Unshifted blocks broadcast the (1, heads, ...) bias instead.
            bias = bias.expand(batch_size, -1, -1, -1, -1).reshape(-1, self.num_heads, tokens, tokens)
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            bias,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
        )
        # attn_output: (batch * windows, tokens, heads, head_dim) or (batch, windows, tokens, heads, head_dim)
        attn_output = self.projection(attn_output.reshape(batch_size, num_windows, tokens, dim))
        attn_output = self.projection_dropout(attn_output)
        attn_output = window_reverse(attn_output, size, height, width)
        return attn_output, attn_weights if output_attentions else None


class VisMaeMlp(nn.Module):
    def __init__(self, config: VisMaeConfig, dim: int):
        super().__init__()
        hidden = int(dim * config.mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.dropout(self.activation(self.fc1(hidden_states)))
        return self.dropout(self.fc2(hidden_states))


class VisMaeLayer(GradientCheckpointingLayer):
    """Pre-norm Swin block: x + DropPath(W-MSA or SW-MSA(LN(x))), then x + DropPath(MLP(LN(x)))."""

    def __init__(self, config: VisMaeConfig, dim: int, num_heads: int, shift_size: int, drop_path_rate: float):
        super().__init__()
        self.window_size = config.window_size
        self.shift_size = shift_size
        self.drop_path_rate = drop_path_rate
        self.layernorm_before = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attention = VisMaeWindowAttention(config, dim, num_heads)
        self.layernorm_after = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.mlp = VisMaeMlp(config, dim)

    def forward(
        self, hidden_states: torch.Tensor, shift_mask: torch.Tensor | None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # shift_mask: None for an unshifted block, else built for this stage's padded map by the stage.
        batch_size, height, width, channels = hidden_states.shape
        shortcut = hidden_states
        hidden_states = self.layernorm_before(hidden_states)
        # Pad after the norm, bottom/right, and do not mask padded tokens: the published behaviour.
        pad_bottom = (-height) % self.window_size
        pad_right = (-width) % self.window_size
        if pad_bottom or pad_right:
            hidden_states = F.pad(hidden_states, (0, 0, 0, pad_right, 0, pad_bottom))
        shift = self.shift_size if shift_mask is not None else 0
        if shift:
            hidden_states = torch.roll(hidden_states, shifts=(-shift, -shift), dims=(1, 2))
        hidden_states, attn_weights = self.attention(hidden_states, shift_mask, output_attentions)
        if shift:
            hidden_states = torch.roll(hidden_states, shifts=(shift, shift), dims=(1, 2))
        if pad_bottom or pad_right:
            hidden_states = hidden_states[:, :height, :width, :]
        hidden_states = shortcut + drop_path(hidden_states, self.drop_path_rate, self.training)
        hidden_states = hidden_states + drop_path(
            self.mlp(self.layernorm_after(hidden_states)), self.drop_path_rate, self.training
        )
        return hidden_states, attn_weights


class VisMaePatchMerging(nn.Module):
    """2x downsampling: 2x2 neighbours concatenated (order (0,0), (1,0), (0,1), (1,1)), LayerNorm, linear 4d -> 2d."""

    def __init__(self, config: VisMaeConfig, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, eps=config.layer_norm_eps)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        merged = torch.cat(
            [
                hidden_states[:, 0::2, 0::2],
                hidden_states[:, 1::2, 0::2],
                hidden_states[:, 0::2, 1::2],
                hidden_states[:, 1::2, 1::2],
            ],
            dim=-1,
        )
        return self.reduction(self.norm(merged))


class VisMaePatchExpanding(nn.Module):
    """Upsampling by `scale`: linear dim -> scale**2 * out_dim (no bias), each token's channels laid out as a
    scale x scale block ordered (p1, p2, c), then LayerNorm(out_dim)."""

    def __init__(self, config: VisMaeConfig, dim: int, scale: int, out_dim: int):
        super().__init__()
        self.scale = scale
        self.out_dim = out_dim
        self.expand = nn.Linear(dim, scale * scale * out_dim, bias=False)
        self.norm = nn.LayerNorm(out_dim, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch_size, height, width, _ = hidden_states.shape
        hidden_states = self.expand(hidden_states).view(batch_size, height, width, self.scale, self.scale, self.out_dim)
        hidden_states = hidden_states.permute(0, 1, 3, 2, 4, 5).reshape(
            batch_size, height * self.scale, width * self.scale, self.out_dim
        )
        return self.norm(hidden_states)


class VisMaeStage(nn.Module):
    """A run of Swin blocks alternating regular (even index) and shifted (odd index) windows, optionally followed by
    a resampling module (patch merging in the encoder, patch expanding in the decoder)."""

    def __init__(
        self,
        config: VisMaeConfig,
        dim: int,
        depth: int,
        num_heads: int,
        drop_path_rates: list[float],
        resample: nn.Module | None,
    ):
        super().__init__()
        self.config = config
        self.window_size = config.window_size
        self.shift_size = config.window_size // 2
        self.blocks = nn.ModuleList(
            [
                VisMaeLayer(
                    config,
                    dim,
                    num_heads,
                    shift_size=self.shift_size if index % 2 else 0,
                    drop_path_rate=drop_path_rates[index],
                )
                for index in range(depth)
            ]
        )
        self.resample = resample

    def shift_mask(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        _, height, width, _ = hidden_states.shape
        fits_one_window = height <= self.window_size and width <= self.window_size
        if self.shift_size == 0 or (fits_one_window and not self.config.shift_single_window_stages):
            return None
        # Built once per map size rather than every step, except while torch.compile traces the forward (a cache
        # lookup would break the graph; there the mask's few ops become part of the compiled graph).
        build = (
            shifted_window_attention_mask if torch.compiler.is_compiling() else cached_shifted_window_attention_mask
        )
        return build(
            height + (-height) % self.window_size,
            width + (-width) % self.window_size,
            self.window_size,
            self.shift_size,
            device=hidden_states.device,
            dtype=hidden_states.dtype,
        )

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        hidden_states, attentions = self.forward_blocks(hidden_states, output_attentions)
        if self.resample is not None:
            hidden_states = self.resample(hidden_states)
        return hidden_states, attentions

    def forward_blocks(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The Swin blocks without the resampling: the stage's own map, what `VisMaeBackbone` returns."""
        shift_mask = self.shift_mask(hidden_states) if len(self.blocks) > 1 else None
        attentions = ()
        for index, block in enumerate(self.blocks):
            hidden_states, attn_weights = block(hidden_states, shift_mask if index % 2 else None, output_attentions)
            if attn_weights is not None:
                attentions += (attn_weights,)
        return hidden_states, attentions


def linearly_spaced(start: float, stop: float, count: int) -> list[float]:
    """`count` numbers from `start` to `stop` inclusive, evenly spaced (`[start]` for one). Plain Python, not
    `torch.linspace(...).tolist()`: construction must not read tensors back, since on the meta device (low-memory
    `from_pretrained`, `device_map`) they hold no values."""
    if count == 1:
        return [float(start)]
    return [start + (stop - start) * index / (count - 1) for index in range(count)]


def stage_drop_path_rates(config: VisMaeConfig) -> list[list[float]]:
    """Stochastic-depth rates, linearly spaced over all encoder blocks, split per encoder stage."""
    total = sum(config.depths)
    rates = linearly_spaced(0.0, config.drop_path_rate, total)
    starts = [sum(config.depths[:i]) for i in range(len(config.depths))]
    return [rates[start : start + depth] for start, depth in zip(starts, config.depths)]


def recorded_views(hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A channels-last map `(batch, height, width, channels)` as the three views the encoder hands on: the token
    sequence `(batch, tokens, channels)`, the channels-first map `(batch, channels, height, width)` made from it, and
    a channels-last view of that map to compute on. All share one storage (no copy); because the computation goes on
    from the last one, the first two lie on the autograd path and `retain_grad()` on a returned hidden state sees a
    gradient, as it does for Transformers' own models."""
    batch_size, height, width, channels = hidden_states.shape
    sequence = hidden_states.reshape(batch_size, height * width, channels)
    channels_first = sequence.view(batch_size, height, width, channels).permute(0, 3, 1, 2)
    return sequence, channels_first, channels_first.permute(0, 2, 3, 1)


class VisMaeEncoder(nn.Module):
    def __init__(self, config: VisMaeConfig):
        super().__init__()
        rates = stage_drop_path_rates(config)
        last = len(config.depths) - 1
        self.stages = nn.ModuleList(
            [
                VisMaeStage(
                    config,
                    dim=dim,
                    depth=config.depths[index],
                    num_heads=config.num_heads[index],
                    drop_path_rates=rates[index],
                    # Merging sits at the end of every stage but the last (the map entering stage i+1 is halved).
                    resample=VisMaePatchMerging(config, dim) if index < last else None,
                )
                for index, dim in enumerate(config.stage_dims)
            ]
        )

    def forward(
        self, hidden_states: torch.Tensor, output_attentions: bool = False
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], tuple[torch.Tensor, ...]]:
        """hidden_states: the embeddings, channels-last. Returns the input of every stage plus the final output, as
        token sequences `(batch, tokens, channels)` and as channels-first maps `(batch, channels, height, width)`,
        and the attention maps. The returned tensors are the ones the computation continues from (see
        `recorded_views`), so gradients reach them."""
        sequences, channels_first_maps, attentions = [], [], ()

        def record(hidden_states: torch.Tensor) -> torch.Tensor:
            sequence, channels_first, channels_last = recorded_views(hidden_states)
            sequences.append(sequence)
            channels_first_maps.append(channels_first)
            return channels_last

        for stage in self.stages:
            hidden_states, stage_attentions = stage(record(hidden_states), output_attentions)
            attentions += stage_attentions
        record(hidden_states)
        return sequences, channels_first_maps, attentions


class VisMaeDecoder(nn.Module):
    """The Swin decoder: an expansion of the bottleneck, then up-stages that mirror the encoder, each ending with a 2x
    patch expansion except the last, then LayerNorm. With `use_skip_connections` (Swin-Unet segmentation), each
    up-stage first concatenates the encoder map of the same size and fuses it with a 1x1 convolution."""

    def __init__(self, config: VisMaeConfig, use_skip_connections: bool = False):
        super().__init__()
        encoder_dims = config.stage_dims
        decoder_dims = encoder_dims[-2::-1]
        decoder_depths = config.resolved_decoder_depths
        encoder_rates = stage_drop_path_rates(config)
        self.patch_expanding = VisMaePatchExpanding(config, encoder_dims[-1], scale=2, out_dim=decoder_dims[0])
        stages = []
        for index, (dim, depth, heads) in enumerate(zip(decoder_dims, decoder_depths, config.resolved_decoder_num_heads)):
            mirrored = encoder_rates[len(decoder_dims) - 1 - index]
            if len(mirrored) != depth:  # a custom, non-mirrored decoder depth: spread over the mirrored range
                mirrored = linearly_spaced(mirrored[0], mirrored[-1], depth)
            is_last = index == len(decoder_dims) - 1
            upsample = None if is_last else VisMaePatchExpanding(config, dim, scale=2, out_dim=dim // 2)
            stages.append(VisMaeStage(config, dim, depth, heads, mirrored, resample=upsample))
        self.stages = nn.ModuleList(stages)
        self.skip_projections = (
            nn.ModuleList([nn.Conv2d(2 * dim, dim, kernel_size=1) for dim in decoder_dims])
            if use_skip_connections
            else None
        )
        self.layernorm = nn.LayerNorm(decoder_dims[-1], eps=config.layer_norm_eps)

    def forward(
        self,
        bottleneck: torch.Tensor,
        skips: list[torch.Tensor] | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """bottleneck: the last encoder map (channels-last). skips: encoder stage inputs, finest first
        (only with skip connections)."""
        hidden_states = self.patch_expanding(bottleneck)
        attentions = ()
        for index, stage in enumerate(self.stages):
            if self.skip_projections is not None:
                skip = skips[len(self.stages) - 1 - index]
                fused = torch.cat([hidden_states, skip], dim=-1).permute(0, 3, 1, 2)
                hidden_states = self.skip_projections[index](fused).permute(0, 2, 3, 1)
            hidden_states, stage_attentions = stage(hidden_states, output_attentions)
            attentions += stage_attentions
        return self.layernorm(hidden_states), attentions


# ---------------------------------------------------------------------------------------------------------------------
# Pretrained model base
# ---------------------------------------------------------------------------------------------------------------------
class VisMaePreTrainedModel(PreTrainedModel):
    config: VisMaeConfig
    config_class = VisMaeConfig
    base_model_prefix = "vis_mae"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["VisMaeLayer"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False

    def checkpoint_blocks(self, block_paths: list[str]) -> list[str]:
        """Activation checkpointing for the Swin blocks under the given module paths only (each path a block or any
        module above blocks, e.g. `"decoder.stages.2"`, the pretraining decoder's finest stage); every other block
        keeps its activations. Returns the checkpointed blocks' names.

        Every block costs about the same compute (tokens x channels^2 is constant across stages), but activation
        memory scales with tokens x channels, which halves at each coarser stage: checkpointing the finest stages
        buys the most memory per recomputed block. `activation_checkpointing_enable()` checkpoints every block."""
        self.activation_checkpointing_enable()
        chosen = []
        for name, module in self.named_modules():
            if isinstance(module, VisMaeLayer):
                module.gradient_checkpointing = any(name == path or name.startswith(path + ".") for path in block_paths)
                if module.gradient_checkpointing:
                    chosen.append(name)
        if not chosen:
            self.activation_checkpointing_disable()
            stages = {name.rsplit(".blocks.", 1)[0] for name, m in self.named_modules() if isinstance(m, VisMaeLayer)}
            raise ValueError(
                f"No Swin block lies under {block_paths}; stages of this model: {', '.join(sorted(stages))}."
            )
        return chosen

    def output_flags(self, output_hidden_states: bool | None, output_attentions: bool | None) -> tuple[bool, bool]:
        """What to return: each keyword when given, else the config's setting (`config.output_hidden_states`,
        `config.output_attentions`), as every Transformers model reads them."""
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        return bool(output_hidden_states), bool(output_attentions)

    def no_weight_decay(self) -> set[str]:
        """Names (as `named_parameters` gives them) of the parameters that conventionally take no weight decay, as
        timm's models name theirs: every LayerNorm weight and bias, every other bias, the mask token and the
        relative-position bias tables (decay would shrink scales, offsets and position biases, not weights; MAE leaves
        them undecayed). The published VIS-MAE optimisers decayed them all the same, so training loops ask this method
        only when told to exempt them."""
        exempt_names = ("bias", "mask_token", "relative_position_bias_table")
        return {
            f"{module_name}.{parameter_name}" if module_name else parameter_name
            for module_name, module in self.named_modules()
            for parameter_name, _ in module.named_parameters(recurse=False)
            if isinstance(module, nn.LayerNorm) or parameter_name in exempt_names
        }

    def _init_weights(self, module: nn.Module) -> None:
        """The single place where every parameter and buffer gets its value (fresh models, heads added to a
        pretrained body, and non-persistent buffers after loading on the meta device)."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, VisMaeEmbeddings):
            if module.mask_token is not None:
                init.normal_(module.mask_token, std=std)
        elif isinstance(module, VisMaeWindowAttention):
            init.trunc_normal_(module.relative_position_bias_table, std=std)
            init.copy_(module.relative_position_index, relative_position_index(module.window_size))


# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------
class VisMaeModel(VisMaePreTrainedModel):
    """The VIS-MAE Swin encoder: patch embedding and four stages, no final norm on `last_hidden_state`. With
    `add_pooling_layer`, `pooler_output` is LayerNorm then mean over tokens (what the classifier uses)."""

    # Loading the encoder out of a pretraining or fine-tuned checkpoint drops its heads on purpose.
    _keys_to_ignore_on_load_unexpected = [
        r"^(vis_mae\.)?embeddings\.mask_token$",
        r"^decoder\.",
        r"^reconstruction_head\.",
        r"^final_patch_expanding\.",
        r"^segmentation_head\.",
        r"^classifier\.",
    ]

    def __init__(self, config: VisMaeConfig, add_pooling_layer: bool = True, use_mask_token: bool = False):
        super().__init__(config)
        self.embeddings = VisMaeEmbeddings(config, use_mask_token=use_mask_token)
        self.encoder = VisMaeEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if add_pooling_layer else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.projection

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> VisMaeModelOutput:
        r"""
        pixel_values (`(batch_size, num_channels, height, width)`): height and width multiples of 32 by default.
        bool_masked_pos (`(batch_size, num_tokens)` bool, *optional*): tokens to replace by the mask token (needs
            `use_mask_token=True`).
        """
        output_hidden_states, output_attentions = self.output_flags(output_hidden_states, output_attentions)
        check_pixel_values(pixel_values, self.config)
        embeddings = self.embeddings(pixel_values, bool_masked_pos)
        sequences, channels_first_maps, attentions = self.encoder(embeddings, output_attentions)
        last_hidden_state = sequences[-1]
        pooler_output = None
        if self.layernorm is not None:
            pooler_output = self.layernorm(last_hidden_state).mean(dim=1)
        return VisMaeModelOutput(
            last_hidden_state=last_hidden_state,
            pooler_output=pooler_output,
            hidden_states=tuple(sequences) if output_hidden_states else None,
            reshaped_hidden_states=tuple(channels_first_maps) if output_hidden_states else None,
            attentions=attentions if output_attentions else None,
        )


class VisMaeForPreTraining(VisMaePreTrainedModel):
    """VIS-MAE pretraining: window masking, mask token, Swin encoder over the full grid, symmetric Swin decoder
    without skips, a linear pixel head per token, and MSE on the masked tokens."""

    # Dropped when a fine-tuning head loads a pretraining checkpoint; listed here so the reverse load is quiet too.
    _keys_to_ignore_on_load_unexpected = [r"^vis_mae\.layernorm\.", r"^classifier\.", r"^segmentation_head\."]

    def __init__(self, config: VisMaeConfig):
        super().__init__(config)
        self.vis_mae = VisMaeModel(config, add_pooling_layer=False, use_mask_token=True)
        self.decoder = VisMaeDecoder(config, use_skip_connections=False)
        self.reconstruction_head = nn.Linear(
            config.embed_dim, config.patch_size * config.patch_size * config.num_channels
        )
        self.post_init()

    def patchify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return patchify(pixel_values, self.config.patch_size)

    def unpatchify(self, logits: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return unpatchify(logits, self.config.patch_size, height, width)

    def random_masking(
        self,
        batch_size: int,
        height: int,
        width: int,
        device: torch.device | str | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The published window mask for an input of `height x width` pixels, drawn on `device`."""
        patch = self.config.patch_size
        return random_window_masking(
            batch_size,
            height // patch,
            width // patch,
            self.config.mask_unit_size // patch,
            self.config.mask_ratio,
            device=device,
            noise=noise,
            generator=generator,
        )

    def reconstruction_loss(
        self, pixel_values: torch.Tensor, logits: torch.Tensor, bool_masked_pos: torch.Tensor
    ) -> torch.Tensor:
        target = self.patchify(pixel_values)
        if self.config.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        per_token = (logits.float() - target.float()).pow(2).mean(dim=-1)
        mask = bool_masked_pos.to(per_token.dtype)
        return (per_token * mask).sum() / mask.sum()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> VisMaeForPreTrainingOutput:
        r"""
        bool_masked_pos (`(batch_size, num_tokens)` bool, *optional*): True where a token is replaced by the mask
            token, row-major over the `(height/4) x (width/4)` token grid. Drawn with the published window masking
            when omitted (on the input's device; seed with `torch.manual_seed` or pass `noise`).
        noise (`(batch_size, num_mask_units)`, *optional*): Drives the random masking (lowest values are kept).
        """
        output_hidden_states, output_attentions = self.output_flags(output_hidden_states, output_attentions)
        check_pixel_values(pixel_values, self.config)
        batch_size, _, height, width = pixel_values.shape
        if bool_masked_pos is None:
            bool_masked_pos = self.random_masking(batch_size, height, width, pixel_values.device, noise=noise)
        bool_masked_pos = bool_masked_pos.bool()
        outputs = self.vis_mae(
            pixel_values,
            bool_masked_pos=bool_masked_pos,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        patch = self.config.patch_size
        bottleneck_divisor = self.config.size_divisor
        bottleneck = outputs.last_hidden_state.view(
            batch_size, height // bottleneck_divisor, width // bottleneck_divisor, -1
        )
        decoded, decoder_attentions = self.decoder(bottleneck, output_attentions=output_attentions)
        logits = self.reconstruction_head(decoded).view(batch_size, (height // patch) * (width // patch), -1)
        loss = self.reconstruction_loss(pixel_values, logits, bool_masked_pos)
        return VisMaeForPreTrainingOutput(
            loss=loss,
            logits=logits,
            mask=bool_masked_pos,
            hidden_states=outputs.hidden_states,
            reshaped_hidden_states=outputs.reshaped_hidden_states,
            attentions=outputs.attentions + decoder_attentions if output_attentions else None,
        )


class VisMaeForImageClassification(VisMaePreTrainedModel):
    """Encoder, LayerNorm, mean pooling over the last map, linear classifier. Loads only the encoder from a
    pretraining checkpoint (the norm and the classifier start fresh)."""

    _keys_to_ignore_on_load_unexpected = [
        r"^vis_mae\.embeddings\.mask_token$",
        r"^decoder\.",
        r"^reconstruction_head\.",
        r"^final_patch_expanding\.",
        r"^segmentation_head\.",
    ]

    def __init__(self, config: VisMaeConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.vis_mae = VisMaeModel(config, add_pooling_layer=True)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutput:
        r"""
        labels (*optional*): class indices `(batch_size,)` for single-label, multi-hot `(batch_size, num_labels)`
            floats for multi-label (`config.problem_type="multi_label_classification"`), values for regression.
        """
        outputs = self.vis_mae(
            pixel_values,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        logits = self.classifier(outputs.pooler_output)
        loss = None
        if labels is not None:
            loss = self.loss_function(labels, logits, self.config, **kwargs)
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


def soft_dice_loss(
    probabilities: torch.Tensor, labels: torch.Tensor, include_background: bool, ignore_index: int
) -> torch.Tensor:
    """1 - mean over classes of (2 sum(p t) + 1e-5) / (sum(p^2) + sum(t^2) + 1e-5), sums over the whole batch
    (the published per-class Dice), ignoring pixels labelled `ignore_index`. Averages over the classes that enter."""
    num_labels = probabilities.shape[1]
    valid = (labels != ignore_index).unsqueeze(1).to(probabilities.dtype)  # (batch, 1, H, W)
    one_hot = F.one_hot(labels.clamp(0, num_labels - 1) * (labels != ignore_index), num_labels)
    target = one_hot.permute(0, 3, 1, 2).to(probabilities.dtype) * valid
    probabilities = probabilities * valid
    dims = (0, 2, 3)
    intersection = (probabilities * target).sum(dims)
    denominator = probabilities.pow(2).sum(dims) + target.pow(2).sum(dims)
    dice = (2.0 * intersection + 1e-5) / (denominator + 1e-5)
    first = 0 if include_background else 1
    return 1.0 - dice[first:].mean()


class VisMaeForSemanticSegmentation(VisMaePreTrainedModel):
    """Swin-Unet: the encoder, the Swin decoder with skip connections (concatenate the encoder map of the same size,
    1x1 convolution), a final 4x patch expansion and a 1x1 convolution to `num_labels` logits at input resolution.
    Loss: `segmentation_ce_weight` x cross-entropy + `segmentation_dice_weight` x soft Dice (0.4 / 0.6 published).

    Loaded from a pretraining checkpoint, every weight whose name and shape match is used, the MAE decoder included;
    the skip projections, the final expansion, the head and any blocks beyond the pretrained depths start fresh
    (`from_pretrained(..., output_loading_info=True)["missing_keys"]` lists them)."""

    _keys_to_ignore_on_load_unexpected = [
        r"^vis_mae\.embeddings\.mask_token$",
        r"^vis_mae\.layernorm\.",
        r"^reconstruction_head\.",
        r"^classifier\.",
    ]

    def __init__(self, config: VisMaeConfig):
        super().__init__(config)
        if config.num_labels < 2:
            raise ValueError(
                f"VisMaeForSemanticSegmentation needs num_labels >= 2 (background counts as a class), got "
                f"{config.num_labels}."
            )
        self.vis_mae = VisMaeModel(config, add_pooling_layer=False)
        self.decoder = VisMaeDecoder(config, use_skip_connections=True)
        self.final_patch_expanding = VisMaePatchExpanding(
            config, config.embed_dim, scale=config.patch_size, out_dim=config.embed_dim
        )
        self.segmentation_head = nn.Conv2d(config.embed_dim, config.num_labels, kernel_size=1, bias=False)
        self.post_init()

    def segmentation_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if labels.shape != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(
                f"labels must have shape (batch_size, height, width) = ({logits.shape[0]}, {logits.shape[2]}, "
                f"{logits.shape[3]}) matching the input, got {tuple(labels.shape)}."
            )
        labels = labels.long()
        logits = logits.float()
        ignore_index = self.config.semantic_loss_ignore_index
        cross_entropy = F.cross_entropy(logits, labels, ignore_index=ignore_index)
        dice = soft_dice_loss(logits.softmax(dim=1), labels, self.config.dice_include_background, ignore_index)
        return self.config.segmentation_ce_weight * cross_entropy + self.config.segmentation_dice_weight * dice

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> SemanticSegmenterOutput:
        r"""
        labels (`(batch_size, height, width)`, *optional*): class index per pixel, `semantic_loss_ignore_index` to
            leave a pixel out.

        `hidden_states` are the encoder's (as in `VisMaeModelOutput`); `attentions` holds one map per encoder block,
        then one per decoder block.
        """
        output_hidden_states, output_attentions = self.output_flags(output_hidden_states, output_attentions)
        outputs = self.vis_mae(
            pixel_values,
            output_hidden_states=True,  # the decoder's skips
            output_attentions=output_attentions,
            return_dict=True,
        )
        maps = [m.permute(0, 2, 3, 1) for m in outputs.reshaped_hidden_states]  # channels-last views
        decoded, decoder_attentions = self.decoder(maps[-1], skips=maps[:-2], output_attentions=output_attentions)
        expanded = self.final_patch_expanding(decoded)  # (batch, height, width, embed_dim)
        logits = self.segmentation_head(expanded.permute(0, 3, 1, 2))
        loss = self.segmentation_loss(logits, labels) if labels is not None else None
        return SemanticSegmenterOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states if output_hidden_states else None,
            attentions=outputs.attentions + decoder_attentions if output_attentions else None,
        )


# ---------------------------------------------------------------------------------------------------------------------
# Backbone
# ---------------------------------------------------------------------------------------------------------------------
class VisMaeBackbone(BackboneMixin, VisMaePreTrainedModel):
    """The VIS-MAE encoder as a Transformers backbone (`AutoBackbone`): the channels-first feature maps of the stages
    `config.out_features` names, for `UperNetForSemanticSegmentation` and the other heads built from a
    `backbone_config` that take a feature pyramid (Mask2Former, MaskFormer, DETR, RT-DETR; DPT and Depth Anything
    take plain-ViT token maps only, as with Transformers' own `SwinBackbone`).

    `config.stage_names` are `"stem"` (the patch embeddings) and `"stage1"`, `"stage2"`, ...: stage i's map is the
    output of its Swin blocks before the patch merging, `embed_dim * 2**(i - 1)` channels at `1 / (patch_size *
    2**(i - 1))` of the input's side (96 ... 768 channels at 1/4 ... 1/32 in the published models), the pyramid of
    Transformers' `SwinBackbone`. The default `out_features` is every encoder stage.

    Loads the encoder of any VIS-MAE checkpoint (pretraining, encoder, classifier, segmenter) and drops its heads.
    With `config.apply_layernorm`, a LayerNorm per returned stage normalises its map; VIS-MAE checkpoints have none,
    so they start fresh and the loading report lists them as missing.
    """

    _keys_to_ignore_on_load_unexpected = [
        r"^(vis_mae\.)?embeddings\.mask_token$",
        r"^(vis_mae\.)?layernorm\.",
        r"^decoder\.",
        r"^reconstruction_head\.",
        r"^final_patch_expanding\.",
        r"^segmentation_head\.",
        r"^classifier\.",
    ]

    def __init__(self, config: VisMaeConfig):
        super().__init__(config)
        self.num_features = [config.embed_dim] + config.stage_dims  # channels of each stage in `stage_names`
        self.vis_mae = VisMaeModel(config, add_pooling_layer=False)
        self.hidden_states_norms = None
        if config.apply_layernorm:
            self.hidden_states_norms = nn.ModuleDict(
                {
                    stage: nn.LayerNorm(channels, eps=config.layer_norm_eps)
                    for stage, channels in zip(self.out_features, self.channels)
                }
            )
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.vis_mae.embeddings.projection

    def stage_maps(
        self, pixel_values: torch.Tensor, output_attentions: bool = False
    ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]:
        """The channels-last map of every stage in `stage_names` (the stem, then each stage before its merging), and
        the attention maps of every block."""
        check_pixel_values(pixel_values, self.config)
        hidden_states = self.vis_mae.embeddings(pixel_values)  # (batch, height / 4, width / 4, embed_dim)
        maps, attentions = [hidden_states], ()
        for stage in self.vis_mae.encoder.stages:
            hidden_states, stage_attentions = stage.forward_blocks(hidden_states, output_attentions)
            maps.append(hidden_states)
            attentions += stage_attentions
            if stage.resample is not None:
                hidden_states = stage.resample(hidden_states)
        return maps, attentions

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BackboneOutput:
        r"""
        pixel_values (`(batch_size, num_channels, height, width)`): height and width multiples of 32 by default.

        Returns `BackboneOutput`: `feature_maps`, one `(batch_size, channels_i, height_i, width_i)` map per stage of
        `out_features`; `hidden_states` (`output_hidden_states=True`), the unnormalised map of every stage in
        `stage_names`, the same tensors as `feature_maps` where no LayerNorm applies; `attentions`
        (`output_attentions=True`, eager attention), one per block as `VisMaeModel` returns them.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        maps, attentions = self.stage_maps(pixel_values, bool(output_attentions))
        if output_attentions and len(attentions) != sum(self.config.depths):
            raise ValueError(
                "output_attentions=True needs the eager attention path; load the backbone with "
                f'attn_implementation="eager" (it is "{self.config._attn_implementation}").'
            )
        wanted = set(self.stage_names) if output_hidden_states else set(self.out_features)
        # Contiguous channels-first maps, made once: a head may view or flatten them.
        channels_first = {
            name: stage_map.permute(0, 3, 1, 2).contiguous()
            for name, stage_map in zip(self.stage_names, maps)
            if name in wanted
        }
        feature_maps = tuple(self.normalised_feature_map(name, channels_first[name]) for name in self.out_features)
        return BackboneOutput(
            feature_maps=feature_maps,
            hidden_states=tuple(channels_first[name] for name in self.stage_names) if output_hidden_states else None,
            attentions=attentions if output_attentions else None,
        )

    def normalised_feature_map(self, stage: str, feature_map: torch.Tensor) -> torch.Tensor:
        """`feature_map` (channels-first) through its stage's LayerNorm when `config.apply_layernorm`, else itself."""
        if self.hidden_states_norms is None:
            return feature_map
        normalised = self.hidden_states_norms[stage](feature_map.permute(0, 2, 3, 1))
        return normalised.permute(0, 3, 1, 2).contiguous()


__all__ = [
    "VisMaePreTrainedModel",
    "VisMaeModel",
    "VisMaeForPreTraining",
    "VisMaeForImageClassification",
    "VisMaeForSemanticSegmentation",
    "VisMaeBackbone",
]
