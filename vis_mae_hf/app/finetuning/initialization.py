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

from dataclasses import dataclass, field

from ...vocabulary import SEGMENTATION

INITIALIZATION_KINDS = ("vismae", "random", "swin")


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


@dataclass
class InitializationReport:
    """What the initialisation loaded: `fresh` parameters kept their random values, `unused` checkpoint ones were
    dropped (with the reason where known)."""

    initialization: str
    loaded: int = 0
    fresh: list[str] = field(default_factory=list)
    unused: dict[str, str] = field(default_factory=dict)
    details: str = ""

    def format(self) -> str:
        if self.initialization == "random":
            return "Initialisation: random (every parameter fresh)."
        lines = [
            f"Initialisation: {self.initialization}: {self.loaded} parameters loaded, {len(self.fresh)} fresh, "
            f"{len(self.unused)} unused."
        ]
        if self.details:
            lines.append(self.details)
        return "\n".join(lines)

    def to_json_dict(self) -> dict:
        return {
            "initialization": self.initialization,
            "loaded": self.loaded,
            "fresh": sorted(self.fresh),
            "unused": dict(sorted(self.unused.items())),
        }


def build_finetuning_model(
    task: str,
    initialization: Initialization | str,
    *,
    label_names: list[str],
    image_size: int,
    depths: list[int] | tuple[int, ...] | None = None,
    problem_type: str | None = None,
    config_overrides: dict | None = None,
):
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
        `(model, InitializationReport)`.
    """
    import torch

    from ...configuration_vis_mae import VisMaeConfig
    from ...modeling_vis_mae import (
        VisMaeForImageClassification,
        VisMaeForSemanticSegmentation,
    )
    from ...recipes import get_recipe

    if isinstance(initialization, str):
        initialization = Initialization.parse(initialization)
    model_class = VisMaeForSemanticSegmentation if task == SEGMENTATION else VisMaeForImageClassification
    fields = dict(
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: index for index, name in enumerate(label_names)},
        image_size=image_size,
    )
    if problem_type is not None:
        fields["problem_type"] = problem_type
    fields.update(config_overrides or {})
    published_depths = list(depths or get_recipe(task).depths)

    if initialization.kind == "random":
        fields.setdefault("depths", published_depths)
        model = model_class(VisMaeConfig(**fields))
        report = InitializationReport("random", fresh=[name for name, _ in model.named_parameters()])
        return model, report

    if initialization.kind == "swin":
        from ...weights.swin import vis_mae_from_swin

        fields.setdefault("depths", published_depths)
        model, swin_report = vis_mae_from_swin(initialization.source, model_class, **fields)
        report = InitializationReport(
            str(initialization),
            loaded=len(swin_report.mapped),
            fresh=list(swin_report.fresh),
            unused=dict(swin_report.unused),
            details=swin_report.format(),
        )
        return model, report

    if task == SEGMENTATION or depths is not None:
        fields.setdefault("depths", published_depths)
    try:
        model, info = model_class.from_pretrained(
            initialization.source, output_loading_info=True, dtype=torch.float32, **fields
        )
    except RuntimeError as error:
        if "mismatched" not in str(error):
            raise
        raise ValueError(
            f"--init {initialization}: the checkpoint's parameter shapes differ from the requested architecture "
            f"(overrides {config_overrides or {}}; see the load report above). Shape fields (embed_dim, num_heads, "
            "window_size, patch_size, num_channels) must match the checkpoint; drop them from --config_overrides."
        ) from error
    except OSError as error:
        raise OSError(
            f"--init {initialization}: cannot load a VIS-MAE checkpoint from {initialization.source!r} (a directory "
            f"with config.json and model.safetensors, or a cached Hub repo id). Pretrain one with "
            f"`accelerate launch examples/run_pretrain.py`. ({error})"
        ) from error
    if model.config.model_type != "vis_mae":
        raise ValueError(f"--init {initialization}: {initialization.source!r} is not a VIS-MAE checkpoint.")
    mismatched = {f"{key} (shape)": "shape differs" for key, *_ in info.get("mismatched_keys", [])}
    report = InitializationReport(
        str(initialization),
        loaded=len(model.state_dict()) - len(info["missing_keys"]),
        fresh=sorted(info["missing_keys"]),
        unused={**{key: "no such parameter in this model" for key in info["unexpected_keys"]}, **mismatched},
    )
    fresh_modules = sorted({_module_of(key) for key in report.fresh})
    if fresh_modules:
        report.details = "Fresh: " + ", ".join(fresh_modules)
    return model, report


def _module_of(key: str) -> str:
    """`decoder.stages.0.blocks.3.mlp.fc1.weight` -> `decoder.stages.0.blocks.3` (for a short summary)."""
    parts = key.split(".")
    if "blocks" in parts:
        return ".".join(parts[: parts.index("blocks") + 2])
    return ".".join(parts[:-1]) or key


__all__ = ["INITIALIZATION_KINDS", "Initialization", "InitializationReport", "build_finetuning_model"]
