"""Start-up time of the `vis-mae` command and of `import vis_mae_hf`, before and after, measured in one run.

    python bench/bench_startup.py                      # this checkout against 64280b9 (before the layout change)
    python bench/bench_startup.py --before 342e674 --rounds 9 --json startup.json
    python bench/bench_startup.py --before /path/to/an/old/checkout   # machines without the git history

Each workload runs as a fresh process with that tree first on PYTHONPATH: `vis-mae --help` and `vis-mae predict
--help` through the console-script entry point that tree's pyproject.toml declares, `import vis_mae_hf` as a plain
import, and `from transformers import SwinModel` (the same in both trees) as the reference the package import is
compared with; the "before" tree is
`git archive REV` unpacked in a temporary folder, so nothing in the working tree changes. Rounds alternate the order
of the trees, one untimed warm-up run each writes the bytecode caches first, and the table reports the median wall
time with its range, the speed-up (before / after) and whether torch was imported.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
# workload -> `vis-mae` arguments, or the Python statement the process runs instead of the command
WORKLOADS = {
    "vis-mae --help": ["--help"],
    "vis-mae predict --help": ["predict", "--help"],
    "import vis_mae_hf": "import vis_mae_hf",
    "from transformers import SwinModel": "from transformers import SwinModel",
}
REFERENCE = "from transformers import SwinModel"
REPORT_IMPORTS = 'print("IMPORTED", sorted({{name.split(".")[0] for name in sys.modules}} & {{"torch", "transformers"}}))'
# The console script as pip writes it, reporting which heavy packages the process imported.
SCRIPT = """
import sys
from {module} import {function} as main
try:
    status = main()
except SystemExit as exit_:
    status = exit_.code
""" + REPORT_IMPORTS + """
sys.exit(status)
"""
STATEMENT = "import sys\n{statement}\n" + REPORT_IMPORTS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="64280b9", help="git revision, or a folder holding an older checkout")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each workload and tree (default 5)")
    parser.add_argument("--only", nargs="+", choices=list(WORKLOADS), help="default: every workload")
    parser.add_argument("--json", help="also write the measurements here")
    return parser


def tree_at_revision(revision: str, directory: Path) -> Path:
    """The package and pyproject.toml of git `revision`, unpacked under `directory`."""
    names = subprocess.run(["git", "-C", str(REPOSITORY), "ls-tree", "--name-only", revision], check=True,
                           capture_output=True, text=True).stdout.split()
    wanted = [name for name in names if name.startswith("vis_mae_hf") or name == "pyproject.toml"]
    archive = subprocess.run(["git", "-C", str(REPOSITORY), "archive", revision, *wanted], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def command_line(tree: Path, arguments: list[str] | str) -> list[str]:
    if isinstance(arguments, str):  # a Python statement, not the command
        return [sys.executable, "-c", STATEMENT.format(statement=arguments)]
    entry_point = tomllib.loads((tree / "pyproject.toml").read_text())["project"]["scripts"]["vis-mae"]
    module, function = entry_point.split(":")
    return [sys.executable, "-c", SCRIPT.format(module=module, function=function), *arguments]


def run_once(tree: Path, arguments: list[str] | str, cwd: Path) -> tuple[float, list[str]]:
    """(wall seconds, heavy packages imported) of one process (`vis-mae ARGUMENTS...` or a statement) from `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    result = subprocess.run(command_line(tree, arguments), cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        shown = arguments if isinstance(arguments, str) else f"vis-mae {' '.join(arguments)}"
        raise RuntimeError(f"{shown} failed in {tree}:\n{result.stderr[-2000:]}")
    imported = json.loads(result.stdout.rsplit("IMPORTED ", 1)[1].replace("'", '"'))
    return seconds, imported


def measure(trees: dict[str, Path], workloads: dict[str, list[str]], rounds: int, cwd: Path) -> dict:
    """{workload: {tree: {"seconds": [...], "imported": [...]}}}, rounds alternating the order of the trees."""
    results = {name: {label: {"seconds": []} for label in trees} for name in workloads}
    for name, arguments in workloads.items():
        for label, tree in trees.items():
            _, results[name][label]["imported"] = run_once(tree, arguments, cwd)  # warm-up: bytecode caches
    for round_index in range(rounds):
        order = list(trees) if round_index % 2 == 0 else list(reversed(trees))
        for name, arguments in workloads.items():
            for label in order:
                seconds, _ = run_once(trees[label], arguments, cwd)
                results[name][label]["seconds"].append(seconds)
    return results


def print_table(results: dict, before: str) -> None:
    print(f"\n### `vis-mae` start-up, before ({before}) and after (this checkout): median (min-max) seconds\n")
    print("| command | before | after | speed-up (before / after) | torch imported before / after |")
    print("|---|---|---|---|---|")
    for name, by_tree in results.items():
        cells = {}
        for label in ("before", "after"):
            seconds = by_tree[label]["seconds"]
            cells[label] = f"{statistics.median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})"
        old, new = (statistics.median(by_tree[label]["seconds"]) for label in ("before", "after"))
        torch = " / ".join("yes" if "torch" in by_tree[label]["imported"] else "no" for label in ("before", "after"))
        print(f"| `{name}` | {cells['before']} | {cells['after']} | {old / new:.2f}x | {torch} |")
    if "import vis_mae_hf" in results and REFERENCE in results:
        ratios = [
            f"{label} {_median(results['import vis_mae_hf'][label]) / _median(results[REFERENCE][label]):.2f}x"
            for label in ("before", "after")
        ]
        print(f"\n`import vis_mae_hf` / `{REFERENCE}`: {', '.join(ratios)}")


def _median(measurement: dict) -> float:
    return statistics.median(measurement["seconds"])


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    workloads = {name: WORKLOADS[name] for name in (args.only or WORKLOADS)}
    with tempfile.TemporaryDirectory(prefix="vis_mae_startup_") as scratch:
        scratch = Path(scratch)
        if Path(args.before).is_dir():
            before = Path(args.before).resolve()
        else:
            before = tree_at_revision(args.before, scratch / "before")
        (scratch / "cwd").mkdir()
        trees = {"before": before, "after": REPOSITORY}
        results = measure(trees, workloads, args.rounds, scratch / "cwd")
    print_table(results, args.before)
    print(f"\n{os.cpu_count()} CPUs, load average {', '.join(f'{load:.1f}' for load in os.getloadavg())}, "
          f"Python {sys.version.split()[0]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"before": args.before, "results": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
