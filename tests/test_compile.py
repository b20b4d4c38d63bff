"""The models under torch.compile: one graph per forward (no graph breaks), the same numbers as eager, and per-step
work that the optimisations moved out of the step (the shift mask) really built once."""

import pytest
import torch
from conftest import tiny_config_kwargs

from vis_mae_hf import (
    VisMaeConfig,
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeModel,
)
from vis_mae_hf.modeling_vis_mae import cached_shifted_window_attention_mask

SMALL = tiny_config_kwargs()
TRAINING = {**SMALL, "drop_path_rate": 0.1}  # stochastic depth on, as in pretraining, so it is traced too


def cases():
    """(model, inputs) in training mode with the loss, as a training step compiles them."""
    torch.manual_seed(0)
    pixels = torch.randn(2, 3, 224, 224)
    return {
        "pretraining": (VisMaeForPreTraining(VisMaeConfig(**TRAINING)), {"pixel_values": pixels}),
        "segmentation at 320 (padded windows)": (
            VisMaeForSemanticSegmentation(VisMaeConfig(**{**TRAINING, "depths": [2, 2, 6, 2]}, num_labels=3)),
            {"pixel_values": torch.randn(2, 3, 320, 320), "labels": torch.randint(0, 3, (2, 320, 320))},
        ),
        "classification": (
            VisMaeForImageClassification(VisMaeConfig(**TRAINING, num_labels=3)),
            {"pixel_values": pixels, "labels": torch.tensor([0, 2])},
        ),
        "encoder": (VisMaeModel(VisMaeConfig(**TRAINING)), {"pixel_values": pixels}),
    }


@pytest.mark.parametrize("name", list(cases()))
def test_forward_compiles_to_one_graph_without_breaks(name):
    model, inputs = cases()[name]
    explanation = torch._dynamo.explain(model.train())(**inputs)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_fullgraph_compiled_training_step_matches_eager():
    """fullgraph=True turns any graph break into an error; aot_eager traces forward and backward like inductor does
    (without generating kernels, to keep the test fast), so loss and gradients must equal eager's."""
    torch.manual_seed(0)
    model = VisMaeForPreTraining(VisMaeConfig(**SMALL)).train()
    pixels = torch.randn(2, 3, 224, 224)
    mask = model.random_masking(2, 224, 224)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")

    def loss_and_grads(module):
        model.zero_grad(set_to_none=True)
        loss = module(pixels, bool_masked_pos=mask).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    eager_loss, eager_grads = loss_and_grads(model)
    compiled_loss, compiled_grads = loss_and_grads(compiled)
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-6)
    assert compiled_grads.keys() == eager_grads.keys() and len(eager_grads) > 100
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_shift_mask_is_built_once_per_map_size_not_per_step():
    model = VisMaeForPreTraining(VisMaeConfig(**SMALL)).eval()
    pixels = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        model(pixels)
        built = cached_shifted_window_attention_mask.cache_info().misses
        model(pixels)
        model(torch.randn(3, 3, 224, 224))  # another batch size: the same map sizes
    assert cached_shifted_window_attention_mask.cache_info().misses == built
    with torch.no_grad():
        model(torch.randn(1, 3, 256, 256))  # new map sizes: new masks
    assert cached_shifted_window_attention_mask.cache_info().misses > built


def test_checkpoint_blocks_recomputes_only_the_blocks_under_the_given_paths():
    torch.manual_seed(0)
    model = VisMaeForPreTraining(VisMaeConfig(**SMALL)).train()
    chosen = model.checkpoint_blocks(["decoder.stages.2", "vis_mae.encoder.stages.0"])
    assert chosen == [
        "vis_mae.encoder.stages.0.blocks.0",
        "vis_mae.encoder.stages.0.blocks.1",
        "decoder.stages.2.blocks.0",
        "decoder.stages.2.blocks.1",
    ]
    runs = {}
    for name, module in model.named_modules():
        if name.endswith(".layernorm_before"):  # the first thing a block runs, also when it is recomputed
            module.register_forward_pre_hook(lambda *_, name=name: runs.__setitem__(name, runs.get(name, 0) + 1))
    model(torch.randn(1, 3, 224, 224)).loss.backward()
    recomputed = sorted(name.removesuffix(".layernorm_before") for name, count in runs.items() if count == 2)
    assert recomputed == sorted(chosen) and set(runs.values()) == {1, 2}
    with pytest.raises(ValueError, match=r"No Swin block lies under \['encoder.stages.0'\]; stages of this model: "):
        model.checkpoint_blocks(["encoder.stages.0"])  # the path lacks the `vis_mae.` prefix
    assert not any(getattr(m, "gradient_checkpointing", False) for m in model.modules())

