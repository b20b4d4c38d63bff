"""The fine-tuning `Trainer`: Transformers' own, with VIS-MAE's one weight-decay rule instead of Trainer's.

Trainer exempts every parameter whose name contains "bias" or "norm"; the published recipes decay every parameter,
and the exempt mode exempts what the model names in `no_weight_decay()`, exactly as pretraining does.
"""

from __future__ import annotations

from transformers import Trainer

from ..weight_decay import decayed_parameter_names


class VisMaeTrainer(Trainer):
    """`transformers.Trainer` whose weight decay follows `vis_mae_hf.app.weight_decay`.

    Args:
        decay_norms_and_biases: True (every recipe, as published) decays every parameter; False exempts the
            parameters the model's `no_weight_decay()` names (norms, biases, mask token, position bias tables).
        *args, **kwargs: `transformers.Trainer`'s.
    """

    def __init__(self, *args, decay_norms_and_biases: bool, **kwargs):
        self.decay_norms_and_biases = decay_norms_and_biases
        super().__init__(*args, **kwargs)

    def get_decay_parameter_names(self, model) -> list[str]:
        return decayed_parameter_names(model, self.decay_norms_and_biases)


__all__ = ["VisMaeTrainer"]
