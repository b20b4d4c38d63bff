"""The converter's key table against the published full-size key lists, and its refusals."""

import argparse
import subprocess
import sys

import pytest
import torch
from conftest import OFFICIAL_VECTORS
from safetensors.torch import save_file

from vis_mae_hf.modeling_vis_mae import relative_position_index
from vis_mae_hf.weights.key_mapping import ConversionError
from vis_mae_hf.weights.published import (
    convert_state_dict,
    load_published_checkpoint,
)


def full_size_state_dict(name: str) -> dict[str, torch.Tensor]:
    """Random tensors with every key, shape and dtype of a full-size published model."""
    generator = torch.Generator().manual_seed(0)
    state_dict = {}
    for line in (OFFICIAL_VECTORS / f"{name}_full_size_keys.tsv").read_text().splitlines():
        key, shape, dtype = line.split("\t")
        shape = tuple(int(s) for s in shape.split(","))
        if key.endswith("relative_position_index"):
            state_dict[key] = relative_position_index(7)
        else:
            assert dtype == "float32", key
            state_dict[key] = torch.randn(shape, generator=generator) * 0.02
    return state_dict


@pytest.mark.parametrize(
    "name, task, depths, num_labels",
    [
        ("pretrain", "pretraining", [2, 2, 2, 2], None),
        ("segmentation", "segmentation", [2, 2, 6, 2], 14),
        ("classification", "classification", [2, 2, 2, 2], 2),
    ],
)
def test_full_size_published_key_lists_convert_completely(name, task, depths, num_labels):
    state_dict = full_size_state_dict(name)
    model, report = convert_state_dict(state_dict, task)
    assert report.ok and not report.unused and not report.fresh and not report.problems
    assert sum(len(sources) for sources in report.loaded.values()) + len(report.dropped) == len(state_dict)
    config = model.config
    assert (config.embed_dim, config.depths, config.num_heads, config.window_size) == (96, depths, [3, 6, 12, 24], 7)
    if num_labels:
        assert config.num_labels == num_labels
    # every published tensor landed unchanged under its new name
    ours = model.state_dict()
    for target, (published,) in report.loaded.items():
        assert torch.equal(ours[target], state_dict[published]), (published, target)
    # the only keys dropped are the unused frozen table and the rebuilt position indices
    assert all(k == "pos_embed" or k.endswith("relative_position_index") for k in report.dropped)


def test_pretraining_model_size_matches_the_paper():
    model, _ = convert_state_dict(full_size_state_dict("pretrain"), "pretraining")
    count = lambda module: sum(p.numel() for p in module.parameters()) / 1e6  # noqa: E731
    # 26.9 M published, of which 0.3 M is the never-used frozen pos_embed that we drop.
    assert round(count(model) + 3136 * 96 / 1e6, 1) == 26.9
    assert round(count(model.vis_mae), 1) == 20.4 and round(count(model.decoder) + count(model.reconstruction_head), 1) == 6.2


def test_an_extra_key_is_rejected_by_name():
    state_dict = full_size_state_dict("classification")
    state_dict["layers.0.blocks.0.attn.mystery_scale"] = torch.ones(3)
    message = r"1 problem\(s\): layers\.0\.blocks\.0\.attn\.mystery_scale: matches no rule"
    with pytest.raises(ConversionError, match=message):
        convert_state_dict(state_dict, "classification")


def test_a_missing_key_is_rejected_by_name():
    state_dict = full_size_state_dict("classification")
    del state_dict["layers.2.downsample.reduction.weight"]
    message = r"1 problem\(s\): vis_mae\.encoder\.stages\.2\.resample\.reduction\.weight: no source key fills it"
    with pytest.raises(ConversionError, match=message):
        convert_state_dict(state_dict, "classification")


def test_every_problem_is_named_at_once_on_one_line_with_the_report_attached():
    state_dict = full_size_state_dict("classification")
    state_dict["layers.0.blocks.0.attn.mystery_scale"] = torch.ones(3)
    del state_dict["layers.2.downsample.reduction.weight"]
    state_dict["norm.weight"] = torch.ones(5)
    with pytest.raises(ConversionError) as caught:
        convert_state_dict(state_dict, "classification", source="bad.pth")
    message = str(caught.value)
    assert message.startswith("bad.pth does not convert into VisMaeForImageClassification: 4 problem(s): ")
    assert "\n" not in message  # the command prints it as its one error line
    for named in (
        "layers.0.blocks.0.attn.mystery_scale: matches no rule",
        "norm.weight -> vis_mae.layernorm.weight: shape (5,) != (768,)",
        "vis_mae.layernorm.weight: no source key fills it",
        "vis_mae.encoder.stages.2.resample.reduction.weight: no source key fills it",
    ):
        assert named in message
    report = caught.value.report
    assert not report.ok and report.unused["norm.weight"].startswith("shape (5,)")
    assert "Problems (4):" in report.format()


def test_a_nonstandard_relative_position_index_is_refused_by_name():
    state_dict = full_size_state_dict("classification")
    state_dict["layers.1.blocks.0.attn.relative_position_index"] = relative_position_index(7).flip(0)
    message = r"^layers\.1\.blocks\.0\.attn\.relative_position_index: not the standard"
    with pytest.raises(ConversionError, match=message):
        convert_state_dict(state_dict, "classification")


def test_task_contradicting_the_weights_is_rejected():
    with pytest.raises(ConversionError, match="--task segmentation was requested but the weights are a classification"):
        convert_state_dict(full_size_state_dict("classification"), "segmentation")


def test_pth_with_argparse_namespace_loads_safely(tmp_path):
    state_dict = full_size_state_dict("pretrain")
    args = argparse.Namespace(mask_ratio=0.6, img_size=224, norm_pix_loss=False, lr=1e-3, output_dir="out")
    path = tmp_path / "checkpoint-799.pth"
    torch.save({"model": state_dict, "optimizer": {"state": {}, "param_groups": []}, "epoch": 799, "scaler": {}, "args": args}, path)
    loaded, loaded_args = load_published_checkpoint(path)
    assert set(loaded) == set(state_dict) and loaded_args["mask_ratio"] == 0.6
    model, _ = convert_state_dict(loaded, None, loaded_args)
    assert model.config.mask_ratio == 0.6  # read from the training arguments, which the weights cannot tell


def test_pth_with_arbitrary_objects_is_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "args": ArbitraryObject()}, path)
    with pytest.raises(ConversionError, match="weights_only=True"):
        load_published_checkpoint(path)


class ArbitraryObject:
    pass


def test_command_line_exits_non_zero_and_names_the_key(tmp_path):
    state_dict = full_size_state_dict("classification")
    state_dict["extra.weight"] = torch.zeros(2)
    path = tmp_path / "bad.safetensors"
    save_file(state_dict, str(path))
    result = subprocess.run(
        [sys.executable, "-m", "vis_mae_hf.app", "convert", "--checkpoint", str(path), "--output", str(tmp_path / "o")],
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "extra.weight" in result.stderr
    assert not (tmp_path / "o").exists()  # a refused conversion writes nothing, not even the output folder


@pytest.mark.parametrize(
    "content, message",
    [
        ([1, 2], r"odd\.pth holds a list of 2 items: neither a state dict"),
        ({"model": {"encoder": {"w": torch.zeros(1)}}}, r"odd\.pth\['model'\] holds 1 entry other than tensors: encoder"),
        ({0: torch.zeros(1)}, r"odd\.pth holds 1 key other than parameter names \(strings\): 0\."),
        ({"model": {"w": torch.zeros(1)}, "args": "--img_size 224"}, r"odd\.pth\['args'\] holds a str"),
        ({"model": {"w": torch.tensor([1.0, float("inf")])}}, r"holds 1 tensor with NaN or infinite values: w\."),
        ({"model": {}}, r"odd\.pth\['model'\] holds an empty dict, not a state dict"),
    ],
    ids=["list", "nested", "int-key", "args-text", "infinite", "empty"],
)
def test_malformed_state_dicts_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "odd.pth"
    torch.save(content, path)
    with pytest.raises(ConversionError, match=message):
        load_published_checkpoint(path)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"input_size": 3200000}, r"^ckpt\.pth: its training arguments give input_size=3200000, outside 1\.\.4096"),
        ({"img_size": [224, 8192]}, r"img_size=\[224, 8192\], outside 1\.\.4096 px per side"),
        ({"img_size": 224.0}, r"img_size=224\.0; expected the input size in whole pixels"),
        ({"drop_path": "0.1"}, r"drop_path='0\.1'; expected a number"),
    ],
)
def test_training_arguments_outside_sane_values_are_refused(args, message):
    with pytest.raises(ConversionError, match=message):
        convert_state_dict(full_size_state_dict("classification"), "classification", args, source="ckpt.pth")


def test_a_rectangular_input_size_in_the_arguments_is_kept():
    model, _ = convert_state_dict(full_size_state_dict("classification"), "classification", {"img_size": (224, 320)})
    assert model.config.image_height_width == (224, 320)


def test_a_missing_or_misshapen_architecture_tensor_is_named():
    state_dict = full_size_state_dict("classification")
    state_dict["patch_embed.proj.weight"] = state_dict["patch_embed.proj.weight"].flatten()
    with pytest.raises(ConversionError, match=r"patch_embed\.proj\.weight has shape \(4608,\); .* 4 non-empty"):
        convert_state_dict(state_dict, "classification")
    del state_dict["layers.1.blocks.0.attn.relative_position_bias_table"]
    state_dict["patch_embed.proj.weight"] = torch.zeros(96, 3, 4, 4)
    with pytest.raises(ConversionError, match=r"lacks layers\.1\.blocks\.0\.attn\.relative_position_bias_table"):
        convert_state_dict(state_dict, "classification")
