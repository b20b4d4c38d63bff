"""README.md stays true: its test command is what CI runs, its main command is run for real, every other command in
it is accepted by the parser of the program it names, and its Python examples run."""

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MAIN_JOB = "accelerate launch examples/run_pretrain.py"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def commands() -> list[str]:
    lines = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def load_example(relative: str):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_command(line: str) -> None:
    """Parse `line` with the real argument parsers of the program it runs; raises SystemExit on unknown options.

    `vis-mae ...`, `python -m vis_mae_hf.app ...` and the example scripts (each is `vis-mae` with its sub-command,
    `COMMAND`) go through the command's own parsers; `accelerate launch ...` through accelerate's launch parser first."""
    if "&&" in line:
        for part in line.split("&&"):
            parse_command(part.strip())
        return
    words = shlex.split(line)
    if words[:2] == ["pip", "install"]:
        check_pip_install([word for word in words[2:] if word != "-e"])
        return
    if words[:3] == ["python", "-m", "build"] or words[:2] == ["twine", "check"]:
        assert importlib.util.find_spec(words[2] if words[0] == "python" else "twine"), line  # the release extra
        return
    if words[:2] == ["accelerate", "launch"]:
        from accelerate.commands.launch import launch_command_parser

        launch = launch_command_parser().parse_args(words[2:])
        words = ["python", *(["-m"] if launch.module else []), launch.training_script, *launch.training_script_args]
    if words[0] == "vis-mae":
        parse_vis_mae(words[1:])
        return
    assert words[0] == "python", line
    if words[1] == "-m":
        assert words[2] == "vis_mae_hf.app", line
        parse_vis_mae(words[3:])
        return
    script, arguments = words[1], words[2:]
    if script.startswith("examples/"):
        parse_vis_mae([*load_example(script).COMMAND, *arguments])
    elif script == "docs/make_readme_figures.py":
        load_example(script).parse_arguments(arguments)
    elif script in ("bench/bench_pretrain.py", "bench/bench_inference.py", "bench/bench_startup.py"):
        sys.path.insert(0, str(ROOT / "bench"))  # where `python bench/...` finds benchlib
        try:
            load_example(script).build_parser().parse_args(arguments)
        finally:
            sys.path.remove(str(ROOT / "bench"))
    else:
        raise AssertionError(f"README runs {script}, which tests/test_readme.py does not know how to check")


def check_pip_install(requirements: list[str]) -> None:
    """A user install line: torch pinned to the build CI installs, the package by its distribution name, and only
    extras that pyproject.toml defines."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in requirements:
        name, _, extras = requirement.partition("[")
        if name == "torch==2.13.0":
            continue
        assert name in (project["name"], "."), requirement
        unknown = set(filter(None, extras.rstrip("]").split(","))) - set(project["optional-dependencies"])
        assert not unknown, f"README installs extras pyproject.toml does not define: {sorted(unknown)}"


def parse_vis_mae(argv: list[str]) -> None:
    """`vis-mae ARGV...` parsed by the top-level parser, then by the chosen sub-command's own parser."""
    from vis_mae_hf.app.cli import parse, parse_command_line

    try:
        command, arguments, _ = parse_command_line(argv)
        parse(command, arguments)
    except SystemExit as exit_:
        if exit_.code != 0 or not {"--help", "--version"} & set(argv):  # they print and exit 0; else a usage error
            raise


def test_the_readme_test_command_is_what_ci_runs():
    test_commands = [line for line in commands() if "pytest" in line]
    assert len(test_commands) == 1
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if "pytest" in line]
    assert ci == test_commands


def test_the_install_commands_install_torch_first_and_the_right_extras():
    installs = [line for line in commands() if line.startswith("python3 -m venv")]
    assert len(installs) == 2
    main, tests = sorted(installs, key=lambda line: "pytest" in line)
    assert "pip install torch==2.13.0 && pip install -e \".[demo]\"" in main and main.endswith(MAIN_JOB)
    assert "pip install torch==2.13.0 && pip install -e \".[test]\"" in tests


@pytest.mark.parametrize("line", [c for c in commands() if not c.startswith("python3 -m venv")])
def test_every_other_readme_command_is_accepted_by_its_program(line):
    parse_command(line)


@pytest.mark.parametrize(
    "line",
    [
        "vis-mae predict --model m scan.dcm --output o --bogus",
        "vis-mae data corpus in --output o --ct-window brain",
        "python examples/run_pretrain.py --bogus",
        "python examples/run_finetune_segmentation.py --init random --bogus 1",
        "accelerate launch examples/run_pretrain.py --mixed_precision bf16 --bogus",
        "accelerate launch --num_processes 2 -m vis_mae_hf.app pretrain --bogus",
        "python -m vis_mae_hf.app hub push repo --bogus",
    ],
)
def test_the_command_checker_refuses_what_the_programs_refuse(line, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_command(line)
    assert exit_.value.code == 2


def test_the_command_checker_follows_accelerate_launch_into_the_command():
    parse_command("accelerate launch --num_processes 2 -m vis_mae_hf.app pretrain --max-steps 2 --mixed-precision bf16")
    parse_command("accelerate launch --multi_gpu examples/run_pretrain.py --dataset corpus --modality mr")


@pytest.mark.slow
def test_the_main_job_and_the_python_examples_run(tmp_path):
    """The README's first command, exactly, in a fresh folder; then its Python blocks in that folder."""
    result = subprocess.run(
        shlex.split(MAIN_JOB.replace("examples/", f"{ROOT}/examples/")),
        cwd=tmp_path, capture_output=True, text=True, timeout=1200,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "pretraining: 100%" in result.stderr  # the progress bar ran to the end
    run = tmp_path / "outputs" / "vis-mae-pretrain"
    summary = json.loads((run / "training_summary.json").read_text())
    assert summary["dataset"] == "built-in demo corpus" and summary["num_images"] == 49
    assert set(summary["modality_counts"]) == {"CT", "MR", "PET", "XRAY", "US"}
    from PIL import Image

    from vis_mae_hf import VisMaeForPreTraining

    assert Image.open(run / "reconstruction.png").size[0] > 4 * 224
    _, info = VisMaeForPreTraining.from_pretrained(run, output_loading_info=True)
    assert all(not keys for keys in info.values())

    # Python examples, in order, in the same folder (the Hub-id example is exercised against a local Hub cache by
    # tests/test_hub_push.py, which loads `org/vis-mae-mr` offline).
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks("python"):
            if '"org/vis-mae-mr"' in block or "scans/" in block or "onnxruntime" in block:
                continue  # run elsewhere: test_hub_push (offline Hub), test_data_own_readme, test_onnx_export
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert namespace["output"].logits.shape == (2, 4480, 48)
    assert namespace["segmenter"].config.depths == [2, 2, 6, 2]
    assert namespace["backbone"].channels == [96, 192, 384, 768]  # the pretraining run's encoder, through AutoBackbone
    assert namespace["upernet_logits"].shape == (1, 4, 224, 224)
    assert namespace["echo"].pixels.shape[-1] == 3
    assert namespace["head_ct"].modality == "CT" and namespace["own_view"].intensity != namespace["head_ct"].intensity
    assert namespace["volume"].values.shape == namespace["unit"].shape and 0 <= namespace["unit"].min() < 1
