"""The `vis-mae` entry point: it names the sub-commands and hands the chosen one to `vis_mae_hf.app.cli`.

It sits outside the `vis_mae_hf` package on purpose. Importing any `vis_mae_hf` module first runs the package's
`__init__`, which registers the model classes with the Transformers Auto classes and so imports torch and
Transformers' model code (seconds). This module uses the standard library only, so `vis-mae`, `vis-mae --help` and a
mistyped command are answered at once; `vis_mae_hf` is imported when a command runs or prints its own `--help`.
What a command accepts and how its errors are reported live in `vis_mae_hf.app.cli`.
"""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "vis-mae-hf"

# Sub-command -> one line for `vis-mae --help`. Each is implemented by the module `vis_mae_hf.app.cli.<name>`.
COMMANDS: dict[str, str] = {
    "data": "convert downstream datasets, build the pretraining corpus, prepare the demo data",
    "pretrain": "pretrain VIS-MAE (many processes: accelerate launch -m vis_mae_hf.app pretrain ...)",
    "finetune": "fine-tune for segmentation or classification with transformers.Trainer",
    "sweep": "label efficiency: fine-tune over initialisations x folds x label fractions, plot the curves",
    "convert": "convert a checkpoint of the published VIS-MAE code into a Transformers model folder",
    "predict": "segment or classify DICOM/NIfTI/PNG images and volumes with a fine-tuned model",
    "evaluate": "score predicted masks or a predictions CSV against references (table and JSON)",
    "embed": "write a model's pooled encoder embeddings of a dataset, for linear probes and kNN",
    "hub": "export, validate, push and release VIS-MAE repositories on the Hugging Face Hub, write a Space",
    "demo": "serve a browser page that segments, classifies or reconstructs uploaded images (Gradio)",
    "export": "export a saved model for other runtimes: ONNX for ONNX Runtime",
}


def installed_version() -> str:
    """The version of the installed vis-mae-hf (pyproject.toml's, through the package metadata), read without
    importing the package; `vis_mae_hf.__version__` reads the same metadata."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<10}{summary}" for name, summary in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="vis-mae",
        usage="vis-mae [-h] [--version] [--debug] COMMAND ...",
        description=f"VIS-MAE for medical images.\n\ncommands:\n{listing}",
        epilog="`vis-mae COMMAND --help` lists the options of a command.\n"
        "Exit status: 0 done, 1 an error in the input or the work (one line on stderr), 2 a usage error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"{DISTRIBUTION} {installed_version()}", help="show the version and exit"
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error, not one line")
    parser.add_argument("command", nargs="?", choices=COMMANDS, metavar="COMMAND", help=argparse.SUPPRESS)
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def parse_command_line(argv: list[str] | None = None) -> tuple[str, list[str], bool]:
    """`[--debug] COMMAND ARGUMENTS...` -> (COMMAND, ARGUMENTS, debug); usage errors exit 2 here, as argparse does."""
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.command is None:
        parser.error(f"choose a COMMAND: {', '.join(COMMANDS)}")
    return options.command, options.arguments, options.debug


def main(argv: list[str] | None = None) -> int:
    """Run `vis-mae ARGV...` (default: the process's arguments); returns the exit status."""
    command, arguments, debug = parse_command_line(argv)
    # Only now, with a command to run, does the package (torch, Transformers) load.
    from vis_mae_hf.app.cli import run_command

    return run_command(command, arguments, debug=debug)
