"""`vis-mae demo`: the demo page of a model in the browser (Gradio; the `app` extra).

    vis-mae demo --model DIR_OR_REPO [--port N] [--host H] [--share/--no-share] [--device D]

Gradio is imported when the command runs, so `vis-mae demo --help` answers without it; without it the command is
one line naming the extra.
"""

from __future__ import annotations

import argparse

from ..demo import build_demo
from . import set_handler

DEFAULT_PORT = 7860  # Gradio's and the Hub Spaces' port


def build_parser(prog: str) -> argparse.ArgumentParser:
    demo = argparse.ArgumentParser(
        prog=prog,
        description="Serve a page where a DICOM (a file or a zipped series), a NIfTI volume or a PNG/JPEG/TIFF is "
        "segmented (overlay, area in mm² and volume in mL per class), classified (probability table) or, for a "
        "pretraining checkpoint, masked and reconstructed. Needs the app extra: pip install \"vis-mae-hf[app]\".",
        epilog="Not a medical device: research use only. Exit status 0 when the server stops, 1 a model that "
        "cannot be loaded or Gradio missing, 2 bad arguments.",
    )
    demo.add_argument("--model", required=True, help="fine-tuned or pretraining model folder, or a Hub repo id")
    demo.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT})")
    demo.add_argument("--host", default="127.0.0.1",
                      help="address to serve on (default 127.0.0.1, this machine only; 0.0.0.0 for the network)")
    demo.add_argument("--share", action=argparse.BooleanOptionalAction, default=False,
                      help="also open a public gradio.live link (default --no-share)")
    demo.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    set_handler(demo, run_demo)
    return demo


def run_demo(args: argparse.Namespace) -> int:
    page = build_demo(args.model, device=args.device)  # ImportError naming the extra; PredictorLoadError
    page.launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0
