"""`vis-mae hub space`: the Space folder, and its app.py run offline against a repository in a local Hub cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import save_tiny_model
from hostile import assert_one_error_line, vis_mae

from vis_mae_hf import VisMaeForSemanticSegmentation
from vis_mae_hf.output_folders import MANIFEST_NAME

pytest.importorskip("gradio", reason="the app extra (Gradio) is not installed")

MODEL_ID = "demo-org/vis-mae-tiny-tissue"
REVISION = "0123456789abcdef0123456789abcdef01234567"
ROOT = Path(__file__).resolve().parent.parent


def hub_cache_with_model(cache: Path) -> Path:
    """A tiny segmenter laid out as huggingface_hub caches a repository: models--ORG--NAME/{refs/main,snapshots/REV}."""
    repository = cache / f"models--{MODEL_ID.replace('/', '--')}"
    labels = ["background", "grey matter", "white matter", "other brain"]
    save_tiny_model(repository / "snapshots" / REVISION, VisMaeForSemanticSegmentation, "segmentation", num_labels=4,
                    id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text(REVISION)
    return cache


def space_metadata(readme: str) -> dict:
    return yaml.safe_load(readme.split("---\n")[1])


def test_the_space_folder_holds_the_app_pinned_requirements_and_metadata(capsys, tmp_path):
    from importlib.metadata import version

    status, out, err = vis_mae(capsys, "hub", "space", "--model-id", MODEL_ID, "--output", tmp_path / "space")
    assert status == 0, err
    space = tmp_path / "space"
    assert sorted(path.name for path in space.iterdir()) == sorted([MANIFEST_NAME, "README.md", "app.py",
                                                                    "requirements.txt"])
    assert f'MODEL_ID = "{MODEL_ID}"' in (space / "app.py").read_text()
    requirements = (space / "requirements.txt").read_text().splitlines()
    assert requirements == [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        f"torch=={version('torch').split('+')[0]}",
        f"vis-mae-hf[app,demo]=={version('vis-mae-hf')}",
        f"gradio=={version('gradio')}",
    ]
    readme = (space / "README.md").read_text()
    metadata = space_metadata(readme)
    assert metadata["sdk"] == "gradio" and metadata["sdk_version"] == version("gradio")
    assert metadata["app_file"] == "app.py" and metadata["models"] == [MODEL_ID]
    assert metadata["license"] == "apache-2.0" and len(metadata["short_description"]) <= 60
    assert "not a medical device" in readme
    assert set(json.loads((space / MANIFEST_NAME).read_text())["files"]) == {"README.md", "app.py",
                                                                             "requirements.txt"}


def test_a_space_is_not_written_over_without_overwrite(capsys, tmp_path):
    arguments = ("hub", "space", "--model-id", MODEL_ID, "--output", tmp_path / "space")
    assert vis_mae(capsys, *arguments)[0] == 0
    status, _, err = vis_mae(capsys, *arguments)
    assert status == 1 and assert_one_error_line(err, "hub space", "--overwrite")
    assert vis_mae(capsys, *arguments, "--overwrite")[0] == 0


def test_a_model_id_that_is_no_hub_id_is_one_line(capsys, tmp_path):
    status, _, err = vis_mae(capsys, "hub", "space", "--model-id", "no-slash", "--output", tmp_path / "space")
    assert status == 1 and assert_one_error_line(err, "hub space", "no-slash", "ORG/NAME")
    assert not (tmp_path / "space").exists()


RUN_THE_SPACE = """
import runpy, sys
import gradio
space = runpy.run_path("app.py", run_name="space")  # builds the page, does not launch it
assert isinstance(space["demo"], gradio.Blocks), type(space["demo"])
from vis_mae_hf.app.demo.examples import HEAD_CT, example_file
from vis_mae_hf.app.demo.views import DemoModel, Settings, page_result
model = DemoModel.load(space["MODEL_ID"], device="cpu")
opened, view = page_result(model, example_file(HEAD_CT), None, Settings())
assert view.error is None, view.error
print("TASK", model.task, "ROWS", [row[0] for row in view.rows], "PICTURE", view.picture.size)
"""


def test_the_space_app_runs_against_a_repository_in_the_local_hub_cache(tmp_path):
    cache = hub_cache_with_model(tmp_path / "hub")
    space = tmp_path / "space"
    from vis_mae_hf.hub.space import write_space

    write_space(MODEL_ID, space)
    environment = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", RUN_THE_SPACE], cwd=space, env=environment, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TASK semantic-segmentation ROWS ['background', 'grey matter', 'white matter', 'other brain']" in result.stdout


def test_hub_export_adds_the_space_of_the_repository(capsys, tmp_path):
    model = save_tiny_model(tmp_path / "model", VisMaeForSemanticSegmentation, "segmentation", num_labels=2)
    status, _, err = vis_mae(capsys, "hub", "export", "--model", model, "--output", tmp_path / "repo", "--space",
                             tmp_path / "space")
    assert status == 1 and assert_one_error_line(err, "hub export", "--space needs --repo-id")
    assert not (tmp_path / "repo").exists()


def test_hub_export_with_a_repo_id_writes_the_space_beside_the_repository(capsys, tmp_path):
    from test_hub_export import make_finetuned

    model = make_finetuned(tmp_path / "outputs" / "tissue")
    status, _, err = vis_mae(capsys, "hub", "export", "--model", model, "--output", tmp_path / "repo", "--repo-id",
                             "org/vis-mae-tissue", "--space", tmp_path / "space")
    assert status == 0, err
    assert (tmp_path / "repo" / "model.safetensors").is_file() and (tmp_path / "repo" / "README.md").is_file()
    assert 'MODEL_ID = "org/vis-mae-tissue"' in (tmp_path / "space" / "app.py").read_text()
    assert space_metadata((tmp_path / "space" / "README.md").read_text())["models"] == ["org/vis-mae-tissue"]
