"""ONNX export of VIS-MAE models: one saved model -> a folder ONNX Runtime serves without PyTorch.

    export_onnx("outputs/segmenter", "outputs/segmenter-onnx")   # what `vis-mae export onnx` runs

The folder holds `model.onnx` (one file, fp32, opset 18, the weights inside), `preprocessor_config.json` (the model's
image processor, its size set to the exported size), `config.json` (labels), `onnx_export.json` (what was exported
and how closely ONNX Runtime matched PyTorch) and a README of the inputs and outputs.

What the graph allows: the batch axis is dynamic; height and width are fixed at export (the processor's size unless
asked otherwise), because the model's Python code chooses its operations from the map sizes: a stage pads its map to
whole windows only when the size is not a multiple of the window, and a stage whose map fits one window skips the
shifted windows. A graph traced at one size therefore computes another size wrongly (or fails), so the size is part
of the export: recorded in the README, `onnx_export.json` and the model's metadata, and ONNX Runtime refuses other
sizes, naming the expected one. Export another size to serve it.

The exporter is torch's own `torch.onnx.export(..., dynamo=True)`, on the eager attention path (the SDPA path fails
in the exporter's decomposition step with torch 2.13). Before anything is written, the exported graph is run in ONNX
Runtime (CPU) at batch 1 and 3 against the PyTorch model; a difference above `PARITY_TOLERANCE x max(1, max|PyTorch|)`
in any output refuses the export.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoImageProcessor

from . import modeling_vis_mae
from .image_processing_vis_mae import VisMaeImageProcessor, VisMaeImageProcessorPil
from .inference.predictor import CONFIG_ERRORS, checkpoint_config, load_whole_model
from .output_folders import open_output_folder

ONNX_TOOL = "vis-mae export onnx"
ONNX_MODEL_NAME = "model.onnx"
EXPORT_SUMMARY_NAME = "onnx_export.json"
OPSET_VERSION = 18
PARITY_TOLERANCE = 1e-4  # x max(1, max |PyTorch output|), per output
PARITY_BATCH_SIZES = (1, 3)
_TRACE_BATCH_SIZE = 2  # not 1: the exporter would take a size-1 batch for a constant
ONNX_EXTRA = "pip install 'vis-mae-hf[onnx]'"


class OnnxExportError(ValueError):
    """A model or a size that cannot be exported as asked; the message names it and what would be right."""


@dataclass(frozen=True)
class OnnxSignature:
    """What the graph of one architecture takes and gives: names and shapes as the README states them."""

    inputs: dict[str, str]
    outputs: dict[str, str]


_PIXELS = {"pixel_values": "float32 (batch, num_channels, height, width): the image processor's output"}
SIGNATURES: dict[str, OnnxSignature] = {
    "VisMaeModel": OnnxSignature(
        _PIXELS,
        {
            "last_hidden_state": "float32 (batch, height/32 * width/32, hidden_size): the last stage's tokens, no norm",
            "pooler_output": "float32 (batch, hidden_size): LayerNorm of those tokens, then their mean",
        },
    ),
    "VisMaeForImageClassification": OnnxSignature(
        _PIXELS, {"logits": "float32 (batch, num_labels): before softmax/sigmoid; names in config.json id2label"}
    ),
    "VisMaeForSemanticSegmentation": OnnxSignature(
        _PIXELS, {"logits": "float32 (batch, num_labels, height, width): per-pixel class scores before softmax"}
    ),
    "VisMaeForPreTraining": OnnxSignature(
        {
            **_PIXELS,
            "bool_masked_pos": "bool (batch, height/4 * width/4): True where a token is masked, row-major over the "
            "token grid (draw it with VisMaeForPreTraining.random_masking)",
        },
        {
            "logits": "float32 (batch, height/4 * width/4, 16 * num_channels): predicted (normalised) pixels per "
            "token, ordered (p, q, c)",
            "loss": "float32 (): mean squared error over the masked tokens",
        },
    ),
}


@dataclass
class OnnxExport:
    """What `export_onnx` wrote: the folder, the architecture, the fixed size and how closely ONNX Runtime matched."""

    output: str
    model: str
    architecture: str
    height: int
    width: int
    inputs: dict[str, str]
    outputs: dict[str, str]
    opset_version: int = OPSET_VERSION
    dynamic_axes: list[str] = field(default_factory=lambda: ["batch"])
    parity: dict[str, float] = field(default_factory=dict)  # output -> max |ONNX - PyTorch| / max(1, max |PyTorch|)
    torch_version: str = torch.__version__


def require_onnx_packages() -> None:
    """Import what the export needs (onnx, onnxscript for the exporter, onnxruntime for the check); a missing one is
    an ImportError naming the extra to install."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(f"ONNX export needs onnx, onnxscript and onnxruntime ({error}): {ONNX_EXTRA}") from error


def load_exportable_model(name: str | Path) -> tuple[nn.Module, VisMaeImageProcessor | VisMaeImageProcessorPil]:
    """The saved VIS-MAE model at `name` (a folder or cached Hub repo id), whole and in fp32 on the eager attention
    path, and its image processor. Raises `OnnxExportError` naming `name` for anything else."""
    name = str(name)
    config = checkpoint_config(name)  # a file, a missing folder or an unreadable config: one error naming it
    architecture = _exportable_architecture(name, config)
    try:
        processor = AutoImageProcessor.from_pretrained(name)
    except CONFIG_ERRORS as error:
        processor, reason = None, _first_line(error)
    else:
        reason = f"it describes a {type(processor).__name__}"
    if not isinstance(processor, (VisMaeImageProcessor, VisMaeImageProcessorPil)):
        raise OnnxExportError(
            f"--model {name} has no VIS-MAE image processor ({reason}); the export ships the processor that makes "
            "the model's input: save it next to the model (image_processor.save_pretrained(folder))."
        )
    return _load_whole_model(name, config, architecture), processor


def _exportable_architecture(name: str, config) -> str:
    architectures = list(getattr(config, "architectures", None) or [])
    if config.model_type != "vis_mae":
        raise OnnxExportError(
            f"--model {name} holds a {config.model_type!r} model ({', '.join(architectures) or 'no architecture'}), "
            f"not a VIS-MAE model; `{ONNX_TOOL}` exports saved VIS-MAE models: {', '.join(SIGNATURES)}."
        )
    exportable = [architecture for architecture in architectures if architecture in SIGNATURES]
    if not exportable:
        raise OnnxExportError(
            f"--model {name} holds a {', '.join(architectures) or 'VIS-MAE config without architectures'}; "
            f"`{ONNX_TOOL}` exports {', '.join(SIGNATURES)} (save the model with save_pretrained)."
        )
    return exportable[0]


def _load_whole_model(name: str, config, architecture: str) -> nn.Module:
    """Every tensor from the checkpoint and every checkpoint tensor used, all finite (the predictor's one rule): an
    export of random or diverged layers is refused. Eager attention: the exporter fails on the SDPA path."""
    model_class = getattr(modeling_vis_mae, architecture)
    return load_whole_model(name, config, model_class, {"attn_implementation": "eager", "dtype": torch.float32}).eval()


def export_size(config, processor, height: int | None = None, width: int | None = None) -> tuple[int, int]:
    """The fixed input size of the export: `height` and `width` when given, else the processor's size; each a positive
    multiple of the model's size divisor (32 for the published layout)."""
    size = processor.size
    chosen = {
        "--height" if height else "the processor's height": height or size["height"],
        "--width" if width else "the processor's width": width or size["width"],
    }
    divisor = config.size_divisor
    for option, value in chosen.items():
        if value <= 0 or value % divisor:
            nearest = max(divisor, round(value / divisor) * divisor)
            raise OnnxExportError(
                f"{option} {value} is not a positive multiple of {divisor} (patch size {config.patch_size} and "
                f"{len(config.depths) - 1} 2x patch mergings); use e.g. {nearest}."
            )
    return tuple(chosen.values())


class OnnxGraphModule(nn.Module):
    """The model as the exporter sees it: positional tensor inputs, a tuple of named outputs (`SIGNATURES`)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        outputs = SIGNATURES[type(model).__name__].outputs
        # An encoder built without its pooling layer has no pooler_output (from_pretrained always builds it).
        self.output_names = tuple(name for name in outputs if name != "pooler_output" or model.layernorm is not None)

    def forward(
        self, pixel_values: torch.Tensor, bool_masked_pos: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        extra = {} if bool_masked_pos is None else {"bool_masked_pos": bool_masked_pos}
        outputs = self.model(pixel_values=pixel_values, return_dict=True, **extra)
        return tuple(outputs[name] for name in self.output_names)


def example_inputs(
    model: nn.Module, batch_size: int, height: int, width: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Random inputs of the graph's signature (a drawn mask for the pretraining model), reproducible from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    config = model.config
    inputs = {"pixel_values": torch.randn(batch_size, config.num_channels, height, width, generator=generator)}
    if "bool_masked_pos" in SIGNATURES[type(model).__name__].inputs:
        inputs["bool_masked_pos"] = model.random_masking(batch_size, height, width, generator=generator)
    return inputs


def write_onnx_graph(model: nn.Module, path: Path, height: int, width: int) -> None:
    """Export `model` at `height x width` with a dynamic batch axis to the single file `path`."""
    graph = OnnxGraphModule(model).eval()
    inputs = example_inputs(model, _TRACE_BATCH_SIZE, height, width)
    batch = torch.export.Dim("batch")
    exporter_log = logging.getLogger("torch.onnx")
    level, attention = exporter_log.level, model.config._attn_implementation
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" and the like: not the user's concern
    model.set_attn_implementation("eager")  # the SDPA path fails in the exporter's decomposition (torch 2.13)
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph, tuple(inputs.values()), dynamo=True, opset_version=OPSET_VERSION, input_names=list(inputs),
                output_names=list(graph.output_names), dynamic_shapes={name: {0: batch} for name in inputs},
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
        model.set_attn_implementation(attention)
    program.model.metadata_props.update(
        {"vis_mae.architecture": type(model).__name__, "vis_mae.height": str(height), "vis_mae.width": str(width)}
    )
    program.save(path, external_data=False)


def onnx_parity(model: nn.Module, path: Path, height: int, width: int) -> dict[str, float]:
    """Output name -> the largest |ONNX Runtime - PyTorch| / max(1, max |PyTorch|) over batches of 1 and 3 (CPU)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    graph = OnnxGraphModule(model).eval()
    parity = dict.fromkeys(graph.output_names, 0.0)
    for seed, batch_size in enumerate(PARITY_BATCH_SIZES, start=1):
        inputs = example_inputs(model, batch_size, height, width, seed=seed)
        with torch.no_grad():
            expected = graph(**inputs)
        found = session.run(list(graph.output_names), {name: value.numpy() for name, value in inputs.items()})
        for name, reference, value in zip(graph.output_names, expected, found):
            reference = reference.numpy()
            if value.shape != reference.shape:
                raise OnnxExportError(f"ONNX output {name} has shape {value.shape}, PyTorch's {reference.shape}.")
            scale = max(1.0, float(np.abs(reference).max()))
            difference = float(np.abs(value - reference).max()) / scale
            parity[name] = max(parity[name], difference if np.isfinite(difference) else float("inf"))
    return parity


def export_onnx(
    model: str | Path, output: str | Path, *, height: int | None = None, width: int | None = None,
    overwrite: bool = False,
) -> OnnxExport:
    """Export the saved VIS-MAE model `model` (folder or cached Hub repo id) to the folder `output` (see the module
    docstring for what it holds). `height`/`width` default to the processor's size.

    Raises:
        ImportError: onnx, onnxscript or onnxruntime is not installed (the message names the extra).
        OnnxExportError: not a whole saved VIS-MAE model with its processor, a size that is not a multiple of 32, or
            an ONNX graph that does not match PyTorch (nothing is written then).
        OutputFolderError: `output` is not this command's to write (`output_folders`).
    """
    require_onnx_packages()
    torch_model, processor = load_exportable_model(model)
    height, width = export_size(torch_model.config, processor, height, width)
    output = Path(output)
    local_inputs = [model] if Path(model).exists() else []
    folder = open_output_folder(output, ONNX_TOOL, inputs=local_inputs, overwrite=overwrite,
                                previous_output="an ONNX export")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.staging-", dir=output.parent) as staging:
        staging = Path(staging)
        write_onnx_graph(torch_model, staging / ONNX_MODEL_NAME, height, width)
        parity = onnx_parity(torch_model, staging / ONNX_MODEL_NAME, height, width)
        signature = SIGNATURES[type(torch_model).__name__]
        result = OnnxExport(
            output=str(output), model=str(model), architecture=type(torch_model).__name__, height=height,
            width=width, inputs=signature.inputs, outputs=signature.outputs, parity=parity,
        )
        worst = max(parity.values())
        if not worst <= PARITY_TOLERANCE:
            raise OnnxExportError(
                f"The ONNX graph of --model {model} differs from PyTorch by {worst:.2e} x max(1, max|output|) "
                f"(allowed {PARITY_TOLERANCE:g}; per output {parity}); nothing was written. Report this with the "
                "model's config.json."
            )
        processor.size = {"height": height, "width": width}
        processor.save_pretrained(staging)
        torch_model.config.to_json_file(staging / "config.json")
        (staging / EXPORT_SUMMARY_NAME).write_text(json.dumps(asdict(result), indent=1) + "\n", encoding="utf-8")
        (staging / "README.md").write_text(onnx_readme(result), encoding="utf-8")
        folder.install(staging, last=[ONNX_MODEL_NAME])
    return result


def onnx_readme(export: OnnxExport) -> str:
    """The README of an export folder: what goes in and comes out, the fixed size, and how to run it."""
    inputs = "\n".join(f"- `{name}`: {text}" for name, text in export.inputs.items())
    outputs = "\n".join(f"- `{name}`: {text}" for name, text in export.outputs.items())
    feeds = ", ".join(f'"{name}": {name}' for name in export.inputs)
    imports = "from vis_mae_hf import VisMaeImageProcessor"
    masking = ""
    if "bool_masked_pos" in export.inputs:
        imports = "from vis_mae_hf import VisMaeConfig, VisMaeForPreTraining, VisMaeImageProcessor"
        masking = (
            "masker = VisMaeForPreTraining(VisMaeConfig.from_pretrained(folder))  # random weights: masking only\n"
            f"bool_masked_pos = masker.random_masking(len(pixel_values), {export.height}, {export.width}).numpy()\n"
        )
    names = list(export.outputs)
    unpacked = f"({', '.join(names)}{',' if len(names) == 1 else ''})"
    return f"""# {export.architecture} in ONNX

Exported by `{ONNX_TOOL}` from `{export.model}` (torch {export.torch_version}, opset {export.opset_version}).

**Input size: {export.height}x{export.width} pixels, fixed**; the batch axis is dynamic. The model's code chooses its
operations from the map sizes (padding to whole windows, shifted windows only where a map spans several), so the graph
holds for the size it was exported at only; ONNX Runtime refuses any other size. The image processor saved here
resizes every image to {export.height}x{export.width}; export again with `--height`/`--width` for another size.

ONNX Runtime (CPU) matched PyTorch within {max(export.parity.values()):.1e} x max(1, max|output|) at batch 1 and 3.

## Inputs
{inputs}

## Outputs
{outputs}

## Run it
```python
import onnxruntime
{imports}

folder = "{export.output}"
processor = VisMaeImageProcessor.from_pretrained(folder)
session = onnxruntime.InferenceSession(f"{{folder}}/{ONNX_MODEL_NAME}", providers=["CPUExecutionProvider"])
pixel_values = processor(images, return_tensors="np")["pixel_values"]  # images: [0, 1] arrays, PIL images
{masking}{unpacked} = session.run({list(export.outputs)}, {{{feeds}}})
```

`config.json` is the model's config (labels in `id2label`); `{EXPORT_SUMMARY_NAME}` records the above as data.
"""


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


__all__ = [
    "EXPORT_SUMMARY_NAME",
    "ONNX_MODEL_NAME",
    "PARITY_TOLERANCE",
    "SIGNATURES",
    "OnnxExport",
    "OnnxExportError",
    "export_onnx",
    "load_exportable_model",
]
