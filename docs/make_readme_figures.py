"""Make the README's `vis-mae predict` picture: a real DICOM from pydicom-data through the command line.

    python examples/run_finetune_segmentation.py --output-dir outputs/demo-segmentation   # a few minutes on a CPU
    python docs/make_readme_figures.py                      # -> docs/predict_<dicom>_overlay.png

The model is the demo one: VIS-MAE fine-tuned for minutes on axial slices of one averaged brain template (MNI152
2009, tissue labels 0 background, 1 grey matter, 2 white matter, 3 other brain). The picture demonstrates the
plumbing (DICOM decoding, windowing, the processor, the model, resizing back, the overlay), not accuracy: a model
trained on a skull-stripped template is shown a real clinical image it has never seen anything like.

The DICOM is read from the installed pydicom-data package (no download). The command that runs is exactly
`vis-mae predict --model MODEL DICOM --output TMP`; only the overlay PNG is kept, renamed, in docs/.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from pydicom.data import get_testdata_file

from vis_mae_hf.app.cli import main as vis_mae_main
from vis_mae_hf.inference.inputs import output_stem

DOCS = Path(__file__).resolve().parent
DEFAULT_MODEL = DOCS.parent / "outputs" / "demo-segmentation"
# pydicom-data's head CT (CQ500 study, 512 x 512, header window 40/100): the only full-size axial brain image that
# ships in a package (its MR brain files are 64 x 64 crops).
DEFAULT_DICOM = "693_UNCR.dcm"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="fine-tuned segmentation model folder")
    parser.add_argument("--dicom", default=DEFAULT_DICOM, help="a pydicom(-data) test file name, or a DICOM path")
    parser.add_argument("--output", type=Path, default=DOCS, help="where the picture goes (default docs/)")
    parser.add_argument("--frame", type=int, default=None, help="frame, for a multi-frame DICOM")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if not (args.model / "config.json").exists():
        print(
            f"No model in {args.model}: run `python examples/run_finetune_segmentation.py --output-dir {args.model}` "
            "first (the demo fine-tuning, a few minutes on a CPU).",
            file=sys.stderr,
        )
        return 1
    dicom = Path(args.dicom) if Path(args.dicom).exists() else get_testdata_file(args.dicom, download=False)
    if dicom is None:
        print(f"{args.dicom} is neither a file nor an installed pydicom(-data) test file.", file=sys.stderr)
        return 1
    dicom = Path(dicom)
    with tempfile.TemporaryDirectory() as scratch:
        command = ["predict", "--model", str(args.model), str(dicom), "--output", scratch]
        if args.frame is not None:
            command += ["--frame", str(args.frame)]
        print("vis-mae " + " ".join(command))
        status = vis_mae_main(command)
        if status != 0:
            return status
        stem = output_stem(dicom) + (f"_frame{args.frame}" if args.frame is not None else "")
        target = args.output / f"predict_{stem}_overlay.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(scratch) / f"{stem}_overlay.png", target)
    print(f"Wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
