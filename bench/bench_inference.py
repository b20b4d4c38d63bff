"""Inference speed of the VIS-MAE models against the nearest Transformers models of the same dimensions, one process.

    python bench/bench_inference.py --device cpu --large-batch 16 --dtype fp32
    python bench/bench_inference.py --device cuda --large-batch 256 --dtype bf16 --compile

Three comparisons, each at batch 1 (latency) and at a large batch (throughput), forward only under
`torch.inference_mode()`, eval mode, fp32 or bf16 autocast:
- encoder, 224x224: `VisMaeModel` (depths 2,2,2,2; no pooling) against `SwinModel` of the same dims (embed 96,
  heads 3/6/12/24, window 7, no pooling): the same computation up to the published last-stage shift.
- classification, 224x224: `VisMaeForImageClassification` against `SwinForImageClassification` (same dims, 2 labels).
- segmentation, 320x320: `VisMaeForSemanticSegmentation` (Swin-Unet, depths 2,2,6,2, 2 labels) against
  `UperNetForSemanticSegmentation` with a Swin-T backbone of the same dims (Transformers' Swin segmentation model;
  its UperNet head is heavier than our decoder), and against the bare `SwinModel` encoder at 320 as a floor.
With `--compile`, our models are also run through `torch.compile(fullgraph=True)`; with `--onnx` (CPU, fp32, the onnx
extra), our models are also exported as `vis-mae export onnx` does (fixed size, dynamic batch) and run in ONNX Runtime
on as many threads as torch uses; with `--before REV`, the encoder comparison also runs `VisMaeModel` from the model
code of git revision REV (or a file) on the same weights. All rows of a table are timed in the same run, so their
ratios compare like with like:

    python bench/bench_inference.py --device cpu --large-batch 16 --dtype fp32 --compile --onnx
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from benchlib import (
    DTYPES,
    Workload,
    machine_description,
    measure,
    modeling_at_revision,
    print_table,
)
from transformers import (
    SwinConfig,
    SwinForImageClassification,
    SwinModel,
    UperNetConfig,
    UperNetForSemanticSegmentation,
)

from vis_mae_hf import (
    VisMaeConfig,
    VisMaeForImageClassification,
    VisMaeForSemanticSegmentation,
    VisMaeModel,
)


def swin_config(depths: list[int], image_size: int, **kwargs) -> SwinConfig:
    config = SwinConfig(
        embed_dim=96, depths=depths, num_heads=[3, 6, 12, 24], window_size=7, image_size=image_size, **kwargs
    )
    config._attn_implementation = "sdpa"
    return config


def comparisons() -> dict[str, dict]:
    """name -> image size, our model builder, baseline name and builders (baseline first)."""
    return {
        "encoder": {
            "size": 224,
            "models": {
                "swin-model": lambda: SwinModel(swin_config([2, 2, 2, 2], 224), add_pooling_layer=False),
                "vis-mae-model": lambda: VisMaeModel(VisMaeConfig(), add_pooling_layer=False),
            },
        },
        "classification": {
            "size": 224,
            "models": {
                "swin-for-image-classification": lambda: SwinForImageClassification(
                    swin_config([2, 2, 2, 2], 224, num_labels=2)
                ),
                "vis-mae-for-image-classification": lambda: VisMaeForImageClassification(VisMaeConfig(num_labels=2)),
            },
        },
        "segmentation": {
            "size": 320,
            "models": {
                "upernet-swin": lambda: UperNetForSemanticSegmentation(
                    UperNetConfig(
                        backbone_config=swin_config(
                            [2, 2, 6, 2], 320, out_features=["stage1", "stage2", "stage3", "stage4"]
                        ),
                        num_labels=2,
                        use_auxiliary_head=False,
                    )
                ),
                "swin-model-encoder-only": lambda: SwinModel(swin_config([2, 2, 6, 2], 320), add_pooling_layer=False),
                "vis-mae-for-semantic-segmentation": lambda: VisMaeForSemanticSegmentation(
                    VisMaeConfig(depths=[2, 2, 6, 2], num_labels=2)
                ),
            },
        },
    }


def forward_call(model, pixel_values, dtype):
    def call():
        with torch.inference_mode(), torch.autocast(
            pixel_values.device.type, dtype=dtype, enabled=dtype != torch.float32
        ):
            model(pixel_values=pixel_values)

    return call


def onnx_runtime_call(model, size: int, folder: Path):
    """`model` exported at `size` x `size` to `folder`, and a step that runs it in ONNX Runtime (CPU) on given
    pixel values."""
    import onnxruntime

    from vis_mae_hf.onnx_export import ONNX_MODEL_NAME, write_onnx_graph

    write_onnx_graph(model, folder / ONNX_MODEL_NAME, size, size)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the threads torch computes with: a fair comparison
    session = onnxruntime.InferenceSession(str(folder / ONNX_MODEL_NAME), options, providers=["CPUExecutionProvider"])

    def call_with(pixel_values):
        feed = {"pixel_values": pixel_values.cpu().numpy()}
        return lambda: session.run(None, feed)

    return call_with


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--large-batch", type=int, default=256)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="add our models under torch.compile(fullgraph=True)")
    parser.add_argument("--onnx", action="store_true", help="add our models exported to ONNX, in ONNX Runtime (CPU, "
                        "fp32; needs the onnx extra)")
    parser.add_argument("--before", default=None, metavar="REV", help="add the encoder of an earlier revision")
    parser.add_argument("--only", nargs="*", choices=sorted(comparisons()), default=None)
    parser.add_argument("--json", default=None)
    return parser


def main(argv: list[str] | None = None) -> None:
    options = build_parser().parse_args(argv)
    device, dtype = torch.device(options.device), DTYPES[options.dtype]
    if options.onnx and (device.type != "cpu" or dtype != torch.float32):
        raise SystemExit("--onnx compares on the CPU in fp32: add --device cpu --dtype fp32.")
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as onnx_folder:
        results = run_comparisons(options, device, dtype, Path(onnx_folder))
    if options.json:
        with open(options.json, "w") as handle:
            json.dump({"machine": machine_description(device), "dtype": options.dtype, "results": results}, handle, indent=1)


def run_comparisons(options: argparse.Namespace, device: torch.device, dtype: torch.dtype, onnx_folder: Path) -> dict:
    print(f"Machine: {machine_description(device)}")
    print(f"Forward only, eval, {options.dtype}; medians of {options.rounds} x {options.repeats} calls")
    results = {}
    for comparison, spec in comparisons().items():
        if options.only and comparison not in options.only:
            continue
        models = {}
        for name, build in spec["models"].items():
            torch.manual_seed(0)
            models[name] = build().to(device).eval()
        if options.before and comparison == "encoder":
            config = models["vis-mae-model"].config
            before = modeling_at_revision(options.before).VisMaeModel(config, add_pooling_layer=False)
            before.load_state_dict(models["vis-mae-model"].state_dict())
            models[f"vis-mae-model@{options.before}"] = before.to(device).eval()
        ours = next(name for name in models if name.startswith("vis-mae"))
        onnx_calls = {}
        if options.onnx:
            (onnx_folder / comparison).mkdir()
            onnx_calls[f"{ours}-onnxruntime"] = onnx_runtime_call(models[ours], spec["size"], onnx_folder / comparison)
        if options.compile:
            models[f"{ours}-compiled"] = torch.compile(models[ours], fullgraph=True)
        for batch in (1, options.large_batch):
            pixel_values = torch.randn(batch, 3, spec["size"], spec["size"], device=device)
            workloads = [Workload(name, forward_call(m, pixel_values, dtype), batch) for name, m in models.items()]
            workloads += [Workload(name, call_with(pixel_values), batch) for name, call_with in onnx_calls.items()]
            measure(workloads, device, options.repeats, options.warmup, options.rounds)
            print_table(f"{comparison}, {spec['size']}x{spec['size']}, batch {batch}", workloads, workloads[0])
            results[f"{comparison}/batch{batch}"] = {
                w.name: {"ms": 1e3 * w.seconds, "images_per_second": w.images_per_second, "peak_gib": w.peak_gib}
                for w in workloads
            }
        del models, onnx_calls
    return results


if __name__ == "__main__":
    main()
