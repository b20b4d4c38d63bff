# Copyright 2026 The vis-mae-hf developers. Licensed under the Apache License, Version 2.0.
"""Convert a checkpoint written by the published VIS-MAE scripts into a Transformers model directory.

    vis-mae convert --checkpoint PATH --task {pretraining,segmentation,classification} --output DIR

Reads `.pth` files as the published scripts save them (`{'model': state_dict, 'optimizer', 'epoch', 'scaler',
'args': argparse.Namespace}`) or a bare state dict, with torch's safe `weights_only=True` loader and only
`argparse.Namespace` allowed beyond plain containers; and `.safetensors`. The architecture (widths, depths, heads,
window, patch, classes) is read off the weights. The key mapping is the table `KEY_RULES` below, applied by the one
engine `weights.key_mapping` in strict mode: every published key must match exactly one rule, every model key must be
produced with the shape the model expects; anything else stops the conversion with every key at fault named. The
`LoadReport` says what went where and is written to `conversion_report.json` beside the model.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..configuration_vis_mae import VisMaeConfig
from ..modeling_vis_mae import (
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaePreTrainedModel,
    relative_position_index,
)
from ..output_folders import open_output_folder
from ..recipes import get_recipe
from ..vocabulary import CLASSIFICATION, PRETRAINING, SEGMENTATION
from .key_mapping import ConversionError, KeyRule, map_state_dict
from .load_report import LoadReport

TASK_MODEL_CLASSES: dict[str, type[VisMaePreTrainedModel]] = {
    PRETRAINING: VisMaeForPreTraining,
    SEGMENTATION: VisMaeForSemanticSegmentation,
    CLASSIFICATION: VisMaeForImageClassification,
}

# Published Swin block parameter names -> ours (shared by encoder stages `layers.i` and decoder up-stages `layers_up.i`).
_BLOCK_RULES = [
    (r"norm1\.(?P<p>weight|bias)", r"layernorm_before.\g<p>"),
    (r"attn\.qkv\.(?P<p>weight|bias)", r"attention.qkv.\g<p>"),
    (r"attn\.proj\.(?P<p>weight|bias)", r"attention.projection.\g<p>"),
    (r"attn\.relative_position_bias_table", r"attention.relative_position_bias_table"),
    (r"norm2\.(?P<p>weight|bias)", r"layernorm_after.\g<p>"),
    (r"mlp\.fc1\.(?P<p>weight|bias)", r"mlp.fc1.\g<p>"),
    (r"mlp\.fc2\.(?P<p>weight|bias)", r"mlp.fc2.\g<p>"),
]


def _block_rules(published_stage: str, our_stage: str) -> list[KeyRule]:
    return [
        KeyRule(
            rf"{published_stage}\.(?P<s>\d+)\.blocks\.(?P<b>\d+)\.{published}",
            rf"{our_stage}.\g<s>.blocks.\g<b>.{ours}",
        )
        for published, ours in _BLOCK_RULES
    ]


# The relative position index is a deterministic function of the window size: we rebuild it, and check that the
# published one is the standard index before dropping it (`_check_relative_position_indices`).
RELATIVE_POSITION_INDEX_RULE = KeyRule(
    r"(layers|layers_up)\.\d+\.blocks\.\d+\.attn\.relative_position_index",
    dropped_because="derived from the window size; rebuilt by the model and checked equal to the published one",
)

# The published key table. Order does not matter: a key matching two rules is an error.
KEY_RULES: list[KeyRule] = [
    KeyRule(r"patch_embed\.proj\.(?P<p>weight|bias)", r"vis_mae.embeddings.projection.\g<p>"),
    KeyRule(r"patch_embed\.norm\.(?P<p>weight|bias)", r"vis_mae.embeddings.norm.\g<p>"),
    KeyRule(r"mask_token", "vis_mae.embeddings.mask_token"),
    *_block_rules("layers", "vis_mae.encoder.stages"),
    KeyRule(
        r"layers\.(?P<s>\d+)\.downsample\.norm\.(?P<p>weight|bias)", r"vis_mae.encoder.stages.\g<s>.resample.norm.\g<p>"
    ),
    KeyRule(
        r"layers\.(?P<s>\d+)\.downsample\.reduction\.weight", r"vis_mae.encoder.stages.\g<s>.resample.reduction.weight"
    ),
    KeyRule(r"first_patch_expanding\.expand\.weight", "decoder.patch_expanding.expand.weight"),
    KeyRule(r"first_patch_expanding\.norm\.(?P<p>weight|bias)", r"decoder.patch_expanding.norm.\g<p>"),
    *_block_rules("layers_up", "decoder.stages"),
    KeyRule(r"layers_up\.(?P<s>\d+)\.upsample\.expand\.weight", r"decoder.stages.\g<s>.resample.expand.weight"),
    KeyRule(r"layers_up\.(?P<s>\d+)\.upsample\.norm\.(?P<p>weight|bias)", r"decoder.stages.\g<s>.resample.norm.\g<p>"),
    KeyRule(r"norm_up\.(?P<p>weight|bias)", r"decoder.layernorm.\g<p>"),
    KeyRule(r"skip_connection_layers\.(?P<s>\d+)\.(?P<p>weight|bias)", r"decoder.skip_projections.\g<s>.\g<p>"),
    KeyRule(r"decoder_pred\.(?P<p>weight|bias)", r"reconstruction_head.\g<p>"),
    KeyRule(r"final_patch_expanding\.expand\.weight", "final_patch_expanding.expand.weight"),
    KeyRule(r"final_patch_expanding\.norm\.(?P<p>weight|bias)", r"final_patch_expanding.norm.\g<p>"),
    # `head` is a 1x1 conv in the segmenter and a linear layer in the classifier; `norm` exists only in the classifier.
    KeyRule(r"head\.(?P<p>weight|bias)", r"{head}.\g<p>"),
    KeyRule(r"norm\.(?P<p>weight|bias)", r"vis_mae.layernorm.\g<p>"),
    KeyRule(r"pos_embed", dropped_because="the frozen 2-D sin-cos table the published model creates but never adds"),
    RELATIVE_POSITION_INDEX_RULE,
    KeyRule(
        r"(layers|layers_up)\.\d+\.blocks\.\d+\.attn_mask",
        dropped_because="a shifted-window mask some published variants keep as a buffer; rebuilt per input size",
    ),
]

HEAD_NAMES = {SEGMENTATION: "segmentation_head", CLASSIFICATION: "classifier", PRETRAINING: "head"}


# ---------------------------------------------------------------------------------------------------------------------
# Reading checkpoints
# ---------------------------------------------------------------------------------------------------------------------
def load_published_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Return (state_dict, training arguments as a dict; empty when the file holds none)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    if path.suffix == ".safetensors":
        return load_file(str(path)), {}
    # torch >= 2.6 defaults to weights_only=True, which refuses the Namespace the published scripts store under
    # 'args'. Allow exactly that class rather than turning the safe loader off for everything.
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the pickle names the class it refused
        raise ConversionError(
            f"Could not read {path} with torch.load(weights_only=True): {error}. Only tensors, plain containers and "
            "argparse.Namespace are accepted; re-save the state dict alone if the file holds other objects."
        ) from error
    if isinstance(checkpoint, dict) and "model" in checkpoint and isinstance(checkpoint["model"], dict):
        args = checkpoint.get("args")
        args = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
        state_dict = checkpoint["model"]
    elif isinstance(checkpoint, dict) and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state_dict, args = checkpoint, {}
    else:
        raise ConversionError(
            f"{path} holds neither a state dict nor a published training checkpoint "
            f"(a dict with a 'model' state dict); top-level keys: {list(checkpoint)[:10] if isinstance(checkpoint, dict) else type(checkpoint).__name__}."
        )
    # DataParallel/DDP prefixes appear in checkpoints saved from wrapped models.
    state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    return state_dict, args


# ---------------------------------------------------------------------------------------------------------------------
# Architecture inference
# ---------------------------------------------------------------------------------------------------------------------
def infer_task(state_dict: dict[str, torch.Tensor]) -> str:
    if "decoder_pred.weight" in state_dict:
        return PRETRAINING
    if any(key.startswith("skip_connection_layers.") for key in state_dict):
        return SEGMENTATION
    if "head.weight" in state_dict and state_dict["head.weight"].ndim == 2:
        return CLASSIFICATION
    raise ConversionError("Cannot tell the task from the keys: no decoder_pred, skip_connection_layers or linear head.")


def _count_blocks(state_dict: dict[str, torch.Tensor], stage_prefix: str) -> list[int]:
    depths: dict[int, int] = {}
    pattern = re.compile(rf"^{stage_prefix}\.(\d+)\.blocks\.(\d+)\.")
    for key in state_dict:
        match = pattern.match(key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
    return [depths[i] for i in sorted(depths)]


def _heads(state_dict: dict[str, torch.Tensor], stage_prefix: str, num_stages: int) -> list[int]:
    return [int(state_dict[f"{stage_prefix}.{i}.blocks.0.attn.relative_position_bias_table"].shape[1]) for i in range(num_stages)]


def infer_config(state_dict: dict[str, torch.Tensor], task: str, args: dict | None = None) -> VisMaeConfig:
    """Read the architecture off the weights (and a few training arguments the weights cannot tell)."""
    args = args or {}
    try:
        projection = state_dict["patch_embed.proj.weight"]
        embed_dim, num_channels, patch_size, _ = projection.shape
        depths = _count_blocks(state_dict, "layers")
        num_heads = _heads(state_dict, "layers", len(depths))
        table_rows = state_dict["layers.0.blocks.0.attn.relative_position_bias_table"].shape[0]
        fc1 = state_dict["layers.0.blocks.0.mlp.fc1.weight"]
    except KeyError as error:
        raise ConversionError(f"The checkpoint lacks {error}, which every published VIS-MAE model has.") from None
    window_size = (math.isqrt(int(table_rows)) + 1) // 2
    if (2 * window_size - 1) ** 2 != table_rows:
        raise ConversionError(f"relative_position_bias_table has {table_rows} rows, not (2*window-1)**2 for any window.")
    kwargs = dict(
        embed_dim=int(embed_dim),
        num_channels=int(num_channels),
        patch_size=int(patch_size),
        depths=depths,
        num_heads=num_heads,
        window_size=int(window_size),
        mlp_ratio=fc1.shape[0] / fc1.shape[1],
        qkv_bias="layers.0.blocks.0.attn.qkv.bias" in state_dict,
        layer_norm_eps=1e-6,
    )
    if task in (PRETRAINING, SEGMENTATION):
        decoder_depths = _count_blocks(state_dict, "layers_up")
        decoder_heads = _heads(state_dict, "layers_up", len(decoder_depths))
        # Keep the config symmetric (None) when the decoder mirrors the encoder, so deepening `depths` later
        # deepens the decoder too, as the published segmenter does.
        if decoder_depths != depths[-2::-1]:
            kwargs["decoder_depths"] = decoder_depths
        if decoder_heads != num_heads[-2::-1]:
            kwargs["decoder_num_heads"] = decoder_heads
    if task == SEGMENTATION:
        kwargs["num_labels"] = int(state_dict["head.weight"].shape[0])
        kwargs["image_size"] = int(args.get("img_size", 224))
    elif task == CLASSIFICATION:
        kwargs["num_labels"] = int(state_dict["head.weight"].shape[0])
        kwargs["image_size"] = int(args.get("img_size", args.get("input_size", 224)))
    else:
        kwargs["image_size"] = int(args.get("img_size", args.get("input_size", 224)))
        if "mask_ratio" in args:
            kwargs["mask_ratio"] = float(args["mask_ratio"])
        kwargs["norm_pix_loss"] = bool(args.get("norm_pix_loss", False))
    if "drop_path" in args or "drop_path_rate" in args:
        kwargs["drop_path_rate"] = float(args.get("drop_path", args.get("drop_path_rate")))
    return VisMaeConfig(**kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------------------------------------------------
def _check_relative_position_indices(state_dict: dict[str, torch.Tensor], report: LoadReport) -> None:
    """A dropped relative position index must be the standard one we rebuild, or the converted model would differ."""
    nonstandard = [
        key
        for key in report.dropped
        if RELATIVE_POSITION_INDEX_RULE.regex.fullmatch(key)
        and not torch.equal(state_dict[key].long(), relative_position_index(math.isqrt(state_dict[key].shape[0])))
    ]
    if nonstandard:
        raise ConversionError(
            f"{', '.join(nonstandard)}: not the standard Swin relative position index of its window, which the model "
            "rebuilds; a checkpoint with other indices cannot be converted.",
            report,
        )


def convert_state_dict(
    state_dict: dict[str, torch.Tensor], task: str | None = None, args: dict | None = None, source: str = "state dict"
) -> tuple[VisMaePreTrainedModel, LoadReport]:
    """Build our model for `task` from a published state dict (strict: every key maps, every model tensor is filled).

    Raises:
        ConversionError: naming every key at fault, the task that contradicts the weights, or the architecture that
            cannot be read off them.
    """
    task = task or infer_task(state_dict)
    if task not in TASK_MODEL_CLASSES:
        raise ConversionError(f"Unknown task {task!r}; expected one of {sorted(TASK_MODEL_CLASSES)}.")
    inferred = infer_task(state_dict)
    if inferred != task:
        raise ConversionError(f"--task {task} was requested but the weights are a {inferred} checkpoint.")
    model = TASK_MODEL_CLASSES[task](infer_config(state_dict, task, args))
    converted, report = map_state_dict(
        state_dict,
        KEY_RULES,
        {key: value.shape for key, value in model.state_dict().items()},
        source=source,
        target=type(model).__name__,
        strict=True,
        template_fields={"head": HEAD_NAMES[task]},
    )
    _check_relative_position_indices(state_dict, report)
    # strict: the report above already proved the key sets equal; this is the last line of defence.
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in converted.items()}, strict=True)
    model.eval()
    return model, report


CONVERT_TOOL = "vis-mae convert"  # the command named in the output folder's manifest
CONVERSION_REPORT_NAME = "conversion_report.json"


def convert_checkpoint(
    checkpoint: str | Path, task: str | None, output: str | Path, *, overwrite: bool = False
) -> LoadReport:
    """Convert a published checkpoint file into a model directory with the image processor of its recipe and
    `conversion_report.json` (the `LoadReport` plus the task).

    `output` must be a new or empty folder, or (with `overwrite`) an earlier output of this converter, of which only
    the files its manifest lists are replaced (`vis_mae_hf.output_folders`); nothing is written unless the whole
    conversion succeeds.
    """
    folder = open_output_folder(output, CONVERT_TOOL, inputs=[checkpoint], overwrite=overwrite)
    state_dict, args = load_published_checkpoint(checkpoint)
    model, report = convert_state_dict(state_dict, task, args, source=str(checkpoint))
    task = task or infer_task(state_dict)
    folder.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{folder.path.name}.staging-", dir=folder.path.parent) as staging:
        staging = Path(staging)
        model.save_pretrained(staging)
        # The image-processor settings of the recipe the checkpoint was trained with (normalisation differs per task).
        height, _ = model.config.image_height_width
        get_recipe(task).image_processor(height, num_channels=model.config.num_channels).save_pretrained(staging)
        conversion_report = {"task": task, **report.to_json_dict()}
        (staging / CONVERSION_REPORT_NAME).write_text(json.dumps(conversion_report, indent=1))
        folder.install(staging, last=[CONVERSION_REPORT_NAME])
    return report


__all__ = [
    "convert_checkpoint",
    "convert_state_dict",
    "load_published_checkpoint",
]
