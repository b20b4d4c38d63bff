"""The example scripts on the built-in demo data with a tiny budget, the demo classification task, and the
label-efficiency sweep (CSV, plot, resume)."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = json.dumps({"embed_dim": 16, "num_heads": [1, 2, 4, 8], "drop_path_rate": 0.0})
TINY_BUDGET = [
    "--image-size", "64", "--max-steps", "2", "--per-device-train-batch-size", "2", "--max-train-examples", "6",
    "--max-eval-examples", "6", "--config-overrides", TINY_MODEL, "--disable-tqdm", "true",
]


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    pytest.importorskip("nilearn")
    directory = tmp_path_factory.getbasetemp() / "finetuning_demo_cache"  # shared with test_notebooks.py
    patch = pytest.MonkeyPatch()
    patch.setenv("VIS_MAE_HF_CACHE", str(directory))
    yield directory
    patch.undo()


def run_example(script, *arguments, cwd):
    # One thread: tiny models gain nothing from more, and on a busy 2-core machine OpenMP threads spin-wait.
    # PYTHONPATH: the scripts import this checkout's command (and its top-level launcher) whatever is installed.
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *arguments],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


def test_segmentation_script_runs_on_the_demo_and_prints_dice_precision_recall_per_class(tmp_path, demo_cache):
    printed = run_example("run_finetune_segmentation.py", "--output-dir", "seg", *TINY_BUDGET, cwd=tmp_path)
    assert "MNI152" in printed
    for text in ("dice_mean", "precision_mean", "recall_mean", "grey matter", "white matter", "other brain"):
        assert text in printed
    results = json.loads((tmp_path / "seg" / "eval_results.json").read_text())
    assert 0.0 <= results["eval_dice_mean"] <= 1.0 and results["epoch"] > 0


def test_classification_script_runs_on_the_demo_and_says_it_is_a_plumbing_demo(tmp_path, demo_cache):
    printed = run_example("run_finetune_classification.py", "--output-dir", "cls", *TINY_BUDGET, cwd=tmp_path)
    assert "plumbing demo" in printed and "not a clinical task" in printed
    assert "roc_auc" in printed and "pr_auc" in printed
    results = json.loads((tmp_path / "cls" / "eval_results.json").read_text())
    assert 0.0 <= results["eval_roc_auc"] <= 1.0


def test_demo_classification_flips_half_of_every_fold_and_labels_exactly_those(demo_cache):
    from vis_mae_hf.data.demo import load_demo_segmentation
    from vis_mae_hf.data.demo_classification import (
        DEMO_CLASSIFICATION_LABELS,
        load_demo_classification,
    )

    slices = load_demo_segmentation()["train"]
    labelled = load_demo_classification()["train"]
    assert labelled.features["label"].names == DEMO_CLASSIFICATION_LABELS
    assert "mask" not in labelled.column_names and labelled["fold"] == slices["fold"]
    labels, folds = np.asarray(labelled["label"]), np.asarray(labelled["fold"])
    for fold in np.unique(folds):
        in_fold = labels[folds == fold]
        assert in_fold.sum() == len(in_fold) // 2  # both classes in every fold: ROC-AUC is defined everywhere
    for index in (int(np.flatnonzero(labels == 1)[0]), int(np.flatnonzero(labels == 0)[0])):
        original = np.asarray(slices[index]["image"])
        shown = np.asarray(labelled[index]["image"])
        expected = original[::-1] if labels[index] else original
        assert np.array_equal(shown, expected)


def tiny_pretraining_checkpoint(directory):
    from vis_mae_hf import VisMaeConfig, VisMaeForPreTraining

    torch.manual_seed(0)
    config = VisMaeConfig(embed_dim=16, num_heads=[1, 2, 4, 8], image_size=64, drop_path_rate=0.0)
    VisMaeForPreTraining(config).save_pretrained(directory)
    return directory


def test_label_efficiency_writes_one_row_per_run_plots_and_resumes_only_missing_runs(tmp_path, demo_cache):
    from PIL import Image

    from vis_mae_hf.app.cli import parse
    from vis_mae_hf.app.cli.finetune import split_namespace
    from vis_mae_hf.app.finetuning.arguments import FinetuningArguments
    from vis_mae_hf.app.sweep import (
        LabelEfficiencyArguments,
        read_results,
        run_label_efficiency,
    )

    checkpoint = tiny_pretraining_checkpoint(tmp_path / "pretrained")
    # 5 % and 10 % of the demo's training slices: 7 and 13 slices (nested), whatever --max-steps trains on them.
    budget = [argument for argument in TINY_BUDGET]
    del budget[budget.index("--max-train-examples") : budget.index("--max-train-examples") + 2]
    arguments = [
        "--task", "segmentation", "--inits", f"vismae:{checkpoint},random", "--folds", "0",
        "--label-fractions", "0.05,0.1", "--results-dir", str(tmp_path / "sweep"), *budget,
    ]
    printed = run_example("label_efficiency.py", *arguments, cwd=tmp_path)
    assert "4 runs in the grid, 0 already" in printed
    csv_path = tmp_path / "sweep" / "results.csv"
    rows = read_results(csv_path)
    assert len(rows) == 4
    assert {(row["initialization"].split(":")[0], row["label_fraction"]) for row in rows} == {
        ("vismae", 0.05), ("vismae", 0.1), ("random", 0.05), ("random", 0.1)
    }
    for row in rows:
        assert row["metric"] == "dice_mean" and 0.0 <= row["value"] <= 1.0 and row["seed"] == 0
        assert row["train_seconds"] > 0 and row["finished_at"]
        assert "eval_dice/grey matter" in json.loads(row["metrics_json"])
        assert not list(Path(row["run_dir"]).glob("checkpoint-*"))
    smallest = {row["num_train_examples"] for row in rows if row["label_fraction"] == 0.05}
    larger = {row["num_train_examples"] for row in rows if row["label_fraction"] == 0.1}
    assert len(smallest) == 1 and len(larger) == 1 and smallest.pop() < larger.pop()
    with Image.open(tmp_path / "sweep" / "label_efficiency.png") as picture:
        assert picture.size[0] > 400

    # Interrupt the sweep after its third run: drop the last row, run again; only that run is redone.
    with csv_path.open() as handle:
        lines = handle.readlines()
    csv_path.write_text("".join(lines[:-1]))
    threads = torch.get_num_threads()
    (grid, template), training_options = split_namespace(
        parse("sweep", arguments), LabelEfficiencyArguments, FinetuningArguments
    )
    assert training_options["max_steps"] == 2 and "learning_rate" not in training_options  # only what was given
    torch.set_num_threads(1)
    try:
        run_label_efficiency(grid, template, training_options, verbose=False)
    finally:
        torch.set_num_threads(threads)
    resumed = read_results(csv_path)
    assert len(resumed) == 4
    assert [row["finished_at"] for row in resumed[:3]] == [row["finished_at"] for row in rows[:3]]
    assert resumed[3]["initialization"] == rows[3]["initialization"]
    with csv_path.open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4

    # --plot-only redraws the picture from the CSV without training.
    (tmp_path / "sweep" / "label_efficiency.png").unlink()
    run_label_efficiency(LabelEfficiencyArguments(results_dir=str(tmp_path / "sweep"), plot_only=True), verbose=False)
    assert (tmp_path / "sweep" / "label_efficiency.png").is_file() and len(read_results(csv_path)) == 4

    # Another experiment cannot be mixed into this CSV.
    other_grid = LabelEfficiencyArguments(task="classification", results_dir=str(tmp_path / "sweep"))
    with pytest.raises(ValueError, match="another experiment"):
        run_label_efficiency(other_grid, template, training_options, verbose=False)
