"""The Transformers behaviours a user of the four model classes and the processors relies on, one test each (issue 15:
each failed on the previous release). Transformers' own common tests run in tests/test_transformers_common.py."""

import contextlib
from unittest import mock

import pytest
import torch
import transformers.initialization as transformers_initialization
from transformers.image_processing_outputs import (
    SemanticSegmentationPostProcessorOutput,
)
from transformers.initialization import no_init_weights
from transformers.modeling_outputs import SemanticSegmenterOutput

from vis_mae_hf import (
    VisMaeConfig,
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeImageProcessor,
    VisMaeImageProcessorPil,
    VisMaeModel,
)
from vis_mae_hf.modeling_vis_mae import relative_position_index

ALL_CLASSES = [VisMaeModel, VisMaeForPreTraining, VisMaeForImageClassification, VisMaeForSemanticSegmentation]


def inputs_for(model_class, batch_size=2, size=64):
    """Pixels, and for pretraining a fixed mask, so that two calls compare equal."""
    generator = torch.Generator().manual_seed(0)
    inputs = {"pixel_values": torch.randn(batch_size, 3, size, size, generator=generator)}
    if model_class is VisMaeForPreTraining:
        inputs["noise"] = torch.rand(batch_size, (size // 16) ** 2, generator=generator)
    return inputs


def main_output(output):
    return output.last_hidden_state if "last_hidden_state" in output else output.logits


# ---------------------------------------------------------------------------------------------------------------------
# 1. Construction on the meta device, and device_map loading
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_class", ALL_CLASSES)
def test_models_build_on_the_meta_device(model_class):
    # The published size, drop path on (its rates were read back from a tensor), and a decoder deeper than the mirror
    # of the encoder (its rates were re-spaced with a tensor too).
    config = VisMaeConfig(drop_path_rate=0.1, decoder_depths=[3, 1, 2], num_labels=3)
    with torch.device("meta"):
        model = model_class(config)
    assert {parameter.device.type for parameter in model.parameters()} == {"meta"}
    blocks = [module for name, module in model.named_modules() if name.endswith(("blocks.0", "blocks.1"))]
    assert max(block.drop_path_rate for block in blocks) > 0


@pytest.mark.parametrize("rescue", ["with", "without"])
def test_from_pretrained_with_a_device_map_gives_the_saved_model(tmp_path, tiny_config, rescue):
    torch.manual_seed(0)
    saved = VisMaeForSemanticSegmentation(tiny_config(num_labels=3)).eval()
    saved.save_pretrained(tmp_path)
    # Transformers 5.24 makes torch.linspace create CPU tensors while it builds a model on the meta device, to rescue
    # custom models that read a tensor back in __init__; other releases and its quantized loading path do not.
    # "without" loads as those do.
    patch = contextlib.nullcontext()
    if rescue == "without" and hasattr(transformers_initialization, "meta_device_safe_creation_ops"):
        patch = mock.patch.object(transformers_initialization, "meta_device_safe_creation_ops", contextlib.nullcontext)
    with patch:
        loaded = VisMaeForSemanticSegmentation.from_pretrained(tmp_path, device_map="cpu").eval()
    assert loaded.device.type == "cpu"
    inputs = inputs_for(VisMaeForSemanticSegmentation)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, saved(**inputs).logits)


# ---------------------------------------------------------------------------------------------------------------------
# 2. Non-persistent buffers whatever init path runs
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_class", ALL_CLASSES)
def test_a_model_built_without_weight_init_then_loaded_runs_like_the_original(tiny_config, model_class):
    torch.manual_seed(0)
    original = model_class(tiny_config(num_labels=3)).eval()
    with no_init_weights():
        rebuilt = model_class(tiny_config(num_labels=3))
    rebuilt.load_state_dict(original.state_dict())  # non-persistent buffers are not in it
    indexes = [m.relative_position_index for m in rebuilt.modules() if hasattr(m, "relative_position_index")]
    assert indexes and all(torch.equal(index, relative_position_index(7)) for index in indexes)
    inputs = inputs_for(model_class)
    with torch.no_grad():
        assert torch.equal(main_output(rebuilt.eval()(**inputs)), main_output(original(**inputs)))


def test_buffers_are_rebuilt_after_materialising_a_meta_model(tiny_config):
    with torch.device("meta"):
        model = VisMaeModel(tiny_config())
    model.to_empty(device="cpu")  # buffers now hold whatever memory was there
    model.init_weights()
    for module in model.modules():
        if hasattr(module, "relative_position_index"):
            assert torch.equal(module.relative_position_index, relative_position_index(7))


# ---------------------------------------------------------------------------------------------------------------------
# 3. config.output_attentions is honoured as the keyword is
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_class", [VisMaeForPreTraining, VisMaeForSemanticSegmentation])
def test_config_output_attentions_returns_the_decoder_maps_too(tiny_config, model_class):
    torch.manual_seed(0)
    model = model_class(tiny_config(num_labels=3)).eval()
    model.set_attn_implementation("eager")
    inputs = inputs_for(model_class)
    with torch.no_grad():
        by_keyword = model(**inputs, output_attentions=True).attentions
        model.config.output_attentions = True
        by_config = model(**inputs).attentions
        assert model(**inputs, output_attentions=False).attentions is None  # the keyword still wins
    encoder_blocks, decoder_blocks = 8, 6  # depths (2, 2, 2, 2); the decoder mirrors the first three stages
    assert len(by_keyword) == len(by_config) == encoder_blocks + decoder_blocks
    for from_config, from_keyword in zip(by_config, by_keyword):
        assert torch.equal(from_config, from_keyword)


def test_config_output_hidden_states_is_honoured_by_every_class(tiny_config):
    for model_class in ALL_CLASSES:
        model = model_class(tiny_config(num_labels=3, output_hidden_states=True)).eval()
        with torch.no_grad():
            assert len(model(**inputs_for(model_class, batch_size=1)).hidden_states) == 5


# ---------------------------------------------------------------------------------------------------------------------
# 4. The attention implementation switches at run time
# ---------------------------------------------------------------------------------------------------------------------
def test_set_attn_implementation_switches_the_kernel_at_run_time(tiny_config):
    torch.manual_seed(0)
    model = VisMaeForSemanticSegmentation(tiny_config(num_labels=3)).eval()
    inputs = inputs_for(VisMaeForSemanticSegmentation)

    def run():
        sdpa = torch.nn.functional.scaled_dot_product_attention
        with mock.patch("torch.nn.functional.scaled_dot_product_attention", wraps=sdpa) as kernel, torch.no_grad():
            logits = model(**inputs).logits
        return logits, kernel.call_count

    model.set_attn_implementation("sdpa")
    assert model.config._attn_implementation == "sdpa"
    sdpa_logits, sdpa_calls = run()
    model.set_attn_implementation("eager")
    assert model.config._attn_implementation == "eager"
    eager_logits, eager_calls = run()
    assert sdpa_calls == 14 and eager_calls == 0  # one call per block (8 encoder, 6 decoder), then none
    torch.testing.assert_close(eager_logits, sdpa_logits, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="attn_implementation"):
        model.set_attn_implementation("not-an-implementation")


# ---------------------------------------------------------------------------------------------------------------------
# 5. Returned hidden states and attention maps are the tensors the forward computed with
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_class", [VisMaeModel, VisMaeForSemanticSegmentation])
def test_returned_hidden_states_and_attentions_receive_gradients(tiny_config, model_class):
    model = model_class(tiny_config(num_labels=3))
    model.set_attn_implementation("eager")
    outputs = model(**inputs_for(model_class), output_hidden_states=True, output_attentions=True)
    # Every hidden state and every map feeds the result. (The last channels-first map is a view of the last hidden
    # state for the caller; the encoder computes nothing from it, the segmentation decoder does.)
    returned = [*outputs.hidden_states, *outputs.attentions]
    if model_class is VisMaeModel:
        returned += list(outputs.reshaped_hidden_states[:-1])
    for tensor in returned:
        tensor.retain_grad()
    main_output(outputs).sum().backward()
    assert all(tensor.grad is not None and tensor.grad.abs().sum() > 0 for tensor in returned)


# ---------------------------------------------------------------------------------------------------------------------
# 6. post_process_semantic_segmentation(return_segmentation_scores=True)
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("processor_class", [VisMaeImageProcessor, VisMaeImageProcessorPil])
@pytest.mark.parametrize("target_sizes", [None, [(40, 50), (20, 30)]])
def test_semantic_segmentation_post_processing_returns_scores_on_request(processor_class, target_sizes):
    logits = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    outputs = SemanticSegmenterOutput(logits=logits)
    processor = processor_class()
    maps = processor.post_process_semantic_segmentation(outputs, target_sizes=target_sizes)
    with_scores = processor.post_process_semantic_segmentation(
        outputs, target_sizes=target_sizes, return_segmentation_scores=True
    )
    assert len(with_scores) == 2
    for index, (segmentation_map, result) in enumerate(zip(maps, with_scores)):
        height, width = target_sizes[index] if target_sizes else (16, 16)
        assert isinstance(result, SemanticSegmentationPostProcessorOutput)
        assert torch.equal(result.segmentation, segmentation_map)
        assert result.segmentation_scores.shape == (3, height, width)
        assert torch.equal(result.segmentation_scores.argmax(dim=0), result.segmentation)
    if target_sizes is None:  # unresized scores are the logits themselves
        assert all(torch.equal(result.segmentation_scores, logits[i]) for i, result in enumerate(with_scores))
