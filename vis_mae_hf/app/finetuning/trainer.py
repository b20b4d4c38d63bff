"""The fine-tuning `Trainer`: Transformers' own, with VIS-MAE's one weight-decay rule instead of Trainer's, and the
losses averaged over gradient-accumulation steps and processes as means.

Trainer exempts every parameter whose name contains "bias" or "norm"; the published recipes decay every parameter,
and the exempt mode exempts what the model names in `no_weight_decay()`, exactly as pretraining does.
"""

from __future__ import annotations

from transformers import Trainer

from ..weight_decay import decayed_parameter_names
from .tuning import is_lora_model


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
        # Trainer takes a forward with **kwargs for a loss that sums over the batch and divides by the
        # `num_items_in_batch` it passes, and then neither divides the loss by the gradient-accumulation steps nor
        # leaves it unscaled on several processes (it multiplies it by their number). VIS-MAE's losses are means over
        # their own batch (the segmentation Dice term over the whole batch), so Trainer must average them itself:
        # otherwise --gradient-accumulation-steps N and N processes each take N times the gradient.
        self.model_accepts_loss_kwargs = False

    def get_decay_parameter_names(self, model) -> list[str]:
        if not is_lora_model(model):
            return decayed_parameter_names(model, self.decay_norms_and_biases)
        # A PEFT model wraps the VIS-MAE model (adapters injected into it): the rule is the wrapped model's, and its
        # parameters are named as the wrapper names them.
        inner = model.get_base_model()
        inner_parameters = dict(inner.named_parameters())
        decayed = {id(inner_parameters[name]) for name in decayed_parameter_names(inner, self.decay_norms_and_biases)}
        return [name for name, parameter in model.named_parameters() if id(parameter) in decayed]


__all__ = ["VisMaeTrainer"]
