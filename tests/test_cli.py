"""The `vis-mae` command: every sub-command answers --help; one error policy (a user error is one line on stderr and
exit status 1, a usage error exit status 2, `--debug` shows the traceback); `vis-mae --help` starts without torch;
pretraining runs as `python -m vis_mae_hf.app pretrain` and under `accelerate launch -m`; the example scripts are
the command under another name."""

import json
import os
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config_kwargs
from PIL import Image

from vis_mae_hf.app.cli import COMMANDS, main, parse

ROOT = Path(__file__).resolve().parent.parent
# The subprocesses import this checkout (and its top-level launcher) whatever is installed.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
       "OMP_NUM_THREADS": "1"}
TINY_MODEL = json.dumps({key: tiny_config_kwargs()[key] for key in ("embed_dim", "num_heads", "drop_path_rate")})
TINY_PRETRAINING = ["--image-size", "64", "--max-steps", "2", "--per-device-train-batch-size", "2",
                    "--config-overrides", TINY_MODEL, "--reconstruction-images", "1"]
# The console script `vis-mae` as pip writes it: import the entry point of pyproject.toml, call it, exit with it.
SCRIPT = """
import sys
from {module} import {function} as main
try:
    status = main()
except SystemExit as exit_:
    status = exit_.code
print("IMPORTED", sorted({{name.split(".")[0] for name in sys.modules}} & {{"torch", "transformers", "vis_mae_hf"}}))
sys.exit(status)
"""


def vis_mae(*arguments: str, cwd=None) -> subprocess.CompletedProcess:
    """`vis-mae ARGUMENTS...` in a fresh process, through the entry point pyproject.toml declares."""
    entry_point = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["vis-mae"]
    module, function = entry_point.split(":")
    script = SCRIPT.format(module=module, function=function)
    return subprocess.run([sys.executable, "-c", script, *arguments], cwd=cwd or ROOT, env=ENV, capture_output=True,
                          text=True, timeout=600)


def run_in_process(capsys, *arguments) -> tuple[int, str, str]:
    """`vis-mae ARGUMENTS...` in this process: (exit status, stdout, stderr), argparse's exits included."""
    try:
        status = main(list(map(str, arguments)))
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ------------------------------------------------------------------------------------------------- start-up and help


def test_the_command_names_the_sub_commands_of_the_issue():
    assert list(COMMANDS) == ["data", "pretrain", "finetune", "sweep", "convert", "predict", "evaluate", "embed",
                              "hub", "demo", "export"]


def test_help_lists_every_command_without_importing_torch_or_the_package():
    result = vis_mae("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: vis-mae [-h] [--version] [--debug] COMMAND ...")
    for command, summary in COMMANDS.items():
        assert f"  {command:<10}{summary}" in result.stdout
    assert "IMPORTED []" in result.stdout


def test_version_is_the_package_metadata_answered_without_torch():
    import vis_mae_hf

    result = vis_mae("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"vis-mae-hf {vis_mae_hf.__version__}"
    assert "IMPORTED []" in result.stdout


@pytest.mark.parametrize("arguments", [[], ["nonsense"], ["--debug"]], ids=["none", "unknown", "debug-alone"])
def test_a_missing_or_unknown_command_is_a_usage_error_answered_without_torch(arguments):
    result = vis_mae(*arguments)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: vis-mae") and "vis-mae: error:" in result.stderr
    assert "IMPORTED []" in result.stdout


@pytest.mark.parametrize(
    "words",
    [["data"], ["data", "convert"], ["data", "corpus"], ["data", "demo"], ["data", "sources"], ["pretrain"],
     ["finetune"], ["finetune", "segmentation"], ["finetune", "classification"], ["sweep"], ["convert"],
     ["predict"], ["evaluate"], ["evaluate", "segmentation"], ["evaluate", "classification"], ["embed"], ["hub"],
     ["hub", "export"], ["hub", "validate"], ["hub", "push"], ["hub", "release"], ["hub", "space"], ["demo"],
     ["export"], ["export", "onnx"]],
    ids=" ".join,
)
def test_every_sub_command_answers_help(capsys, words):
    status, out, err = run_in_process(capsys, *words, "--help")
    assert status == 0, err
    assert out.startswith(f"usage: vis-mae {' '.join(words)} ")


def test_dataclass_commands_show_dashed_flags_and_accept_both_spellings(capsys):
    status, out, _ = run_in_process(capsys, "pretrain", "--help")
    assert status == 0
    assert "--per-device-train-batch-size" in out and "--per_device_train_batch_size" not in out
    assert "--decay-norms-and-biases" in out and "--decay_norms_and_biases" not in out
    dashed = parse("pretrain", ["--max-steps", "3", "--per-device-train-batch-size", "4"])
    underscored = parse("pretrain", ["--max_steps", "3", "--per_device_train_batch_size", "4"])
    assert (dashed.max_steps, dashed.per_device_train_batch_size) == (3, 4)
    assert (underscored.max_steps, underscored.per_device_train_batch_size) == (3, 4)
    finetuning = parse("finetune", ["classification", "--label-fraction", "0.5", "--no-augment"])
    assert (finetuning.label_fraction, finetuning.augment) == (0.5, False)


# ------------------------------------------------------------------------------------------------------ error policy


@pytest.mark.parametrize(
    "arguments, command, names",
    [
        (["data", "convert", "btcv", "{tmp}/no-such-tree", "--output", "{tmp}/out"], "data convert", "no-such-tree"),
        (["data", "convert", "btcv", "{tmp}", "--output", "{tmp}/out", "--option", "speed=9"], "data convert",
         "speed"),
        (["predict", "--model", "{tmp}/no-such-model", "{tmp}/scan.png", "--output", "{tmp}/out"], "predict",
         "no-such-model"),
        (["evaluate", "segmentation", "--predictions", "{tmp}/no-such-masks", "--references", "{tmp}"],
         "evaluate segmentation", "no-such-masks"),
        (["hub", "export", "--model", "{tmp}/no-such-run", "--variant", "mr", "--output", "{tmp}/out"], "hub export",
         "no-such-run"),
        (["hub", "release", "--runs-dir", "{tmp}/no-such-runs", "--output-dir", "{tmp}/out"], "hub release",
         "no-such-runs"),
        (["convert", "--checkpoint", "{tmp}/no-such.pth", "--output", "{tmp}/out"], "convert", "no-such.pth"),
        (["finetune", "segmentation", "--dataset", "{tmp}/no-such-set", "--output-dir", "{tmp}/out"],
         "finetune segmentation", "no-such-set"),
        (["pretrain", "--dataset", "{tmp}/no-such-corpus", "--output-dir", "{tmp}/out"], "pretrain", "no-such-corpus"),
        (["sweep", "--label-fractions", "0.5,2", "--results-dir", "{tmp}/out"], "sweep", "got [2.0]"),
        (["embed", "--model", "{tmp}/no-such-model", "--dataset", "{tmp}/no-such-set", "--output", "{tmp}/out"],
         "embed", "no-such-model"),
        (["export", "onnx", "--model", "{tmp}/no-such-model", "--output", "{tmp}/out"], "export onnx",
         "no-such-model"),
        (["demo", "--model", "{tmp}/no-such-model"], "demo", "no-such-model"),
        (["hub", "space", "--model-id", "{tmp}/no-such-id", "--output", "{tmp}/out"], "hub space", "no-such-id"),
    ],
    ids=["data", "data-option", "predict", "evaluate", "hub", "hub-release", "convert", "finetune", "pretrain", "sweep",
         "embed", "export", "demo", "hub-space"],
)
def test_a_user_error_is_one_line_naming_the_input_and_exit_status_1(tmp_path, capsys, arguments, command, names):
    status, _, err = run_in_process(capsys, *(argument.format(tmp=tmp_path) for argument in arguments))
    assert status == 1
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"vis-mae {command}: error: ") and names in err, err
    assert not (tmp_path / "out").exists()  # refused before any output was written


@pytest.mark.parametrize(
    "arguments",
    [
        ["predict", "--output", "out", "scan.png"],
        ["predict", "--model", "m", "--output", "out", "scan.png", "--batch-size", "0"],
        ["pretrain", "--max-steps", "many"],
        ["finetune"],
        ["finetune", "detection"],
        ["sweep", "--unknown-option", "1"],
        ["embed", "--model", "m", "--dataset", "d"],
        ["finetune", "segmentation", "--tuning", "lora", "--lora-rank", "two"],
        ["data", "convert", "no_such_source", "tree", "--output", "out"],
        ["data", "corpus", "in", "--output", "out", "--window", "header"],
        ["data", "corpus", "in", "--output", "out", "--ct-window", "brain"],
        ["evaluate", "segmentation", "--predictions", "p"],
        ["evaluate", "segmentation", "--predictions", "p", "--references", "r", "--empty-mask", "zero"],
        ["hub", "export", "--model", "m", "--variant", "mr", "--output", "out", "--window", "softtissue"],
        ["hub", "export", "--model", "m", "--variant", "mr", "--output", "out", "--hounsfield-window", "brain"],
        ["convert", "--checkpoint", "c.pth"],
        ["export", "--model", "m"],
        ["export", "onnx", "--model", "m"],
        ["export", "onnx", "--model", "m", "--output", "out", "--height", "0"],
    ],
    ids=" ".join,
)
def test_a_usage_error_exits_with_status_2(tmp_path, capsys, arguments):
    status, _, err = run_in_process(capsys, *arguments)
    assert status == 2
    assert err.startswith("usage: vis-mae ") and f"vis-mae {arguments[0]}" in err.splitlines()[-1], err
    assert "Traceback" not in err


def test_a_real_process_prints_one_line_and_debug_prints_the_traceback(tmp_path):
    arguments = ["convert", "--checkpoint", str(tmp_path / "no-such.pth"), "--output", str(tmp_path / "out")]
    plain = vis_mae(*arguments)
    assert plain.returncode == 1
    assert plain.stderr.splitlines() == [f"vis-mae convert: error: Checkpoint {tmp_path / 'no-such.pth'} does not exist."]
    debug = vis_mae("--debug", *arguments)
    assert debug.returncode == 1
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert debug.stderr.rstrip().endswith(f"FileNotFoundError: Checkpoint {tmp_path / 'no-such.pth'} does not exist.")


def test_an_interrupt_is_one_line_and_a_bug_keeps_its_traceback(capsys, monkeypatch):
    from vis_mae_hf.app.cli import export

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "run_onnx_export", interrupted)
    status, _, err = run_in_process(capsys, "export", "onnx", "--model", "m", "--output", "o")
    assert (status, err) == (130, "vis-mae export onnx: interrupted\n")

    def broken(args):
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setattr(export, "run_onnx_export", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["export", "onnx", "--model", "m", "--output", "o"])


# ------------------------------------------------------------------------------------------------------------ --window


@pytest.mark.parametrize("text, window", [("400,40", (400.0, 40.0)), ("Brain", "brain")])
def test_hub_export_window_is_the_processor_hounsfield_window(tmp_path, monkeypatch, capsys, text, window):
    import vis_mae_hf.app.cli.hub

    calls = []
    monkeypatch.setattr(vis_mae_hf.app.cli.hub, "export_repository", lambda *a, **k: calls.append(k) or tmp_path)
    status, _, _ = run_in_process(capsys, "hub", "export", "--model", "m", "--variant", "ct", "--output", "o",
                                  "--window", text)
    assert status == 0 and calls[0]["hounsfield_window"] == window


# ------------------------------------------------------------------------------------------------------- pretraining


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for index in range(8):
        Image.fromarray((rng.random((48, 40)) * 255).astype(np.uint8)).save(folder / f"{index}.png")
    return folder


def test_python_dash_m_runs_pretraining(tmp_path, image_folder):
    completed = subprocess.run(
        [sys.executable, "-m", "vis_mae_hf.app", "pretrain", "--dataset", str(image_folder), "--output-dir",
         str(tmp_path / "run"), *TINY_PRETRAINING],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert summary["global_steps"] == 2 and (tmp_path / "run" / "model.safetensors").is_file()


def test_accelerate_launch_runs_the_command_on_two_processes(tmp_path, image_folder):
    # `accelerate launch --multi_gpu`, what a multi-GPU machine runs; ACCELERATE_USE_CPU makes its two processes gloo
    # CPU workers here.
    launch = ["accelerate.commands.accelerate_cli", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
              "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    completed = subprocess.run(
        [sys.executable, "-m", *launch, "-m", "vis_mae_hf.app", "pretrain", "--dataset", str(image_folder),
         "--output-dir", str(tmp_path / "run"), *TINY_PRETRAINING],
        cwd=tmp_path, env={**ENV, "ACCELERATE_USE_CPU": "true"}, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "2 process(es), global batch 4" in completed.stdout + completed.stderr
    assert json.loads((tmp_path / "run" / "training_summary.json").read_text())["global_steps"] == 2


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------------------------------------- example scripts


EXAMPLES = {
    "run_pretrain.py": "pretrain",
    "run_finetune_segmentation.py": "finetune segmentation",
    "run_finetune_classification.py": "finetune classification",
    "label_efficiency.py": "sweep",
    "publish_all.py": "hub release",
}


@pytest.mark.parametrize("script, command", EXAMPLES.items())
def test_example_scripts_are_the_command(monkeypatch, capsys, script, command):
    path = ROOT / "examples" / script
    assert sorted(path.name for path in (ROOT / "examples").glob("*.py")) == sorted(EXAMPLES)
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"usage: vis-mae {command} ")


def test_example_scripts_share_the_error_policy(tmp_path, monkeypatch, capsys):
    path = ROOT / "examples" / "publish_all.py"
    monkeypatch.setattr(sys, "argv", [str(path), "--runs-dir", str(tmp_path / "none"), "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith(f"vis-mae hub release: error: {tmp_path / 'none'} holds no finished run")


def test_the_start_up_benchmark_times_both_trees_through_their_entry_points(tmp_path, capsys):
    # This checkout as both "before" (a folder, what machines without the git history pass) and "after".
    bench = runpy.run_path(str(ROOT / "bench" / "bench_startup.py"))
    results = bench["main"](["--before", str(ROOT), "--rounds", "1", "--only", "vis-mae --help",
                             "--json", str(tmp_path / "startup.json")])
    assert set(results) == {"vis-mae --help"}
    for tree in ("before", "after"):
        assert len(results["vis-mae --help"][tree]["seconds"]) == 1
        assert results["vis-mae --help"][tree]["imported"] == []
    assert "| `vis-mae --help` |" in capsys.readouterr().out
    assert json.loads((tmp_path / "startup.json").read_text())["before"] == str(ROOT)
