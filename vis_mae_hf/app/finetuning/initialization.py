"""Where a fine-tuned model's weights start: a VIS-MAE checkpoint, random, or a Transformers Swin checkpoint.

Initialisations are written as one string, the same in the scripts, the label-efficiency runner and its CSV:
- `vismae:<directory or Hub repo id>`: a VIS-MAE checkpoint (pretraining, or an earlier fine-tuning). The segmenter
  takes every weight whose name and shape match, the MAE decoder included; the classifier only the encoder.
- `random`: the published architecture, freshly initialised.
- `swin:<directory or Hub repo id>`: a Transformers Swin checkpoint, e.g. ImageNet's
  `microsoft/swin-tiny-patch4-window7-224` (the paper's ImageNet baseline), converted by `vis_mae_hf.weights.swin`
  into the task's published architecture with that checkpoint's widths.

Every initialisation builds the same architecture for a task (segmenter depths (2, 2, 6, 2), classifier
(2, 2, 2, 2) unless overridden), so label-efficiency curves compare weights, not architectures.
"""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass

import torch
from transformers.utils import logging as transformers_logging

from ...configuration_vis_mae import VisMaeConfig
from ...modeling_vis_mae import (
    VisMaeForImageClassification,
    VisMaeForSemanticSegmentation,
    VisMaePreTrainedModel,
)
from ...recipes import get_recipe
from ...vocabulary import SEGMENTATION
from ...weights.load_report import LoadReport
from ...weights.swin import vis_mae_from_swin

# Config fields that set parameter shapes: a VIS-MAE checkpoint fixes them.
SHAPE_FIELDS = ("embed_dim", "num_heads", "window_size", "patch_size", "num_channels")


@dataclass(frozen=True)
class Initialization:
    kind: str
    source: str | None = None

    @classmethod
    def parse(cls, text: str) -> Initialization:
        """`"vismae:<dir or repo>"`, `"random"` or `"swin:<dir or repo>"` -> Initialization."""
        text = (text or "").strip()
        kind, _, source = text.partition(":")
        kind = kind.lower()
        if kind == "random" and not source:
            return cls("random")
        if kind in ("vismae", "swin") and source:
            return cls(kind, source)
        raise ValueError(
            f"Unknown initialisation {text!r}: expected 'vismae:<checkpoint dir or repo id>', 'random' or "
            "'swin:<checkpoint dir or repo id>' (e.g. swin:microsoft/swin-tiny-patch4-window7-224)."
        )

    def __str__(self) -> str:
        return self.kind if self.source is None else f"{self.kind}:{self.source}"


def build_finetuning_model(
    task: str,
    initialization: Initialization | str,
    *,
    label_names: list[str],
    image_size: int,
    depths: list[int] | tuple[int, ...] | None = None,
    problem_type: str | None = None,
    config_overrides: dict | None = None,
) -> tuple[VisMaePreTrainedModel, LoadReport]:
    """The model of `task` ("segmentation", "classification" or "multilabel") starting from `initialization`.

    Args:
        label_names: class names (segmentation: including background); they become `id2label`, so pipelines and
            the metrics print names.
        image_size: the nominal input size written to the config (the processor's size).
        depths: encoder depths; None keeps the published depths of the task (a VIS-MAE classifier keeps its
            checkpoint's depths instead, which are the pretraining ones).
        problem_type: `single_label_classification` / `multi_label_classification` for classifiers.
        config_overrides: other `VisMaeConfig` fields (e.g. a tiny `embed_dim` for tests, `drop_path_rate`).

    Returns:
        `(model, LoadReport)`; the report's source is the initialisation string.
    """

    if isinstance(initialization, str):
        initialization = Initialization.parse(initialization)
    model_class = VisMaeForSemanticSegmentation if task == SEGMENTATION else VisMaeForImageClassification
    fields = _task_config_fields(label_names, image_size, problem_type, config_overrides)
    # A VIS-MAE classifier keeps its checkpoint's depths (the pretraining ones) unless `depths` says otherwise.
    if initialization.kind != "vismae" or task == SEGMENTATION or depths is not None:
        fields.setdefault("depths", list(depths or get_recipe(task).depths))
    start = {"random": _random_start, "swin": _swin_start, "vismae": _vismae_start}[initialization.kind]
    return start(initialization, model_class, fields)


def _task_config_fields(
    label_names: list[str], image_size: int, problem_type: str | None, config_overrides: dict | None
) -> dict:
    """The `VisMaeConfig` fields every initialisation sets: labels, size, problem type, then the overrides."""
    fields = dict(
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: index for index, name in enumerate(label_names)},
        image_size=image_size,
    )
    if problem_type is not None:
        fields["problem_type"] = problem_type
    fields.update(config_overrides or {})
    return fields


def _random_start(initialization: Initialization, model_class: type, fields: dict):
    model = model_class(VisMaeConfig(**fields))
    return model, LoadReport.all_fresh(str(initialization), model)


def _swin_start(initialization: Initialization, model_class: type, fields: dict):
    model, report = vis_mae_from_swin(initialization.source, model_class, **fields)
    return model, dataclasses.replace(report, source=str(initialization))


def _vismae_start(initialization: Initialization, model_class: type, fields: dict):
    """Every weight of the checkpoint whose name and shape match; a shape that differs is the caller's error."""

    # Transformers' own load report is silenced: the `LoadReport` returned here replaces it (and is printed).
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        model, info = model_class.from_pretrained(
            initialization.source, output_loading_info=True, ignore_mismatched_sizes=True, dtype=torch.float32, **fields
        )
    except OSError as error:
        raise OSError(
            f"--init {initialization}: cannot load a VIS-MAE checkpoint from {initialization.source!r} (a directory "
            f"with config.json and model.safetensors, or a cached Hub repo id). Pretrain one with "
            f"`accelerate launch examples/run_pretrain.py`. ({error})"
        ) from error
    except pickle.UnpicklingError as error:  # torch.load(weights_only=True) refused a pickle of more than tensors
        raise ValueError(
            f"--init {initialization}: the weights in {initialization.source!r} are a pickle that holds more than "
            "tensors and were refused unread (nothing in them ran). Use model.safetensors, as save_pretrained writes."
        ) from error
    finally:
        transformers_logging.set_verbosity(verbosity)
    if model.config.model_type != "vis_mae":
        raise ValueError(f"--init {initialization}: {initialization.source!r} is not a VIS-MAE checkpoint.")
    if info["mismatched_keys"]:
        differing = sorted(f"{key} {tuple(found)} != {tuple(wanted)}" for key, found, wanted in info["mismatched_keys"])
        requested = {name: fields[name] for name in SHAPE_FIELDS if name in fields}
        raise ValueError(
            f"--init {initialization}: the checkpoint's parameter shapes differ from the requested architecture "
            f"(requested {requested}): {'; '.join(differing[:5])}{' ...' if len(differing) > 5 else ''}. Shape fields "
            f"({', '.join(SHAPE_FIELDS)}) must match the checkpoint; drop them from --config-overrides."
        )
    return model, LoadReport.from_loading_info(str(initialization), model, info)


__all__ = [
    "Initialization",
    "build_finetuning_model",
]
