"""The one weight-decay rule of pretraining, fine-tuning and the notebooks.

The published VIS-MAE optimisers decay every parameter (`decay_norms_and_biases=True` in every recipe). With
`decay_norms_and_biases=False` the parameters the model names in `no_weight_decay()` (norms, biases, the mask token,
the relative-position bias tables) are exempt, as in MAE and timm. The model owns that list, so no loop keeps a rule
of its own.
"""

from __future__ import annotations

import torch


def decayed_parameter_names(model: torch.nn.Module, decay_norms_and_biases: bool) -> list[str]:
    """Names of the trainable parameters of `model` that take weight decay: all of them, or all but those its
    `no_weight_decay()` names."""
    exempt = set()
    if not decay_norms_and_biases:
        if not callable(getattr(model, "no_weight_decay", None)):
            raise TypeError(
                f"decay_norms_and_biases=False needs a model that names its exempt parameters with "
                f"`no_weight_decay()` (every VIS-MAE model does); {type(model).__name__} does not."
            )
        exempt = set(model.no_weight_decay())
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad and name not in exempt]


def parameter_groups(model: torch.nn.Module, weight_decay: float, decay_norms_and_biases: bool) -> list[dict]:
    """Optimiser parameter groups: the decayed parameters with `weight_decay`, the exempt ones (if any) with 0."""
    decayed = set(decayed_parameter_names(model, decay_norms_and_biases))
    trainable = [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]
    groups = [
        {"params": [parameter for name, parameter in trainable if name in decayed], "weight_decay": weight_decay},
        {"params": [parameter for name, parameter in trainable if name not in decayed], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


__all__ = ["decayed_parameter_names", "parameter_groups"]
