"""`VisMaeBackbone`: the VIS-MAE encoder as a Transformers backbone (`AutoBackbone`, UperNet and other heads that
build their backbone from a `backbone_config`), loaded from any VIS-MAE checkpoint, saved, reloaded and exported."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from conftest import save_tiny_model, tiny_config_kwargs
from hostile import assert_one_error_line, file_hashes, vis_mae
from huggingface_hub import HfApi, constants
from PIL import Image
from test_hub_export import make_run
from test_hub_push import lay_out_hub_cache
from torch.nn import functional as F
from transformers import (
    AutoBackbone,
    SwinBackbone,
    SwinConfig,
    UperNetConfig,
    UperNetForSemanticSegmentation,
)

from vis_mae_hf import (
    VisMaeBackbone,
    VisMaeConfig,
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeModel,
)
from vis_mae_hf.hub import export_repository, validate_repository
from vis_mae_hf.hub.remote_code import CONFIG_AUTO_MAP
from vis_mae_hf.hub.remote_loading import (
    AUTO_MODEL_CLASSES,
    remote_code_loading_problems,
)

STAGES = ["stage1", "stage2", "stage3", "stage4"]
CHANNELS = [16, 32, 64, 128]  # the tiny config's embed_dim 16, doubled per stage


def tiny_config(**overrides) -> VisMaeConfig:
    return VisMaeConfig(**tiny_config_kwargs(image_size=64, **overrides))


def save_seeded(folder, model_class, **config_overrides):
    torch.manual_seed(0)
    model_class(tiny_config(**config_overrides)).save_pretrained(folder)
    return folder


def empty_report(loading_info) -> bool:
    return not any(loading_info.values())


@pytest.fixture
def pixel_values():
    torch.manual_seed(1)
    return torch.randn(2, 3, 64, 96)  # not square: height and width must not be mixed up


# ---------------------------------------------------------------------------------------------------------------------
# The encoder's feature maps, from any VIS-MAE checkpoint
# ---------------------------------------------------------------------------------------------------------------------
def test_auto_backbone_loads_a_pretraining_checkpoint_s_encoder_and_returns_its_four_stage_maps(tmp_path, pixel_values):
    checkpoint = save_seeded(tmp_path / "pretraining", VisMaeForPreTraining)
    backbone, loading_info = AutoBackbone.from_pretrained(checkpoint, output_loading_info=True)
    assert type(backbone) is VisMaeBackbone
    assert empty_report(loading_info), loading_info
    assert backbone.out_features == STAGES and backbone.channels == CHANNELS
    pretrained = VisMaeForPreTraining.from_pretrained(checkpoint).state_dict()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, pretrained[key]), key

    encoder = VisMaeModel.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        feature_maps = backbone.eval()(pixel_values).feature_maps
        hidden_states = encoder(pixel_values, output_hidden_states=True).reshaped_hidden_states
    assert [tuple(m.shape) for m in feature_maps] == [
        (2, channels, 64 // stride, 96 // stride) for channels, stride in zip(CHANNELS, (4, 8, 16, 32))
    ]
    # VisMaeModel's hidden states are the input of each stage (so each stage's map after its patch merging) and the
    # last output: the backbone's maps, taken before the merging, must merge into exactly those.
    stages = backbone.vis_mae.encoder.stages
    with torch.no_grad():
        for index, feature_map in enumerate(feature_maps[:-1]):
            merged = stages[index].resample(feature_map.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            torch.testing.assert_close(merged, hidden_states[index + 1], rtol=0, atol=1e-6)
    torch.testing.assert_close(feature_maps[-1], hidden_states[-1], rtol=0, atol=0)


@pytest.mark.parametrize(
    "model_class", [VisMaeModel, VisMaeForImageClassification, VisMaeForSemanticSegmentation, VisMaeBackbone]
)
def test_the_encoder_of_every_vis_mae_checkpoint_loads_with_an_empty_report(tmp_path, model_class, pixel_values):
    checkpoint = save_seeded(tmp_path / "checkpoint", model_class, num_labels=3)
    backbone, loading_info = AutoBackbone.from_pretrained(checkpoint, output_loading_info=True)
    assert empty_report(loading_info), loading_info
    encoder = VisMaeModel.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        expected = encoder(pixel_values).last_hidden_state  # (batch, tokens, channels) of the last stage
        last_map = backbone.eval()(pixel_values).feature_maps[-1]
    torch.testing.assert_close(last_map.flatten(2).transpose(1, 2), expected, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------------------
# Which stages, and their norms
# ---------------------------------------------------------------------------------------------------------------------
def test_out_features_and_out_indices_select_stages(tmp_path, pixel_values):
    checkpoint = save_seeded(tmp_path / "pretraining", VisMaeForPreTraining)
    every_stage = VisMaeBackbone.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        output = every_stage(pixel_values, output_hidden_states=True)
    assert every_stage.stage_names == ["stem", *STAGES] and len(output.hidden_states) == 5
    # hidden_states: every stage's map, the patch embeddings first; the feature maps are those same tensors
    assert all(feature_map is output.hidden_states[index + 1] for index, feature_map in enumerate(output.feature_maps))
    assert output.hidden_states[0].shape == (2, 16, 16, 24)

    by_index = AutoBackbone.from_pretrained(checkpoint, out_indices=[0, 2]).eval()
    by_name = AutoBackbone.from_pretrained(checkpoint, out_features=["stem", "stage2"]).eval()
    for backbone in (by_index, by_name):
        assert backbone.out_features == ["stem", "stage2"] and backbone.out_indices == [0, 2]
        assert backbone.channels == [16, 32]
        with torch.no_grad():
            stem, stage2 = backbone(pixel_values).feature_maps
        assert torch.equal(stem, output.hidden_states[0]) and torch.equal(stage2, output.hidden_states[2])
    last_only = VisMaeBackbone(tiny_config(out_indices=[-1]))
    assert last_only.out_features == ["stage4"] and last_only.channels == [128]


def test_no_selection_is_every_stage_and_explicit_nones_mean_the_last_stage_as_in_transformers():
    assert tiny_config().out_features == STAGES and tiny_config().out_indices == [1, 2, 3, 4]
    # Transformers' backbones read None for both as "the last stage"; so do its backbone tests and the setters
    assert tiny_config(out_features=None, out_indices=None).out_features == ["stage4"]
    config = tiny_config()
    config.out_features = None
    assert config.out_features == ["stage4"] and config.out_indices == [4]
    config.out_indices = [0, 1]
    assert config.out_features == ["stem", "stage1"]


def test_stage_names_follow_the_depths_and_a_bad_selection_names_the_stages(tmp_path):
    three_stages = tiny_config(depths=[2, 2, 2], num_heads=[1, 2, 4])
    assert three_stages.stage_names == ["stem", "stage1", "stage2", "stage3"]
    assert three_stages.out_features == ["stage1", "stage2", "stage3"]
    # a saved stage list is derived again from the depths, never trusted
    three_stages.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    saved["stage_names"] = ["stem", "stage1"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert VisMaeConfig.from_pretrained(tmp_path).stage_names == three_stages.stage_names
    for selection in ({"out_features": ["stage4"]}, {"out_indices": [4]}, {"out_features": ["stage2", "stage1"]}):
        with pytest.raises(ValueError, match=r"VisMaeConfig\.out_features/out_indices: .*stage_names"):
            tiny_config(depths=[2, 2, 2], num_heads=[1, 2, 4], **selection)


def test_a_config_json_naming_a_stage_the_model_lacks_is_one_error_line(tmp_path, capsys):
    model = Path(save_tiny_model(tmp_path / "segmenter", VisMaeForSemanticSegmentation, "segmentation", num_labels=3))
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "out_features": ["stage9"], "out_indices": None}))
    image = tmp_path / "image.png"
    Image.fromarray(np.full((40, 48), 128, dtype=np.uint8)).save(image)
    before = file_hashes(model)
    status, out, err = vis_mae(capsys, "predict", "--model", model, image, "--output", tmp_path / "out")
    assert status == 1 and out == ""
    assert_one_error_line(err, "predict", "VisMaeConfig.out_features/out_indices", "stage9", "stage4")
    assert not (tmp_path / "out").exists() and file_hashes(model) == before


def test_per_stage_norms_are_optional_and_reported_as_fresh(tmp_path, pixel_values):
    checkpoint = save_seeded(tmp_path / "pretraining", VisMaeForPreTraining)
    plain = VisMaeBackbone.from_pretrained(checkpoint).eval()
    normed, loading_info = VisMaeBackbone.from_pretrained(
        checkpoint, apply_layernorm=True, out_features=["stage1", "stage4"], output_loading_info=True
    )
    assert plain.hidden_states_norms is None
    assert sorted(normed.hidden_states_norms) == ["stage1", "stage4"]
    # the norms are not in a VIS-MAE checkpoint: the report says they start fresh, and nothing else
    assert loading_info["missing_keys"] == {
        f"hidden_states_norms.{stage}.{name}" for stage in ("stage1", "stage4") for name in ("weight", "bias")
    }
    assert not loading_info["unexpected_keys"] and not loading_info["mismatched_keys"]
    with torch.no_grad():
        maps = plain(pixel_values).feature_maps
        stage1, stage4 = normed.eval()(pixel_values).feature_maps
    for expected, normalised in ((maps[0], stage1), (maps[3], stage4)):
        reference = F.layer_norm(expected.permute(0, 2, 3, 1), expected.shape[1:2], eps=1e-6).permute(0, 3, 1, 2)
        torch.testing.assert_close(normalised, reference)


# ---------------------------------------------------------------------------------------------------------------------
# Heads built from a backbone config
# ---------------------------------------------------------------------------------------------------------------------
def test_upernet_with_a_pretrained_vis_mae_backbone_trains_on_cpu_and_reloads(tmp_path):
    checkpoint = save_seeded(tmp_path / "pretraining", VisMaeForPreTraining)
    pretrained = AutoBackbone.from_pretrained(checkpoint)
    config = UperNetConfig(
        backbone_config=pretrained.config, hidden_size=32, auxiliary_channels=16, num_labels=3
    )
    torch.manual_seed(0)
    model = UperNetForSemanticSegmentation(config)
    assert type(model.backbone) is VisMaeBackbone and model.backbone.channels == CHANNELS
    model.backbone.load_state_dict(pretrained.state_dict())
    pixel_values = torch.randn(2, 3, 64, 64)
    labels = torch.randint(0, 3, (2, 64, 64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for step in range(2):
        output = model(pixel_values=pixel_values, labels=labels)
        output.loss.backward()
        if step == 0:
            assert output.logits.shape == (2, 3, 64, 64)
            no_gradient = [
                name for name, p in model.backbone.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
            ]
            assert no_gradient == []
        losses.append(output.loss.item())
        optimizer.step()
        optimizer.zero_grad()
    assert all(torch.isfinite(torch.tensor(losses))) and losses[1] < losses[0], losses

    model.save_pretrained(tmp_path / "upernet")
    assert json.loads((tmp_path / "upernet" / "config.json").read_text())["backbone_config"]["model_type"] == "vis_mae"
    reloaded, loading_info = UperNetForSemanticSegmentation.from_pretrained(
        tmp_path / "upernet", output_loading_info=True
    )
    assert type(reloaded.backbone) is VisMaeBackbone and empty_report(loading_info), loading_info
    with torch.no_grad():
        assert torch.equal(model.eval()(pixel_values).logits, reloaded.eval()(pixel_values).logits)


@pytest.mark.parametrize(
    "head, make_config",
    [
        (
            "Mask2FormerForUniversalSegmentation",
            lambda backbone: transformers.Mask2FormerConfig(
                backbone_config=backbone, hidden_dim=32, feature_size=32, mask_feature_size=32, num_queries=5,
                encoder_feedforward_dim=32, dim_feedforward=32, encoder_layers=1, decoder_layers=2,
                num_attention_heads=2,
            ),
        ),
        (
            "MaskFormerForInstanceSegmentation",
            lambda backbone: transformers.MaskFormerConfig(
                backbone_config=backbone, fpn_feature_size=32, mask_feature_size=32,
                decoder_config={"model_type": "detr", "num_queries": 5, "d_model": 32, "decoder_layers": 1,
                                "decoder_attention_heads": 2, "decoder_ffn_dim": 32, "encoder_layers": 1,
                                "encoder_attention_heads": 2, "encoder_ffn_dim": 32},
            ),
        ),
        (
            "RTDetrForObjectDetection",
            lambda _: transformers.RTDetrConfig(  # its hybrid encoder takes the three coarsest stages
                backbone_config=tiny_config(out_features=["stage2", "stage3", "stage4"]),
                encoder_in_channels=[32, 64, 128], d_model=32, encoder_hidden_dim=32, decoder_in_channels=[32, 32, 32],
                num_queries=5, decoder_layers=1, encoder_layers=1,
            ),
        ),
        (
            "DetrForObjectDetection",
            lambda backbone: transformers.DetrConfig(
                use_timm_backbone=False, backbone_config=backbone, d_model=32, num_queries=5, encoder_layers=1,
                decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                decoder_ffn_dim=32,
            ),
        ),
    ],
)
def test_other_heads_that_take_a_backbone_config_run_on_vis_mae(head, make_config, pixel_values):
    torch.manual_seed(0)
    model = getattr(transformers, head)(make_config(tiny_config())).eval()
    assert any(type(module) is VisMaeBackbone for module in model.modules())
    with torch.no_grad():
        output = model(pixel_values=pixel_values)
    logits = output.class_queries_logits if "Mask" in head else output.logits
    assert logits.shape[:2] == (2, 5) and torch.isfinite(logits).all()


# ---------------------------------------------------------------------------------------------------------------------
# Save, reload, the Hub cache and Hub export
# ---------------------------------------------------------------------------------------------------------------------
def test_a_backbone_survives_save_and_reload_from_a_folder_and_from_the_hub_cache(tmp_path, monkeypatch, pixel_values):
    torch.manual_seed(0)
    backbone = VisMaeBackbone(tiny_config(out_features=["stage1", "stage3"], apply_layernorm=True)).eval()
    backbone.save_pretrained(tmp_path / "backbone")
    # an offline repository id, from a Hub cache laid out as a download leaves it
    cache = tmp_path / "hub-cache"
    lay_out_hub_cache(cache, "org/vis-mae-backbone", tmp_path / "backbone", "0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    with torch.no_grad():
        expected = backbone(pixel_values).feature_maps
    for source in (tmp_path / "backbone", str(tmp_path / "backbone"), "org/vis-mae-backbone"):
        reloaded, loading_info = AutoBackbone.from_pretrained(source, output_loading_info=True)
        assert type(reloaded) is VisMaeBackbone and empty_report(loading_info), (source, loading_info)
        assert reloaded.out_features == ["stage1", "stage3"] and reloaded.config.apply_layernorm
        with torch.no_grad():
            maps = reloaded.eval()(pixel_values).feature_maps
        assert all(torch.equal(a, b) for a, b in zip(maps, expected, strict=True)), source


def test_other_models_still_go_through_transformers_own_auto_backbone(tmp_path, monkeypatch):
    """Importing vis_mae_hf changes AutoBackbone.from_pretrained for VIS-MAE checkpoints on this machine only: any
    other name is still looked up on the Hub first, as Transformers does (here a Swin folder, the Hub stubbed)."""
    asked = []
    monkeypatch.setattr(HfApi, "repo_exists", lambda api, repo_id, **kwargs: asked.append(repo_id) or True)
    swin = SwinConfig(embed_dim=8, depths=[1, 1], num_heads=[1, 2], image_size=32, out_features=["stage2"])
    SwinBackbone(swin).save_pretrained(tmp_path / "swin")
    assert type(AutoBackbone.from_pretrained(tmp_path / "swin")) is SwinBackbone
    assert asked == [tmp_path / "swin"]


def test_a_hub_export_loads_as_a_backbone_with_and_without_the_package(tmp_path):
    """The exported config maps AutoBackbone to the repository's code; in a subprocess where vis_mae_hf cannot be
    imported, `trust_remote_code=True` loads VisMaeBackbone from that code and gives the package's feature maps (the
    check compares every Auto class, the backbone among them)."""
    export = export_repository(make_run(tmp_path / "run"), "mr", tmp_path / "export", repo_id="org/vis-mae-mr")
    config = json.loads((export / "config.json").read_text())
    assert config["auto_map"]["AutoBackbone"] == CONFIG_AUTO_MAP["AutoBackbone"] == "modeling_vis_mae.VisMaeBackbone"
    assert "AutoBackbone" in AUTO_MODEL_CLASSES
    backbone, loading_info = AutoBackbone.from_pretrained(export, output_loading_info=True)
    assert type(backbone) is VisMaeBackbone and empty_report(loading_info), loading_info
    assert validate_repository(export, "org/vis-mae-mr") == []
    assert remote_code_loading_problems(export) == []
