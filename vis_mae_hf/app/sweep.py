"""The paper's label-efficiency protocol: fine-tune for every (initialisation, tuning mode, fold, label fraction,
seed), one tidy CSV row per run, and the curves of its Figures 2 and 3 (metric against the fraction of labels, mean
and spread across folds, one line per initialisation and tuning mode).

Re-running with the same results directory resumes: runs already in the CSV are skipped, each finished run is
appended (and flushed) at once, so an interrupted sweep loses at most the run in progress. The CSV must describe one
experiment: rows of another task or dataset in it stop the sweep instead of being mixed into the plot. A CSV written
before the tuning axis existed (no `tuning` column) holds full fine-tuning runs; it is read so and, when a run is
appended, rewritten once with the column.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from ..vocabulary import FINETUNING_TASKS, SEGMENTATION
from .finetuning.arguments import BEST_METRICS, FinetuningArguments
from .finetuning.initialization import Initialization
from .finetuning.training import run_finetuning
from .finetuning.tuning import FULL, TUNING_MODES

RESULTS_FILE = "results.csv"
PLOT_FILE = "label_efficiency.png"
CSV_COLUMNS = [
    "task",
    "dataset",
    "initialization",
    "tuning",
    "fold",
    "label_fraction",
    "seed",
    "metric",
    "value",
    "num_train_examples",
    "num_eval_examples",
    "train_seconds",
    "finished_at",
    "run_dir",
    "metrics_json",
]


@dataclass
class LabelEfficiencyArguments:
    """The grid of a label-efficiency sweep. Everything about a single run comes from `FinetuningArguments` and the
    TrainingArguments options (its `init`, `tuning`, `fold`, `label_fraction`, `seed` and `output_dir` are set per run
    from this grid)."""

    task: str = field(default=SEGMENTATION, metadata={"help": " or ".join(FINETUNING_TASKS) + "."})
    inits: str = field(
        default="random",
        metadata={"help": "Comma-separated initialisations, e.g. 'vismae:outputs/vis-mae-pretrain,random'."},
    )
    tunings: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated tuning modes, one more axis of the grid: "
            + ", ".join(TUNING_MODES)
            + " (see --tuning). Default: the --tuning of every run (full)."
        },
    )
    folds: str = field(default="0,1,2,3,4", metadata={"help": "Comma-separated held-out folds."})
    label_fractions: str = field(default="0.05,0.1,0.25,0.5,0.8,1.0", metadata={"help": "Comma-separated fractions."})
    seeds: str = field(default="0", metadata={"help": "Comma-separated seeds (one run per seed)."})
    results_dir: str | None = field(default=None, metadata={"help": "Default outputs/label-efficiency-<task>."})
    metric: str | None = field(
        default=None, metadata={"help": "Metric of the CSV `value` and the plot (default dice_mean / roc_auc)."}
    )
    plot_only: bool = field(default=False, metadata={"help": "Only redraw the plot from the CSV."})

    def parsed_inits(self) -> list[Initialization]:
        return [Initialization.parse(text) for text in _items(self.inits, "inits")]

    def parsed_tunings(self, default: str = FULL) -> list[str]:
        tunings = _items(self.tunings, "tunings") if self.tunings is not None else [default]
        unknown = [tuning for tuning in tunings if tuning not in TUNING_MODES]
        if unknown:
            raise ValueError(f"--tunings: {unknown} are not tuning modes; choose among {', '.join(TUNING_MODES)}.")
        return list(dict.fromkeys(tunings))

    def parsed_folds(self) -> list[int]:
        return [_parse(int, text, "folds") for text in _items(self.folds, "folds")]

    def parsed_fractions(self) -> list[float]:
        fractions = [_parse(float, text, "label_fractions") for text in _items(self.label_fractions, "label_fractions")]
        bad = [fraction for fraction in fractions if not 0.0 < fraction <= 1.0]
        if bad:
            raise ValueError(f"--label-fractions must lie in (0, 1] (0.05 means 5 %), got {bad}.")
        return fractions

    def parsed_seeds(self) -> list[int]:
        return [_parse(int, text, "seeds") for text in _items(self.seeds, "seeds")]

    def resolved_results_dir(self) -> Path:
        return Path(self.results_dir or f"outputs/label-efficiency-{self.task}")


def _items(text: str, name: str) -> list[str]:
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    if not items:
        raise ValueError(f"--{name} is empty; give a comma-separated list.")
    return items


def _parse(kind, text: str, name: str):
    try:
        return kind(text)
    except ValueError as error:
        raise ValueError(f"--{name}: {text!r} is not a valid {kind.__name__}.") from error


def run_key(initialization: str, fold: int, fraction: float, seed: int, tuning: str = FULL) -> tuple:
    """Identity of a run in the CSV (fractions compared to 6 decimals: they round-trip through text)."""
    return (str(initialization), str(tuning), int(fold), round(float(fraction), 6), int(seed))


def curve_name(initialization: str, tuning: str) -> str:
    """The plot's and the summary's name of one curve: the initialisation, and its tuning mode unless full."""
    return str(initialization) if tuning == FULL else f"{initialization} ({tuning})"


def read_results(path: str | Path) -> list[dict]:
    """The CSV rows, with numbers parsed (`value` NaN when the metric was not scorable)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(CSV_COLUMNS) - set(reader.fieldnames or []) - {"tuning"}  # tuning: see the module docstring
        if missing:
            raise ValueError(f"{path} is not a label-efficiency results file: columns {sorted(missing)} are missing.")
        rows = []
        for row in reader:
            row["tuning"] = row.get("tuning") or FULL
            row["fold"] = int(row["fold"])
            row["seed"] = int(row["seed"])
            row["label_fraction"] = float(row["label_fraction"])
            row["value"] = float(row["value"]) if row["value"] not in ("", "nan") else math.nan
            row["train_seconds"] = float(row["train_seconds"])
            row["num_train_examples"] = int(row["num_train_examples"])
            row["num_eval_examples"] = int(row["num_eval_examples"])
            rows.append(row)
    return rows


def append_result(path: Path, row: dict) -> None:
    new_file = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not new_file:
        _add_missing_columns(path)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        if new_file:
            writer.writeheader()
        writer.writerow({column: row.get(column, "") for column in CSV_COLUMNS})
        handle.flush()


def _add_missing_columns(path: Path) -> None:
    """Rewrite a CSV of an earlier version with today's columns (a missing `tuning` is full), atomically."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if list(reader.fieldnames or []) == CSV_COLUMNS:
            return
        rows = [{**row, "tuning": row.get("tuning") or FULL} for row in reader]
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    temporary.replace(path)


class PlannedRun(NamedTuple):
    """One fine-tuning run of the grid."""

    seed: int
    fold: int
    fraction: float
    initialization: Initialization
    tuning: str = FULL

    @property
    def key(self) -> tuple:
        return run_key(str(self.initialization), self.fold, self.fraction, self.seed, self.tuning)


def _run_dir_name(planned: PlannedRun) -> str:
    initialization = planned.initialization
    source = "" if initialization.source is None else "-" + "".join(
        character if character.isalnum() else "_" for character in initialization.source
    )[-40:]
    tuning = "" if planned.tuning == FULL else f"-{planned.tuning}"
    return f"{initialization.kind}{source}{tuning}/fold{planned.fold}-frac{planned.fraction:g}-seed{planned.seed}"


def run_label_efficiency(
    grid: LabelEfficiencyArguments,
    template: FinetuningArguments | None = None,
    training_options: Mapping[str, Any] | None = None,
    *,
    verbose: bool = True,
) -> Path:
    """Run every missing (seed, fold, fraction, initialisation, tuning) of the grid, append each to the CSV, draw the
    plot.

    Args:
        grid: the sweep (see `LabelEfficiencyArguments`).
        template: the per-run fine-tuning arguments (dataset, input size, model overrides); its init, tuning, fold
            and label_fraction are replaced per run. Checkpoints are deleted after each run and no final model is
            saved (each run keeps its `eval_results.json` and `finetuning_summary.json`).
        training_options: the `TrainingArguments` options of every run (schedule, batch, ...); the grid sets
            `seed` and `output_dir` per run.

    Returns:
        The results directory, holding `results.csv`, `label_efficiency.png` and `runs/`.
    """
    if grid.task not in FINETUNING_TASKS:
        raise ValueError(f"--task must be segmentation or classification, got {grid.task!r}.")
    template = template or FinetuningArguments()
    results_dir = grid.resolved_results_dir()
    csv_path = results_dir / RESULTS_FILE
    plan = planned_runs(grid, template.tuning)  # parses the whole grid, so a typo fails even with --plot-only
    if not grid.plot_only:
        remaining = missing_runs(plan, csv_path, grid.task, template.dataset or "demo")
        if verbose:
            already = len(plan) - len(remaining)
            print(f"Label efficiency: {len(plan)} runs in the grid, {already} already in {csv_path}.")
        for number, planned in enumerate(remaining, start=1):
            started = time.perf_counter()
            row = run_once(grid, template, training_options or {}, planned, results_dir)
            append_result(csv_path, row)
            if verbose:
                print(
                    f"[{number}/{len(remaining)}] {curve_name(planned.initialization, planned.tuning)} fold "
                    f"{planned.fold} fraction "
                    f"{planned.fraction:g} seed {planned.seed}: {row['metric']} {row['value']:.4f} "
                    f"({row['num_train_examples']} training examples, {time.perf_counter() - started:.0f} s)"
                )
    rows = read_results(csv_path)
    if not rows:
        raise FileNotFoundError(f"{csv_path} holds no runs to plot.")
    plot_path = plot_label_efficiency(rows, results_dir / PLOT_FILE)
    if verbose:
        print(format_summary(summarize_results(rows)))
        print(f"Results: {csv_path}\nPlot: {plot_path}")
    return results_dir


def planned_runs(grid: LabelEfficiencyArguments, default_tuning: str = FULL) -> list[PlannedRun]:
    """Every run of the grid, seeds outermost, initialisations and tuning modes innermost (so curves fill in
    together)."""
    inits, folds, tunings = grid.parsed_inits(), grid.parsed_folds(), grid.parsed_tunings(default_tuning)
    fractions, seeds = grid.parsed_fractions(), grid.parsed_seeds()
    return [
        PlannedRun(seed, fold, fraction, initialization, tuning)
        for seed in seeds
        for fold in folds
        for fraction in fractions
        for initialization in inits
        for tuning in tunings
    ]


def missing_runs(plan: list[PlannedRun], csv_path: Path, task: str, dataset_name: str) -> list[PlannedRun]:
    """The planned runs not yet in the CSV; refuses a CSV that holds another task's or dataset's runs."""
    existing = read_results(csv_path)
    foreign = {(row["task"], row["dataset"]) for row in existing} - {(task, dataset_name)}
    if foreign:
        raise ValueError(
            f"{csv_path} holds runs of {sorted(foreign)}, not ({task!r}, {dataset_name!r}); use another "
            "--results-dir for another experiment."
        )
    done = {
        run_key(row["initialization"], row["fold"], row["label_fraction"], row["seed"], row["tuning"])
        for row in existing
    }
    return [planned for planned in plan if planned.key not in done]


def run_once(
    grid: LabelEfficiencyArguments,
    template: FinetuningArguments,
    training_options: Mapping[str, Any],
    planned: PlannedRun,
    results_dir: Path,
) -> dict:
    """Fine-tune one planned run quietly and return its CSV row."""
    metric = grid.metric or BEST_METRICS[grid.task]
    run_args = replace(
        template,
        init=str(planned.initialization),
        tuning=planned.tuning,
        fold=planned.fold,
        label_fraction=planned.fraction,
        save_model=False,
        keep_checkpoints=False,
    )
    options = {
        "disable_tqdm": True,
        **training_options,
        "seed": planned.seed,
        "output_dir": str(results_dir / "runs" / _run_dir_name(planned)),
    }
    result = run_finetuning(run_args, grid.task, options, verbose=False)
    value = result.metrics.get(f"eval_{metric}")
    if value is None:
        available = sorted(key.removeprefix("eval_") for key in result.metrics)
        raise ValueError(f"--metric {metric!r} is not among the evaluation metrics {available}.")
    return {
        "task": grid.task,
        "dataset": template.dataset or "demo",
        "initialization": str(planned.initialization),
        "tuning": planned.tuning,
        "fold": planned.fold,
        "label_fraction": planned.fraction,
        "seed": planned.seed,
        "metric": metric,
        "value": value,
        "num_train_examples": result.num_train_examples,
        "num_eval_examples": result.num_eval_examples,
        "train_seconds": round(result.train_seconds, 2),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(result.output_dir),
        "metrics_json": json.dumps(dict(result.metrics)),
    }


def summarize_results(rows: list[dict]) -> dict[str, dict[float, dict]]:
    """curve (initialisation and tuning mode, `curve_name`) -> label fraction -> {mean, std, min, max, n, n_nan} of
    `value` over folds and seeds."""
    values: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        curve = curve_name(row["initialization"], row.get("tuning") or FULL)
        values[curve][round(row["label_fraction"], 6)].append(row["value"])
    summary: dict[str, dict[float, dict]] = {}
    for initialization, by_fraction in values.items():
        summary[initialization] = {}
        for fraction, observed in sorted(by_fraction.items()):
            finite = [value for value in observed if not math.isnan(value)]
            mean = sum(finite) / len(finite) if finite else math.nan
            std = (sum((value - mean) ** 2 for value in finite) / (len(finite) - 1)) ** 0.5 if len(finite) > 1 else 0.0
            summary[initialization][fraction] = {
                "mean": mean,
                "std": std,
                "min": min(finite) if finite else math.nan,
                "max": max(finite) if finite else math.nan,
                "n": len(finite),
                "n_nan": len(observed) - len(finite),
            }
    return summary


def format_summary(summary: dict[str, dict[float, dict]]) -> str:
    fractions = sorted({fraction for by_fraction in summary.values() for fraction in by_fraction})
    width = max([len(name) for name in summary] + [len("initialisation")])
    cell_width = 17  # "0.284+-0.060 (3)"
    lines = [f"{'initialisation':<{width}}  " + "  ".join(f"{fraction:>{cell_width}.0%}" for fraction in fractions)]
    for initialization, by_fraction in summary.items():
        cells = []
        for fraction in fractions:
            cell = by_fraction.get(fraction)
            cells.append(f"{cell['mean']:.3f}+-{cell['std']:.3f} ({cell['n']})" if cell else "-")
        lines.append(f"{initialization:<{width}}  " + "  ".join(f"{cell:>{cell_width}}" for cell in cells))
    return "\n".join(lines)


def plot_label_efficiency(rows: list[dict] | str | Path, path: str | Path, title: str | None = None) -> Path:
    """Metric against the percentage of labels: one line per initialisation (mean over folds and seeds), a band of
    +-1 standard deviation across them, and each fold's value as a faint dot. Written as PNG to `path`."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    if isinstance(rows, (str, Path)):
        rows = read_results(rows)
    if not rows:
        raise ValueError("No results to plot.")
    summary = summarize_results(rows)
    metric = rows[0]["metric"]
    figure, axes = plt.subplots(figsize=(6.0, 4.2), dpi=150)
    for index, (initialization, by_fraction) in enumerate(summary.items()):
        color = f"C{index}"
        fractions = sorted(by_fraction)
        percentages = [100 * fraction for fraction in fractions]
        means = [by_fraction[fraction]["mean"] for fraction in fractions]
        stds = [by_fraction[fraction]["std"] for fraction in fractions]
        counts = sorted({by_fraction[fraction]["n"] for fraction in fractions})
        label = f"{initialization} (n={'/'.join(map(str, counts))} per point)"
        axes.plot(percentages, means, marker="o", color=color, label=label)
        lower = [mean - std for mean, std in zip(means, stds)]
        upper = [mean + std for mean, std in zip(means, stds)]
        axes.fill_between(percentages, lower, upper, color=color, alpha=0.15)
        points = [
            (100 * row["label_fraction"], row["value"])
            for row in rows
            if curve_name(row["initialization"], row.get("tuning") or FULL) == initialization
        ]
        axes.scatter([x for x, _ in points], [y for _, y in points], color=color, alpha=0.35, s=10)
    axes.set_xlabel("labelled training data (% of the fold's training cases)")
    axes.set_ylabel(metric)
    axes.set_xticks(sorted({100 * row["label_fraction"] for row in rows}))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    task, dataset = rows[0]["task"], rows[0]["dataset"]
    axes.set_title(title or f"Label efficiency: {task} on {dataset} (mean +- sd over folds)", fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


__all__ = [
    "LabelEfficiencyArguments",
    "plot_label_efficiency",
    "read_results",
    "run_label_efficiency",
]
