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
import numbers
import re
import tempfile
from pathlib import Path

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..configuration_vis_mae import MAX_IMAGE_SIDE, VisMaeConfig
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
_MAX_NAMED = 5  # entries named in an error about a state dict


# ---------------------------------------------------------------------------------------------------------------------
# Reading checkpoints
# ---------------------------------------------------------------------------------------------------------------------
def load_published_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Return (state_dict, training arguments as a dict; empty when the file holds none).

    Raises:
        FileNotFoundError: no such file.
        ConversionError: the file cannot be read safely, or does not hold a state dict (tensors keyed by name, all
            finite) with, optionally, its training arguments; the message names the file and what it holds.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    checkpoint = _read_checkpoint(path)
    if isinstance(checkpoint, dict) and "model" in checkpoint:
        state_dict, args = checkpoint["model"], _training_arguments(path, checkpoint.get("args"))
        where = f"{path}['model']"
    elif isinstance(checkpoint, dict) and checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state_dict, args, where = checkpoint, {}, str(path)
    else:
        raise ConversionError(
            f"{path} holds {_described(checkpoint)}: neither a state dict (parameter names -> tensors) nor a published "
            "training checkpoint (a dict with the state dict under 'model')."
        )
    _check_state_dict(where, state_dict)
    # DataParallel/DDP prefixes appear in checkpoints saved from wrapped models.
    state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    return state_dict, args


def _read_checkpoint(path: Path):
    """What the file holds: tensors by name (.safetensors), or what torch's safe loader unpickles."""
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise ConversionError(f"Could not read {path} as safetensors (damaged or truncated?): {error}.") from error
    # torch >= 2.6 defaults to weights_only=True, which refuses the Namespace the published scripts store under
    # 'args'. Allow exactly that class rather than turning the safe loader off for everything.
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the pickle names the class it refused
        raise ConversionError(
            f"Could not read {path} with torch.load(weights_only=True): {error}. Only tensors, plain containers and "
            "argparse.Namespace are accepted; re-save the state dict alone if the file holds other objects."
        ) from error


def _training_arguments(path: Path, args) -> dict:
    """The published scripts' `args` (an argparse.Namespace) as a dict; a plain dict or none is accepted too."""
    if args is None:
        return {}
    if isinstance(args, argparse.Namespace):
        args = vars(args)
    if not isinstance(args, dict) or not all(isinstance(name, str) for name in args):
        raise ConversionError(
            f"{path}['args'] holds {_described(args)}; the published scripts store their training arguments there "
            "as an argparse.Namespace (a dict of names also works). Re-save the checkpoint without 'args'."
        )
    return dict(args)


def _check_state_dict(where: str, state_dict) -> None:
    """A state dict maps parameter names (str) to finite tensors; anything else is named, a few entries at most."""
    if not isinstance(state_dict, dict) or not state_dict:
        raise ConversionError(f"{where} holds {_described(state_dict)}, not a state dict (parameter names -> tensors).")
    odd_keys = [repr(key) for key in state_dict if not isinstance(key, str)]
    odd_values = [
        f"{key} ({_described(value)})" for key, value in state_dict.items() if not isinstance(value, torch.Tensor)
    ]
    non_finite = [
        str(key)
        for key, value in state_dict.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    maps = "A state dict maps parameter names to tensors."
    for found, noun, what, advice in (
        (odd_keys, ("key", "keys"), "other than parameter names (strings)", maps),
        (odd_values, ("entry", "entries"), "other than tensors", maps),
        (non_finite, ("tensor", "tensors"), "with NaN or infinite values", "Training diverged or the file is damaged."),
    ):
        if found:
            more = f" and {len(found) - _MAX_NAMED} more" if len(found) > _MAX_NAMED else ""
            named = ", ".join(found[:_MAX_NAMED]) + more
            raise ConversionError(f"{where} holds {_count(len(found), *noun)} {what}: {named}. {advice}")


def _described(value) -> str:
    """What a checkpoint entry is, for an error message: `a tensor of shape (3, 4)`, `a dict of 2 entries`, `a list`."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, dict):
        keys = [repr(key) if len(repr(key)) <= 60 else repr(key)[:57] + "..." for key in list(value)[:_MAX_NAMED]]
        more = ", ..." if len(value) > _MAX_NAMED else ""
        if not value:
            return "an empty dict"
        return f"a dict of {_count(len(value), 'entry', 'entries')} ({', '.join(keys)}{more})"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {_count(len(value), 'item', 'items')}"
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def _count(number: int, noun: str, plural: str) -> str:
    return f"{number} {noun if number == 1 else plural}"


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


def _tensor(state_dict: dict[str, torch.Tensor], key: str, ndim: int) -> torch.Tensor:
    """`state_dict[key]`, which every published model has with `ndim` dimensions."""
    if key not in state_dict:
        raise ConversionError(f"The checkpoint lacks {key}, which every published VIS-MAE model has.")
    tensor = state_dict[key]
    if tensor.ndim != ndim or 0 in tensor.shape:
        raise ConversionError(
            f"The checkpoint's {key} has shape {tuple(tensor.shape)}; a published VIS-MAE model's has {ndim} non-empty "
            "dimensions."
        )
    return tensor


def _heads(state_dict: dict[str, torch.Tensor], stage_prefix: str, num_stages: int) -> list[int]:
    return [
        int(_tensor(state_dict, f"{stage_prefix}.{i}.blocks.0.attn.relative_position_bias_table", 2).shape[1])
        for i in range(num_stages)
    ]


def _image_size(args: dict, names: tuple[str, ...], task: str, source: str) -> int | list[int]:
    """The training input size the published scripts store in their args (the first of `names` present), default
    224; refused unless whole pixels within `MAX_IMAGE_SIDE` per side, since it becomes the converted processor's
    resize target."""
    name = next((name for name in names if name in args), None)
    if name is None:
        return 224
    value = args[name]
    sides = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(sides) not in (1, 2) or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in sides):
        raise ConversionError(
            f"{source}: its training arguments give {name}={value!r}; expected the input size in whole pixels, "
            "e.g. 224 or (224, 224)."
        )
    if not all(1 <= side <= MAX_IMAGE_SIDE for side in sides):
        raise ConversionError(
            f"{source}: its training arguments give {name}={value!r}, outside 1..{MAX_IMAGE_SIDE} px per side (the "
            f"published {task} recipe uses {get_recipe(task).image_size} px). Fix 'args' in the checkpoint, or re-save "
            "the state dict alone (the size is then 224)."
        )
    return int(sides[0]) if len(sides) == 1 else [int(side) for side in sides]


def _number(args: dict, name: str, source: str) -> float:
    if not isinstance(args[name], numbers.Real) or isinstance(args[name], bool):
        raise ConversionError(f"{source}: its training arguments give {name}={args[name]!r}; expected a number.")
    return float(args[name])


def infer_config(
    state_dict: dict[str, torch.Tensor], task: str, args: dict | None = None, source: str = "The checkpoint"
) -> VisMaeConfig:
    """Read the architecture off the weights (and a few training arguments the weights cannot tell); `source` (the
    file) starts each error message.

    Raises:
        ConversionError: a tensor every published model has is missing or of an impossible shape, a training
            argument is not a valid value (an input size beyond `MAX_IMAGE_SIDE` px per side, ...), or the result is
            not a valid `VisMaeConfig` (the config's own message).
    """
    args = args or {}
    embed_dim, num_channels, patch_size, _ = _tensor(state_dict, "patch_embed.proj.weight", 4).shape
    depths = _count_blocks(state_dict, "layers")
    num_heads = _heads(state_dict, "layers", len(depths))
    table_rows = _tensor(state_dict, "layers.0.blocks.0.attn.relative_position_bias_table", 2).shape[0]
    fc1 = _tensor(state_dict, "layers.0.blocks.0.mlp.fc1.weight", 2)
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
    if task in (SEGMENTATION, CLASSIFICATION):
        # The segmenter's head is a 1x1 convolution, the classifier's a linear layer.
        kwargs["num_labels"] = int(_tensor(state_dict, "head.weight", 4 if task == SEGMENTATION else 2).shape[0])
    # The segmentation scripts name the input size img_size; the others also accept input_size.
    size_names = ("img_size",) if task == SEGMENTATION else ("img_size", "input_size")
    kwargs["image_size"] = _image_size(args, size_names, task, source)
    if task == PRETRAINING:
        if "mask_ratio" in args:
            kwargs["mask_ratio"] = _number(args, "mask_ratio", source)
        kwargs["norm_pix_loss"] = bool(args.get("norm_pix_loss", False))
    for name in ("drop_path", "drop_path_rate"):
        if name in args:
            kwargs["drop_path_rate"] = _number(args, name, source)
            break
    try:
        return VisMaeConfig(**kwargs)
    except (ValueError, TypeError, StrictDataclassError) as error:
        # A strict-dataclass error only names the validator; it chains the config's own message.
        reason = str(error.__cause__ or error)
        raise ConversionError(f"{source}: its weights and training arguments are no valid VIS-MAE: {reason}") from error


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
    model = TASK_MODEL_CLASSES[task](infer_config(state_dict, task, args, source=source))
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
