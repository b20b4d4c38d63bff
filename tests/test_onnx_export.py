"""`vis-mae export onnx`: each VIS-MAE head exported as a user would, then run in ONNX Runtime (CPU) against the PyTorch
model it came from, at 224x224 and 224x320, batch 1 and 3, within 1e-4 x max(1, max|PyTorch|); the folder holds what
its README promises and the README's code runs; bad input is one error line and writes nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import save_tiny_model
from hostile import assert_one_error_line, file_hashes, vis_mae
from transformers import SwinConfig, SwinModel

from vis_mae_hf import (
    VisMaeBackbone,
    VisMaeConfig,
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeImageProcessor,
    VisMaeModel,
    onnx_export,
)
from vis_mae_hf.recipes import get_recipe

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-4
EXPORTED_FILES = {"model.onnx", "preprocessor_config.json", "config.json", "README.md", "onnx_export.json"}
HEADS = {
    "encoder": (VisMaeModel, "pretraining", {}),
    "classifier": (VisMaeForImageClassification, "classification", {"num_labels": 3}),
    "segmenter": (VisMaeForSemanticSegmentation, "segmentation", {"num_labels": 3}),
    "pretraining": (VisMaeForPreTraining, "pretraining", {}),
}


def pytorch_outputs(model, inputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The model's outputs under the names the ONNX graph gives them, computed by PyTorch."""
    with torch.no_grad():
        outputs = model(**inputs, return_dict=True)
    names = onnx_export.SIGNATURES[type(model).__name__].outputs
    return {name: outputs[name].numpy() for name in names}


def graph_inputs(model, batch_size: int, height: int, width: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(batch_size)
    inputs = {"pixel_values": torch.rand(batch_size, model.config.num_channels, height, width, generator=generator)}
    if isinstance(model, VisMaeForPreTraining):
        inputs["bool_masked_pos"] = model.random_masking(batch_size, height, width, generator=generator)
    return inputs


@pytest.mark.parametrize("size", [(224, 224), (224, 320)], ids=["224x224", "224x320"])
@pytest.mark.parametrize("head", list(HEADS))
def test_onnx_runtime_matches_pytorch_for_every_head_size_and_batch(tmp_path, capsys, head, size):
    model_class, recipe, overrides = HEADS[head]
    model_dir = save_tiny_model(tmp_path / "model", model_class, recipe, **overrides)
    height, width = size
    output = tmp_path / "onnx"
    status, out, err = vis_mae(capsys, "export", "onnx", "--model", model_dir, "--output", output,
                               "--height", height, "--width", width)
    assert status == 0, err
    assert f"{model_class.__name__} at {height}x{width}" in out

    assert {path.name for path in output.iterdir()} - {".vis-mae-outputs.json"} == EXPORTED_FILES
    summary = json.loads((output / "onnx_export.json").read_text())
    assert (summary["architecture"], summary["height"], summary["width"]) == (model_class.__name__, height, width)
    processor = VisMaeImageProcessor.from_pretrained(output)
    assert (processor.size.height, processor.size.width) == (height, width)  # the processor makes the graph's input
    assert f"Input size: {height}x{width} pixels, fixed" in (output / "README.md").read_text()

    model = model_class.from_pretrained(model_dir).eval()  # the default (SDPA) path: the export must match it too
    session = onnxruntime.InferenceSession(str(output / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [graph_input.shape for graph_input in session.get_inputs()][0] == ["batch", 3, height, width]
    for batch_size in (1, 3):
        inputs = graph_inputs(model, batch_size, height, width)
        expected = pytorch_outputs(model, inputs)
        found = session.run(list(expected), {name: value.numpy() for name, value in inputs.items()})
        for (name, reference), value in zip(expected.items(), found):
            assert value.shape == reference.shape, name
            bound = TOLERANCE * max(1.0, float(np.abs(reference).max()))
            assert float(np.abs(value - reference).max()) <= bound, (name, batch_size)
    with pytest.raises(Exception, match=f"Expected: {width}"):  # the size is fixed, and ONNX Runtime says which
        session.run(None, {name: value.numpy() for name, value in graph_inputs(model, 1, height, width + 32).items()})
    check_readme_code(output, model)


def check_readme_code(output: Path, model) -> None:
    """The README's code runs on images of other sizes and gives what PyTorch gives on the processor's output."""
    readme = (output / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    images = [np.random.default_rng(0).random((80, 100)), np.random.default_rng(1).random((50, 70, 3))]
    namespace = {"images": images}
    exec(code, namespace)  # the README of our own export
    inputs = {"pixel_values": namespace["pixel_values"]}
    if isinstance(model, VisMaeForPreTraining):
        inputs["bool_masked_pos"] = namespace["bool_masked_pos"]
    expected = pytorch_outputs(model, {name: torch.from_numpy(value) for name, value in inputs.items()})
    for name, reference in expected.items():
        bound = TOLERANCE * max(1.0, float(np.abs(reference).max()))
        assert float(np.abs(namespace[name] - reference).max()) <= bound, name


def test_the_project_readme_onnx_runtime_example_runs_on_an_exported_segmenter(tmp_path, capsys):
    readme = (ROOT / "README.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "onnxruntime" in block)
    model_dir = save_tiny_model(tmp_path / "model", VisMaeForSemanticSegmentation, "segmentation", num_labels=3)
    status, _, err = vis_mae(capsys, "export", "onnx", "--model", model_dir, "--output", tmp_path / "onnx")
    assert status == 0, err
    assert '"outputs/segmenter-onnx"' in code
    namespace: dict = {}
    exec(code.replace('"outputs/segmenter-onnx"', repr(str(tmp_path / "onnx"))), namespace)
    model = VisMaeForSemanticSegmentation.from_pretrained(model_dir).eval()
    pixel_values = VisMaeImageProcessor.from_pretrained(tmp_path / "onnx")(namespace["scan"], return_tensors="pt")
    expected = pytorch_outputs(model, {"pixel_values": pixel_values["pixel_values"]})["logits"]
    assert namespace["logits"].shape == expected.shape and namespace["mask"].shape == expected.shape[-2:]
    assert float(np.abs(namespace["logits"] - expected).max()) <= TOLERANCE * max(1.0, float(np.abs(expected).max()))


def test_published_size_segmenter_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    model = VisMaeForSemanticSegmentation(VisMaeConfig(num_labels=2)).eval()
    model.save_pretrained(tmp_path / "model")
    get_recipe("segmentation").image_processor(224).save_pretrained(tmp_path / "model")
    export = onnx_export.export_onnx(tmp_path / "model", tmp_path / "onnx")
    assert (export.height, export.width) == (224, 224)
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = graph_inputs(model, 1, 224, 224)
    (expected,) = pytorch_outputs(model, inputs).values()
    (found,) = session.run(["logits"], {"pixel_values": inputs["pixel_values"].numpy()})
    assert float(np.abs(found - expected).max()) <= TOLERANCE * max(1.0, float(np.abs(expected).max()))


# ---------------------------------------------------------------------------------------------------------- bad input


def test_a_size_that_is_not_a_multiple_of_32_is_one_line_and_writes_nothing(tmp_path, capsys):
    model_dir = save_tiny_model(tmp_path / "model", VisMaeForSemanticSegmentation, "segmentation", num_labels=2)
    before = file_hashes(tmp_path)
    status, _, err = vis_mae(capsys, "export", "onnx", "--model", model_dir, "--output", tmp_path / "out",
                             "--height", 100)
    assert status == 1
    assert_one_error_line(err, "export onnx", "--height 100", "multiple of 32", "96")
    assert file_hashes(tmp_path) == before and not (tmp_path / "out").exists()


def test_a_model_that_is_not_vis_mae_is_one_line(tmp_path, capsys):
    swin = SwinModel(SwinConfig(embed_dim=8, depths=[1, 1], num_heads=[1, 1], image_size=32))
    swin.save_pretrained(tmp_path / "swin")
    status, _, err = vis_mae(capsys, "export", "onnx", "--model", tmp_path / "swin", "--output", tmp_path / "out")
    assert status == 1
    assert_one_error_line(err, "export onnx", str(tmp_path / "swin"), "'swin'", "not a VIS-MAE model")
    assert not (tmp_path / "out").exists()


def test_an_architecture_without_an_export_is_one_line_naming_the_exportable_ones(tmp_path, capsys, tiny_config):
    VisMaeBackbone(tiny_config()).save_pretrained(tmp_path / "backbone")
    status, _, err = vis_mae(capsys, "export", "onnx", "--model", tmp_path / "backbone", "--output", tmp_path / "out")
    assert status == 1
    assert_one_error_line(err, "export onnx", "VisMaeBackbone", "VisMaeForSemanticSegmentation")


@pytest.mark.parametrize("damage", ["no processor", "a file", "missing", "incomplete weights", "nan weights"])
def test_an_unusable_model_folder_is_one_line_naming_it(tmp_path, capsys, damage):
    model_dir = Path(save_tiny_model(tmp_path / "model", VisMaeForImageClassification, "classification", num_labels=2))
    given = model_dir
    if damage == "no processor":
        (model_dir / "preprocessor_config.json").unlink()
    elif damage == "a file":
        given = model_dir / "config.json"
    elif damage == "missing":
        given = tmp_path / "no-such-model"
    elif damage == "nan weights":  # a diverged run: its graph would match PyTorch, NaN for NaN
        model = VisMaeForImageClassification.from_pretrained(model_dir)
        with torch.no_grad():
            model.classifier.weight.fill_(float("nan"))
        model.save_pretrained(model_dir)
    else:  # a classifier config over encoder weights: the head would be random
        VisMaeModel(VisMaeConfig.from_pretrained(model_dir)).save_pretrained(model_dir)
        config = json.loads((model_dir / "config.json").read_text())
        config["architectures"] = ["VisMaeForImageClassification"]
        (model_dir / "config.json").write_text(json.dumps(config))
    status, _, err = vis_mae(capsys, "export", "onnx", "--model", given, "--output", tmp_path / "out")
    assert status == 1
    assert_one_error_line(err, "export onnx", str(given))
    assert not (tmp_path / "out").exists()


def test_an_export_that_differs_from_pytorch_writes_nothing(tmp_path, capsys, monkeypatch):
    model_dir = save_tiny_model(tmp_path / "model", VisMaeForSemanticSegmentation, "segmentation", num_labels=2)
    monkeypatch.setattr(onnx_export, "write_onnx_graph", lambda model, path, height, width: path.write_bytes(b"graph"))
    monkeypatch.setattr(onnx_export, "onnx_parity", lambda *args: {"logits": 3e-3})
    status, _, err = vis_mae(capsys, "export", "onnx", "--model", model_dir, "--output", tmp_path / "out")
    assert status == 1
    assert_one_error_line(err, "export onnx", "3.00e-03", "nothing was written")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.staging-*"))


def test_a_folder_of_the_users_is_refused_before_the_export(tmp_path, capsys):
    model_dir = save_tiny_model(tmp_path / "model", VisMaeForSemanticSegmentation, "segmentation", num_labels=2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    status, _, err = vis_mae(capsys, "export", "onnx", "--model", model_dir, "--output", tmp_path / "out")
    assert status == 1
    assert_one_error_line(err, "export onnx", "notes.txt")
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["notes.txt"]


WITHOUT_ONNX = """
import sys
for name in ("onnx", "onnxruntime", "onnxscript"):
    sys.modules[name] = None  # import fails as if not installed
import vis_mae_hf
from vis_mae_hf.app.cli import main
try:
    main(["export", "onnx", "--help"])
except SystemExit as exit_:
    print("HELP", exit_.code)
status = main(["export", "onnx", "--model", sys.argv[1], "--output", sys.argv[2]])
print("STATUS", status)
"""


def test_without_the_onnx_extra_the_package_imports_and_the_export_names_the_extra(tmp_path):
    model_dir = save_tiny_model(tmp_path / "model", VisMaeForSemanticSegmentation, "segmentation", num_labels=2)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", WITHOUT_ONNX, model_dir, str(tmp_path / "out")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert "HELP 0" in result.stdout and "STATUS 1" in result.stdout, result.stderr
    assert_one_error_line(result.stderr, "export onnx", "pip install 'vis-mae-hf[onnx]'")
    assert not (tmp_path / "out").exists()


def test_the_inference_bench_times_onnx_runtime_beside_pytorch(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bench_inference

    out = tmp_path / "inference.json"
    bench_inference.main(
        ["--device", "cpu", "--large-batch", "2", "--dtype", "fp32", "--repeats", "1", "--rounds", "1", "--warmup", "0",
         "--only", "encoder", "--onnx", "--json", str(out)]
    )
    results = json.loads(out.read_text())["results"]
    assert set(results["encoder/batch2"]) == {"swin-model", "vis-mae-model", "vis-mae-model-onnxruntime"}
    assert results["encoder/batch2"]["vis-mae-model-onnxruntime"]["images_per_second"] > 0
    assert "| vis-mae-model-onnxruntime |" in capsys.readouterr().out
