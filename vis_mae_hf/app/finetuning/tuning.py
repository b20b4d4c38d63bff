"""Which weights a fine-tuning run trains: `--tuning full | linear_probe | lora`.

- `full`: every weight, as the paper fine-tunes.
- `linear_probe`: the encoder is frozen and the task head trains on its features. The head is what a pretraining
  checkpoint does not hold for the task: segmentation's Swin-Unet decoder, final expansion and 1x1 head;
  classification's pooling LayerNorm and linear classifier (a per-channel affine norm followed by a linear map is
  still a linear map of the normalised features, and that norm starts fresh from a pretraining checkpoint). The
  frozen encoder runs without stochastic depth (`drop_path_rate` 0 unless --config-overrides sets it), so its
  features are the same at every step, as in MAE's linear probing.
- `lora`: PEFT LoRA adapters (rank r; the update B A is scaled by alpha / r) on the Linear projections of every
  encoder block: attention `qkv` and `projection`, MLP `fc1` and `fc2` (configurable). The encoder's own weights
  are frozen; the task head (as above) trains whole and is saved with the adapter (PEFT's `modules_to_save`). The
  patch embedding and the patch merging layers stay frozen. Merged (`merge_lora`), the adapter gives a plain model
  of the same class and config, which `from_pretrained` and `vis-mae predict` load with an empty load report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ...vocabulary import SEGMENTATION

FULL, LINEAR_PROBE, LORA = "full", "linear_probe", "lora"
TUNING_MODES = (FULL, LINEAR_PROBE, LORA)
# The Linear layers of a Swin block (`VisMaeLayer`): attention.qkv, attention.projection, mlp.fc1, mlp.fc2.
LORA_TARGETS = ("qkv", "projection", "fc1", "fc2")
_BLOCK_PARENT = {"qkv": "attention", "projection": "attention", "fc1": "mlp", "fc2": "mlp"}
# The task heads: what trains beside a frozen encoder (or its adapters), by the model's module names.
SEGMENTATION_HEAD = ("decoder", "final_patch_expanding", "segmentation_head")
CLASSIFICATION_HEAD = ("vis_mae.layernorm", "classifier")
LORA_INSTALL_HINT = 'pip install "vis-mae-hf[lora]"'


@dataclass(frozen=True)
class LoraSettings:
    """LoRA's rank, scale, dropout and the block projections it adapts."""

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = LORA_TARGETS

    @classmethod
    def parse(cls, rank: int, alpha: float, dropout: float, target_modules: str) -> LoraSettings:
        """Settings from the command's values, refusing what PEFT would misread or silently ignore."""
        targets = tuple(dict.fromkeys(name.strip() for name in str(target_modules).split(",") if name.strip()))
        unknown = [name for name in targets if name not in LORA_TARGETS]
        if not targets or unknown:
            raise ValueError(
                f"--lora-target-modules {target_modules!r}: expected a comma-separated subset of "
                f"{', '.join(LORA_TARGETS)} (the attention and MLP projections of the encoder's blocks)."
            )
        if int(rank) < 1:
            raise ValueError(f"--lora-rank must be >= 1, got {rank}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"--lora-dropout must lie in [0, 1), got {dropout}.")
        return cls(int(rank), float(alpha), float(dropout), targets)

    @property
    def target_pattern(self) -> str:
        """The modules to adapt, as the regular expression PEFT matches whole module names against: the chosen
        projections of the encoder's blocks only (the segmentation decoder's blocks share their names)."""
        parts = "|".join(f"{_BLOCK_PARENT[name]}\\.{name}" for name in self.target_modules)
        return rf"vis_mae\.encoder\.stages\.\d+\.blocks\.\d+\.({parts})"

    def describe(self) -> str:
        return f"rank {self.rank}, alpha {self.alpha:g}, dropout {self.dropout:g} on {', '.join(self.target_modules)}"


def head_modules(task: str) -> tuple[str, ...]:
    """The module names that train beside a frozen encoder in the task's model."""
    return SEGMENTATION_HEAD if task == SEGMENTATION else CLASSIFICATION_HEAD


def tuning_config_overrides(tuning: str, config_overrides: dict) -> dict:
    """`VisMaeConfig` fields a tuning mode sets unless the user did: a frozen encoder runs without stochastic depth."""
    if tuning == LINEAR_PROBE:
        return {"drop_path_rate": 0.0, **config_overrides}
    return dict(config_overrides)


def apply_tuning(model: torch.nn.Module, tuning: str, task: str, lora: LoraSettings | None = None) -> torch.nn.Module:
    """`model` set up for `tuning`: itself (full), itself with the encoder frozen (linear_probe), or a PEFT model
    with LoRA adapters (lora)."""
    if tuning == FULL:
        return model
    if tuning == LINEAR_PROBE:
        heads = head_modules(task)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(any(name == head or name.startswith(head + ".") for head in heads))
        return model
    if tuning == LORA:
        return add_lora(model, task, lora or LoraSettings())
    raise ValueError(f"tuning must be one of {', '.join(TUNING_MODES)}, got {tuning!r}.")


def _peft():
    try:
        import peft
    except ImportError as error:
        raise ImportError(f"--tuning lora needs PEFT, which is not installed: {LORA_INSTALL_HINT}.") from error
    return peft


def add_lora(model: torch.nn.Module, task: str, lora: LoraSettings):
    """A PEFT model: LoRA adapters on the encoder's block projections, the task head trained whole."""
    peft = _peft()
    config = peft.LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_pattern,
        modules_to_save=list(head_modules(task)),
        bias="none",
    )
    return peft.get_peft_model(model, config)


def load_lora_adapter(base_model: torch.nn.Module, adapter_dir) -> torch.nn.Module:
    """The PEFT model of `base_model` (built as the run built it) with the adapter saved in `adapter_dir`."""
    return _peft().PeftModel.from_pretrained(base_model, str(adapter_dir))


def is_lora_model(model) -> bool:
    return getattr(model, "peft_config", None) is not None and callable(getattr(model, "get_base_model", None))


def merge_lora(peft_model) -> torch.nn.Module:
    """The plain model of a PEFT model: each adapter folded into its projection (W + alpha / r B A), the head's
    trained copy in place of the original; the PEFT model itself is consumed."""
    return peft_model.merge_and_unload()


def trainable_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, all) parameter counts; a PEFT model's head is counted once (its frozen original left out)."""
    trainable = total = 0
    for name, parameter in model.named_parameters():
        if ".original_module." in name:  # PEFT keeps the head's frozen original beside the trained copy
            continue
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    return trainable, total


def describe_tuning(model: torch.nn.Module, tuning: str, task: str, lora: LoraSettings | None = None) -> str:
    """One line: the mode, what trains and how many parameters that is."""
    trainable, total = trainable_counts(model)
    share = f"{trainable:,} of {total:,} parameters trainable ({100 * trainable / max(total, 1):.1f} %)"
    if tuning == FULL:
        return f"Tuning full: {share}."
    heads = ", ".join(head_modules(task))
    if tuning == LINEAR_PROBE:
        return f"Tuning linear_probe: the encoder frozen, {heads} trained; {share}."
    return f"Tuning lora: LoRA {(lora or LoraSettings()).describe()} of the encoder's blocks, {heads} trained; {share}."


def frozen_fresh_note(fresh_keys: list[str], tuning: str, task: str, initialization: str) -> str | None:
    """A warning when a frozen encoder holds tensors a checkpoint did not provide (they stay random): the published
    segmenter has depths (2, 2, 6, 2), the pretraining encoder (2, 2, 2, 2). None for `random`, which is all fresh
    on purpose."""
    if tuning == FULL or initialization == "random":
        return None
    heads = head_modules(task)
    frozen = [key for key in fresh_keys if not any(key == head or key.startswith(head + ".") for head in heads)]
    if not frozen:
        return None
    blocks = sorted({re.sub(r"^(.*?\.blocks\.\d+)\..*$", r"\1", key) for key in frozen})
    shown = ", ".join(blocks[:6]) + (f" and {len(blocks) - 6} more" if len(blocks) > 6 else "")
    return (
        f"--tuning {tuning} freezes {len(frozen)} encoder tensors the initialisation did not provide ({shown}): "
        "they keep their random values. To tune only pretrained blocks, give the checkpoint's depths, e.g. "
        "--config-overrides '{\"depths\": [2, 2, 2, 2]}'."
    )


def adapted_module_names(model: torch.nn.Module) -> list[str]:
    """The modules of a PEFT model that carry LoRA adapters (for reports and tests)."""
    names = {re.sub(r"\.lora_[AB]\..*$", "", name) for name, _ in model.named_parameters() if ".lora_A." in name}
    return sorted(name.removeprefix("base_model.model.") for name in names)


__all__ = [
    "LORA_TARGETS",
    "TUNING_MODES",
    "LoraSettings",
    "apply_tuning",
    "describe_tuning",
    "load_lora_adapter",
    "merge_lora",
]
