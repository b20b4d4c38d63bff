"""Both fine-tuning notebooks run top to bottom on the demo data (tiny-budget switch on), with nbclient."""

import json
import os
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "examples" / "notebooks"


@pytest.fixture(scope="module")
def smoke_environment(tmp_path_factory):
    pytest.importorskip("nilearn")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    patch = pytest.MonkeyPatch()
    # One demo cache for every fine-tuning test module of the session: built once, then reused.
    patch.setenv("VIS_MAE_HF_CACHE", str(tmp_path_factory.getbasetemp() / "finetuning_demo_cache"))
    patch.setenv("VIS_MAE_NOTEBOOK_SMOKE_TEST", "1")
    patch.setenv("VIS_MAE_NOTEBOOK_INIT", "random")
    patch.setenv("OMP_NUM_THREADS", "1")  # tiny models; on a busy 2-core machine OpenMP threads spin-wait
    yield
    patch.undo()


@pytest.mark.parametrize("name", ["finetune_segmentation", "finetune_classification"])
def test_notebook_runs_top_to_bottom_on_the_demo(name, tmp_path, smoke_environment):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "commit it cleared"
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    printed = "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "smoke test: True" in printed
    assert ("dice_mean" if "segmentation" in name else "roc_auc") in printed
    pictures = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(pictures) >= 2  # the data and the predictions, as pictures
    assert (tmp_path / "outputs" / f"notebook-{name.replace('_', '-')}" / "config.json").is_file()
    assert os.environ["VIS_MAE_NOTEBOOK_SMOKE_TEST"] == "1"


@pytest.mark.parametrize("name", ["finetune_segmentation", "finetune_classification"])
def test_notebooks_train_with_the_package_trainer_and_the_recipe_table(name):
    """The notebooks' optimiser follows the one weight-decay rule (not plain `Trainer`'s) and the recipe's numbers."""
    notebook = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    code = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert "VisMaeTrainer(" in code and "decay_norms_and_biases=RECIPE.decay_norms_and_biases" in code
    assert not re.search(r"(?<!\w)Trainer\(", code)
    for setting in ("learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "lr_scheduler_type"):
        assert f"{setting}=RECIPE.{setting}" in code
