# Copyright 2026 The vis-mae-hf developers. Licensed under the Apache License, Version 2.0.
"""Start a VIS-MAE model from a Transformers Swin checkpoint (the paper's ImageNet baseline initialisation).

    model, report = vis_mae_from_swin("microsoft/swin-tiny-patch4-window7-224", VisMaeForSemanticSegmentation,
                                      num_labels=4, depths=[2, 2, 6, 2])
    print(report.format())

The VIS-MAE encoder is a Swin encoder with the same parameters under other names, so the weights of
`transformers.SwinModel` / `SwinForImageClassification` carry over wherever the shapes agree. The mapping is the table
`SWIN_KEY_RULES` below (Swin key, prefix `swin.` removed -> our key); Swin's separate query/key/value projections
are concatenated into our fused `qkv` (rows ordered query, key, value, each head-major, which is how our attention
splits it). Every Swin key must match exactly one rule: an unknown key means Transformers renamed something, and the
conversion stops instead of silently leaving weights behind.

What is carried and what is not (`SwinTransferReport` lists it key by key):
- carried: patch embedding and its norm, every encoder block whose (stage, index) exists in the target, the patch
  mergings, and Swin's final LayerNorm into the classifier's pooling norm (`vis_mae.layernorm`; Swin pools the
  same way: LayerNorm, then the mean over tokens). A segmenter has no such norm: it is reported unused.
- not carried: absolute position embeddings (VIS-MAE has none), the mask token, the ImageNet classifier, encoder
  blocks beyond the target's depths (a (2, 2, 2, 2) classifier from Swin-T's (2, 2, 6, 2) drops stage-2 blocks
  2-5). The whole decoder, the skip projections and the heads start fresh: Swin has nothing for them.

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

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..configuration_vis_mae import VisMaeConfig
from ..modeling_vis_mae import VisMaePreTrainedModel

_QKV_SLOTS = ("q", "k", "v")
_SWIN_PREFIX = "swin."

# Swin block parameter (inside `encoder.layers.<s>.blocks.<b>.`) -> ours (inside
# `vis_mae.encoder.stages.<s>.blocks.<b>.`).
_SWIN_BLOCK_RULES: list[tuple[str, str]] = [
    (r"layernorm_before\.(?P<p>weight|bias)", r"layernorm_before.\g<p>"),
    (r"attention\.(?P<qkv>q|k|v)_proj\.(?P<p>weight|bias)", r"attention.qkv.\g<p>"),  # fused, see module docstring
    (r"attention\.o_proj\.(?P<p>weight|bias)", r"attention.projection.\g<p>"),
    (r"attention\.relative_position_bias\.relative_position_bias_table", r"attention.relative_position_bias_table"),
    (r"layernorm_after\.(?P<p>weight|bias)", r"layernorm_after.\g<p>"),
    (r"mlp\.fc1\.(?P<p>weight|bias)", r"mlp.fc1.\g<p>"),
    (r"mlp\.fc2\.(?P<p>weight|bias)", r"mlp.fc2.\g<p>"),
]

# (Swin key regex, without the `swin.` prefix; our key template, or None for keys VIS-MAE has no place for).
SWIN_KEY_RULES: list[tuple[str, str | None]] = [
    (r"^embeddings\.patch_embeddings\.projection\.(?P<p>weight|bias)$", r"vis_mae.embeddings.projection.\g<p>"),
    (r"^embeddings\.norm\.(?P<p>weight|bias)$", r"vis_mae.embeddings.norm.\g<p>"),
    (r"^embeddings\.position_embeddings$", None),  # absolute positions: VIS-MAE has relative position bias only
    (r"^embeddings\.mask_token$", None),  # SimMIM's mask token; VIS-MAE fine-tuning models have none
    *[
        (
            rf"^encoder\.layers\.(?P<s>\d+)\.blocks\.(?P<b>\d+)\.{swin}$",
            rf"vis_mae.encoder.stages.\g<s>.blocks.\g<b>.{ours}",
        )
        for swin, ours in _SWIN_BLOCK_RULES
    ],
    (
        r"^encoder\.layers\.(?P<s>\d+)\.downsample\.norm\.(?P<p>weight|bias)$",
        r"vis_mae.encoder.stages.\g<s>.resample.norm.\g<p>",
    ),
    (
        r"^encoder\.layers\.(?P<s>\d+)\.downsample\.reduction\.weight$",
        r"vis_mae.encoder.stages.\g<s>.resample.reduction.weight",
    ),
    (r"^layernorm\.(?P<p>weight|bias)$", r"vis_mae.layernorm.\g<p>"),  # the pooling norm; classifiers only
    (r"^classifier\.(weight|bias)$", None),  # the ImageNet head: other classes
]

ARCHITECTURE_NOTES = [
    "LayerNorm eps: taken from the Swin config (Swin's patch-embedding and patch-merging norms use 1e-5).",
    "shift_single_window_stages=False: like Swin, no shift in stages whose map fits one window.",
    "Equal outputs only where every stage map is at least the window size (e.g. 224 px): on smaller maps Swin "
    "shrinks its window, VIS-MAE pads the map to the window.",
    "Drop path: Swin (Transformers) drops the attention branch only, VIS-MAE both branches (training only).",
]


@dataclass
class SwinTransferReport:
    """What `transfer_swin_weights` did, key by key.

    Attributes:
        mapped: our key -> the Swin key(s) it was filled from (three for a fused qkv).
        unused: Swin key -> why it was not used (no place in VIS-MAE, no such parameter in this model, shape).
        fresh: our keys that kept their fresh initialisation.
        notes: architecture differences that matter for this conversion.
    """

    source: str
    mapped: dict[str, list[str]] = field(default_factory=dict)
    unused: dict[str, str] = field(default_factory=dict)
    fresh: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def num_mapped_parameters(self) -> int:
        return len(self.mapped)

    def to_json_dict(self) -> dict:
        return {
            "source": self.source,
            "mapped": dict(sorted(self.mapped.items())),
            "unused": dict(sorted(self.unused.items())),
            "fresh": sorted(self.fresh),
            "notes": list(self.notes),
        }

    def format(self, max_keys: int = 12) -> str:
        """A readable summary: counts, then the unused and fresh keys grouped by module."""
        lines = [
            f"Swin -> VIS-MAE from {self.source}: {len(self.mapped)} parameters carried, "
            f"{len(self.unused)} Swin parameters unused, {len(self.fresh)} parameters fresh."
        ]
        if self.unused:
            lines.append("Unused Swin parameters:")
            lines.extend(_grouped(self.unused, max_keys))
        if self.fresh:
            lines.append("Fresh (randomly initialised) parameters:")
            lines.extend(_grouped({key: "" for key in self.fresh}, max_keys))
        if self.notes:
            lines.append("Notes:")
            lines.extend(f"  - {note}" for note in self.notes)
        return "\n".join(lines)


def _grouped(keys_with_reasons: dict[str, str], max_keys: int) -> list[str]:
    """Keys grouped by their module (the key without its block index and parameter name), with one reason each."""
    groups: dict[tuple[str, str], int] = {}
    for key, reason in sorted(keys_with_reasons.items()):
        module = re.sub(r"\.blocks\.\d+\..*$", ".blocks.*", key)
        module = re.sub(r"\.(weight|bias|relative_position_bias_table)$", "", module)
        groups[(module, reason)] = groups.get((module, reason), 0) + 1
    lines = [f"  {module} ({count}){': ' + reason if reason else ''}" for (module, reason), count in groups.items()]
    if len(lines) > max_keys:
        lines = lines[:max_keys] + [f"  ... and {len(lines) - max_keys} more groups"]
    return lines


def _match_rule(swin_key: str) -> tuple[str | None, str | None]:
    """(our key or None, q/k/v slot or None) for one Swin key; errors unless exactly one rule matches."""
    matches = [(pattern, target) for pattern, target in SWIN_KEY_RULES if re.match(pattern, swin_key)]
    if len(matches) != 1:
        raise KeyError(
            f"Swin parameter {swin_key!r} matches {len(matches)} rules of SWIN_KEY_RULES (expected exactly 1); "
            "this Transformers version may name Swin's parameters differently."
        )
    pattern, target = matches[0]
    if target is None:
        return None, None
    match = re.match(pattern, swin_key)
    return match.expand(target), match.groupdict().get("qkv")


def transfer_swin_weights(
    swin_state_dict: dict[str, torch.Tensor], model: VisMaePreTrainedModel, source: str = "state dict"
) -> SwinTransferReport:
    """Copy a Swin state dict into `model` (in place) wherever names map and shapes agree; report the rest.

    Args:
        swin_state_dict: the parameters of a `SwinModel` or `SwinForImageClassification` under Transformers' current
            (in-memory) names, with or without the `swin.` prefix. `load_swin_state_dict` produces it from a checkpoint.
        model: any VIS-MAE model (`VisMaeForSemanticSegmentation`, `VisMaeForImageClassification`, `VisMaeModel`
            wrapped in a head, ...). Its other parameters keep their fresh values.
        source: where the weights came from, for the report.
    """
    target_state = model.state_dict()
    base_prefix = "" if any(key.startswith("vis_mae.") for key in target_state) else "vis_mae."
    report = SwinTransferReport(source=source, notes=list(ARCHITECTURE_NOTES))
    qkv_parts: dict[str, dict[str, tuple[str, torch.Tensor]]] = {}
    values: dict[str, torch.Tensor] = {}
    for swin_key, tensor in swin_state_dict.items():
        if swin_key.endswith("relative_position_index"):
            continue  # derived from the window size; rebuilt by our `_init_weights`
        key = swin_key.removeprefix(_SWIN_PREFIX)
        ours, slot = _match_rule(key)
        if ours is None:
            report.unused[swin_key] = "no counterpart in VIS-MAE"
            continue
        if base_prefix:  # a bare VisMaeModel: its keys have no `vis_mae.` prefix
            ours = ours.removeprefix(base_prefix)
        if ours not in target_state:
            report.unused[swin_key] = "no such parameter in this model"
            continue
        if slot is not None:
            qkv_parts.setdefault(ours, {})[slot] = (swin_key, tensor)
            continue
        if tuple(tensor.shape) != tuple(target_state[ours].shape):
            report.unused[swin_key] = f"shape {tuple(tensor.shape)} != {tuple(target_state[ours].shape)}"
            continue
        values[ours] = tensor
        report.mapped[ours] = [swin_key]
    for ours, parts in qkv_parts.items():
        if set(parts) != set(_QKV_SLOTS):
            for swin_key, _ in parts.values():
                report.unused[swin_key] = f"incomplete query/key/value set for {ours}"
            continue
        fused = torch.cat([parts[slot][1] for slot in _QKV_SLOTS], dim=0)
        if tuple(fused.shape) != tuple(target_state[ours].shape):
            for swin_key, _ in parts.values():
                report.unused[swin_key] = f"fused qkv shape {tuple(fused.shape)} != {tuple(target_state[ours].shape)}"
            continue
        values[ours] = fused
        report.mapped[ours] = [parts[slot][0] for slot in _QKV_SLOTS]
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for ours, tensor in values.items():
            parameters[ours].copy_(tensor.to(parameters[ours].dtype))
    report.fresh = sorted(key for key in parameters if key not in values)
    return report


def load_swin_state_dict(source) -> tuple[dict[str, torch.Tensor], object, str]:
    """(state dict under current names, `SwinConfig`, description) from a Swin model, a directory or a Hub repo id.

    Checkpoints on disk use Swin's original key names (`attention.self.query`, ...); loading them through
    `from_pretrained` lets Transformers translate them, so the rules above see one naming only.
    """
    from transformers import (
        AutoConfig,
        SwinForImageClassification,
        SwinModel,
        SwinPreTrainedModel,
    )

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
    # ImageNet head shows up in our report as unused rather than vanishing.
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
        `(model, SwinTransferReport)`.
    """
    swin_state, swin_config, description = load_swin_state_dict(source)
    config = vis_mae_config_from_swin(swin_config, **config_overrides)
    model = model_class(config)
    report = transfer_swin_weights(swin_state, model, source=description)
    return model, report


__all__ = [
    "SWIN_KEY_RULES",
    "SwinTransferReport",
    "load_swin_state_dict",
    "transfer_swin_weights",
    "vis_mae_config_from_swin",
    "vis_mae_from_swin",
]
