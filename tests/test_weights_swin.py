"""Transformers Swin checkpoint -> VIS-MAE encoder (the ImageNet-baseline initialisation), checked numerically."""

import pytest
import torch
from transformers import SwinConfig, SwinForImageClassification, SwinModel

from vis_mae_hf import (
    VisMaeForImageClassification,
    VisMaeForSemanticSegmentation,
    VisMaeModel,
)
from vis_mae_hf.weights.key_mapping import ConversionError
from vis_mae_hf.weights.swin import (
    transfer_swin_weights,
    vis_mae_config_from_swin,
    vis_mae_from_swin,
)


def tiny_swin(depths=(2, 2, 2, 2), image_size=224, seed=0, **kwargs):
    torch.manual_seed(seed)
    config = SwinConfig(
        image_size=image_size, embed_dim=16, depths=list(depths), num_heads=[1, 2, 4, 8], num_labels=5, **kwargs
    )
    model = SwinForImageClassification(config).eval()
    # Swin initialises relative position tables (and LayerNorms) to constants: perturb every parameter so a wrong
    # mapping (a swapped q/k, a table read transposed) cannot go unnoticed.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model


def test_converted_classifier_pools_exactly_like_swin_at_224(tmp_path):
    swin = tiny_swin()
    swin.save_pretrained(tmp_path / "swin")  # on disk under Swin's original key names
    model, report = vis_mae_from_swin(tmp_path / "swin", VisMaeForImageClassification, num_labels=3, image_size=224)
    model.eval()
    pixel_values = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        expected = swin.swin(pixel_values).pooler_output
        got = model.vis_mae(pixel_values).pooler_output
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
    # everything but the ImageNet head is carried, the head is dropped on purpose, and only our new head starts fresh
    assert set(report.dropped) == {"classifier.weight", "classifier.bias"} and report.unused == {}
    assert report.dropped["classifier.weight"].startswith("the ImageNet classifier")
    assert sorted(report.fresh) == ["classifier.bias", "classifier.weight"]
    assert report.ok and report.source == str(tmp_path / "swin") and report.target == "VisMaeForImageClassification"
    assert report.loaded["vis_mae.encoder.stages.1.blocks.0.attention.qkv.weight"] == [
        f"swin.encoder.layers.1.blocks.0.attention.{name}_proj.weight" for name in "qkv"
    ]
    assert model.config.layer_norm_eps == swin.config.layer_norm_eps
    assert model.config.shift_single_window_stages is False


def test_one_shifted_block_attention_matches_swin():
    swin = tiny_swin()
    vis_mae = VisMaeForImageClassification(vis_mae_config_from_swin(swin.config, num_labels=2)).eval()
    transfer_swin_weights(swin.state_dict(), vis_mae)
    swin_block = swin.swin.encoder.layers[1].blocks[1]
    our_block = vis_mae.vis_mae.encoder.stages[1].blocks[1]
    hidden = torch.randn(2, 14, 14, 32)  # a 14x14 map of stage 1 (width 32): two windows per side, shifted
    with torch.no_grad():
        expected, _ = swin_block(hidden.flatten(1, 2), (14, 14))
        mask = vis_mae.vis_mae.encoder.stages[1].shift_mask(hidden)
        got, _ = our_block(hidden, mask)
    torch.testing.assert_close(got.flatten(1, 2), expected, atol=1e-5, rtol=1e-4)


def test_segmenter_takes_swin_t_layout_whole_and_reports_the_pooling_norm_unused():
    swin = tiny_swin(depths=(2, 2, 6, 2), image_size=64)
    model, report = vis_mae_from_swin(swin, VisMaeForSemanticSegmentation, num_labels=4, image_size=64)
    assert model.config.depths == [2, 2, 6, 2]
    assert report.unused["swin.layernorm.weight"] == "no such parameter in this model"
    assert "vis_mae.encoder.stages.2.blocks.5.attention.qkv.weight" in report.loaded
    encoder_fresh = [key for key in report.fresh if key.startswith("vis_mae.")]
    assert encoder_fresh == []  # the whole encoder comes from Swin
    assert any(key.startswith("decoder.skip_projections.") for key in report.fresh)
    assert "segmentation_head.weight" in report.fresh
    assert torch.equal(
        model.vis_mae.encoder.stages[2].blocks[5].mlp.fc1.weight, swin.swin.encoder.layers[2].blocks[5].mlp.fc1.weight
    )
    text = report.format()
    assert "tensors loaded" in text and "decoder.skip_projections" in text
    assert "Unused:\n  swin.layernorm (2): no such parameter in this model" in text


def test_published_classifier_depths_drop_the_extra_swin_t_blocks_and_say_so():
    swin = tiny_swin(depths=(2, 2, 6, 2), image_size=64)
    model, report = vis_mae_from_swin(
        swin, VisMaeForImageClassification, num_labels=2, image_size=64, depths=[2, 2, 2, 2]
    )
    dropped = {key for key, reason in report.unused.items() if reason == "no such parameter in this model"}
    assert any(key.startswith("swin.encoder.layers.2.blocks.5.") for key in dropped)
    assert not any(key.startswith("swin.encoder.layers.2.blocks.1.") for key in dropped)
    assert sorted(report.fresh) == ["classifier.bias", "classifier.weight"]


def test_a_shape_mismatch_is_reported_and_left_fresh():
    swin = tiny_swin(image_size=64)
    model, report = vis_mae_from_swin(swin, VisMaeForImageClassification, num_labels=2, image_size=64, num_channels=1)
    assert report.unused["swin.embeddings.patch_embeddings.projection.weight"].startswith("shape (16, 3, 4, 4)")
    assert "vis_mae.embeddings.projection.weight" in report.fresh
    assert "vis_mae.embeddings.projection.bias" in report.loaded  # the bias has the same shape: carried


def test_an_unknown_swin_key_stops_the_conversion():
    swin = tiny_swin(image_size=64)
    model = VisMaeForImageClassification(vis_mae_config_from_swin(swin.config, num_labels=2))
    state = dict(swin.state_dict())
    state["swin.encoder.layers.0.blocks.0.attention.gate.weight"] = torch.zeros(1)
    with pytest.raises(ConversionError, match=r"attention\.gate\.weight: matches no rule"):
        transfer_swin_weights(state, model)
    # nothing was copied before the refusal: the model keeps its own weights
    assert not torch.equal(
        model.vis_mae.encoder.stages[0].blocks[0].mlp.fc1.weight, swin.swin.encoder.layers[0].blocks[0].mlp.fc1.weight
    )


def test_a_non_swin_checkpoint_is_refused_with_its_type(tmp_path):
    from transformers import ViTConfig

    ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=1, intermediate_size=16).save_pretrained(
        tmp_path / "vit"
    )
    with pytest.raises(ValueError, match="'vit' checkpoint"):
        vis_mae_from_swin(tmp_path / "vit", VisMaeForImageClassification, num_labels=2)


def test_a_plain_swin_model_loads_too():
    swin = SwinModel(SwinConfig(image_size=64, embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8]))
    model, report = vis_mae_from_swin(swin, VisMaeForImageClassification, num_labels=2, image_size=64)
    assert report.fresh == ["classifier.bias", "classifier.weight"]
    assert torch.equal(model.vis_mae.layernorm.weight, swin.layernorm.weight)


def test_a_bare_swin_model_fills_a_bare_vis_mae_model():
    swin = tiny_swin(image_size=64)
    model = VisMaeModel(vis_mae_config_from_swin(swin.swin.config))
    report = transfer_swin_weights(swin.swin.state_dict(), model)  # no `swin.` prefix on either side
    assert report.fresh == [] and report.unused == {}
    assert report.loaded["encoder.stages.0.blocks.1.attention.qkv.bias"] == [
        f"encoder.layers.0.blocks.1.attention.{name}_proj.bias" for name in "qkv"
    ]
    assert torch.equal(model.layernorm.weight, swin.swin.layernorm.weight)


def test_an_incomplete_query_key_value_set_is_reported_and_left_fresh():
    swin = tiny_swin(image_size=64)
    model = VisMaeForImageClassification(vis_mae_config_from_swin(swin.config, num_labels=2))
    state = dict(swin.state_dict())
    del state["swin.encoder.layers.0.blocks.0.attention.k_proj.weight"]
    report = transfer_swin_weights(state, model)
    reason = report.unused["swin.encoder.layers.0.blocks.0.attention.q_proj.weight"]
    assert reason.startswith("incomplete q/k/v set for vis_mae.encoder.stages.0.blocks.0.attention.qkv.weight")
    assert "vis_mae.encoder.stages.0.blocks.0.attention.qkv.weight" in report.fresh
    assert "vis_mae.encoder.stages.0.blocks.0.attention.qkv.bias" in report.loaded
