"""Does a repository work for someone without vis-mae-hf? Load it through every Auto class both ways and compare.

`auto_class_outputs(target, trust_remote_code)` loads a repository (folder or Hub id) with `AutoImageProcessor`,
the four model Auto classes, `AutoBackbone` and the feature-extraction, segmentation and classification pipelines,
and returns what each computes on one fixed image, seeding torch before each load so that freshly initialised heads
are drawn identically. This module imports nothing from vis_mae_hf at module level, so it also runs as a script in
an interpreter where `vis_mae_hf` cannot be imported: there the Auto classes can only use the repository's own code
(`trust_remote_code=True`).

`remote_code_loading_problems(target)` runs that script in a subprocess and compares its outputs with the installed
package's: the same weights must give the same numbers through both code paths. Loading with `trust_remote_code=True`
executes the repository's Python files, so it first checks that they are this package's own, byte for byte, and runs
nothing otherwise.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from huggingface_hub import snapshot_download
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers.models.auto.auto_factory import _BaseAutoModelClass

AUTO_MODEL_CLASSES = (
    "AutoModel",
    "AutoModelForPreTraining",
    "AutoModelForImageClassification",
    "AutoModelForSemanticSegmentation",
    "AutoBackbone",
)
PIPELINE_TASKS = ("image-feature-extraction", "image-segmentation", "image-classification")
SEED = 0


def probe_image(height: int = 48, width: int = 40) -> np.ndarray:
    """A fixed RGB uint8 image with structure in both axes (gradients and a bright square)."""
    rows = np.linspace(0, 200, height, dtype=np.float32)[:, None]
    columns = np.linspace(0, 55, width, dtype=np.float32)[None, :]
    grey = rows + columns
    grey[height // 4 : height // 2, width // 4 : width // 2] = 255
    return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)


def _first_tensor(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if getattr(output, "feature_maps", None) is not None:  # a backbone: every feature map counts
        return torch.cat([feature_map.flatten(1) for feature_map in output.feature_maps], dim=1)
    return output.logits if getattr(output, "logits", None) is not None else output.last_hidden_state


def _load_auto_model(name: str, target: str, kwargs: dict):
    auto_class = getattr(transformers, name)
    if name == "AutoBackbone":
        # Transformers 5.x's AutoBackbone first asks the Hub whether `target` is a repository (timm names are not),
        # which fails for a folder and offline. The package skips that question on import (vis_mae_hf/__init__.py);
        # this script may not import the package, so it loads the way that question leads to, as every Auto class.
        return _BaseAutoModelClass.from_pretrained.__func__(auto_class, target, **kwargs)
    return auto_class.from_pretrained(target, **kwargs)


def auto_class_outputs(target: str, trust_remote_code: bool) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Outputs of every Auto class and pipeline on `probe_image()`, and the module each class came from.

    Returns:
        (outputs, classes): `outputs` maps "AutoModel", ..., "pipeline:image-segmentation" to tensors; `classes` maps
        the same names (and "AutoConfig", "AutoImageProcessor") to `module.ClassName` of what was loaded.
    """

    kwargs = {"trust_remote_code": True} if trust_remote_code else {}
    config = transformers.AutoConfig.from_pretrained(target, **kwargs)
    processor = transformers.AutoImageProcessor.from_pretrained(target, **kwargs)
    classes = {
        "AutoConfig": f"{type(config).__module__}.{type(config).__name__}",
        "AutoImageProcessor": f"{type(processor).__module__}.{type(processor).__name__}",
    }
    image = probe_image()
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
    outputs = {"pixel_values": pixel_values}
    for name in AUTO_MODEL_CLASSES:
        torch.manual_seed(SEED)
        model = _load_auto_model(name, target, kwargs).eval()
        classes[name] = f"{type(model).__module__}.{type(model).__name__}"
        torch.manual_seed(SEED)  # the pretraining model draws its mask from the global generator
        with torch.no_grad():
            outputs[name] = _first_tensor(model(pixel_values=pixel_values)).detach().clone()
    for task in PIPELINE_TASKS:
        torch.manual_seed(SEED)
        runner = transformers.pipeline(task, model=target, **kwargs)
        classes[f"pipeline:{task}"] = f"{type(runner.model).__module__}.{type(runner.model).__name__}"
        result = runner(Image.fromarray(image))
        if task == "image-segmentation":
            # one entry per class present in the prediction; compare the label names and the masks
            outputs[f"pipeline:{task}"] = torch.stack([torch.from_numpy(np.array(entry["mask"])) for entry in result])
            classes[f"pipeline:{task}:labels"] = ",".join(entry["label"] for entry in result)
        elif task == "image-classification":
            # the top classes with their scores; compare the label names and the scores
            outputs[f"pipeline:{task}"] = torch.tensor([entry["score"] for entry in result], dtype=torch.float32)
            classes[f"pipeline:{task}:labels"] = ",".join(entry["label"] for entry in result)
        else:
            outputs[f"pipeline:{task}"] = torch.tensor(np.asarray(result, dtype=np.float32))
    return outputs, classes


def foreign_code_refusal(target: str) -> str | None:
    """Why the code files of `target` (folder or Hub id) must not be run, or None when they are this package's own."""
    # Here, not at the top: this module also runs as a script where vis_mae_hf cannot be imported.
    from vis_mae_hf import __version__
    from vis_mae_hf.hub.remote_code import foreign_code_files

    code_dir = target if Path(target).is_dir() else snapshot_download(target, allow_patterns=["*.py"])
    foreign = foreign_code_files(code_dir)
    if not foreign:
        return None
    return (
        f"the code files {', '.join(foreign)} of {target} are not vis-mae-hf {__version__}'s own; loading them with "
        "trust_remote_code=True would run them, so they were not run (export the repository again with this version)"
    )


def remote_code_loading_problems(target: str | Path, *, timeout: float = 300.0, atol: float = 1e-5) -> list[str]:
    """Why `target` does not load (or loads differently) through remote code; an empty list when all is well.

    Runs `auto_class_outputs(target, trust_remote_code=True)` in a fresh interpreter where `import vis_mae_hf` fails,
    with its own module cache, and compares with this interpreter's outputs through the installed package. Every
    Auto class and pipeline must have used the repository's code (module `transformers_modules...`) and produced the
    same numbers (within `atol`).
    """

    importlib.import_module("vis_mae_hf")  # registers the package's classes: the reference side of the comparison
    # A folder is passed on as an absolute path: the child runs in its own scratch directory.
    target = str(Path(target).resolve()) if Path(target).is_dir() else str(target)
    refusal = foreign_code_refusal(target)
    if refusal:
        return [refusal]
    problems = []
    with tempfile.TemporaryDirectory(prefix="vis-mae-remote-code-") as scratch:
        scratch = Path(scratch)
        env = dict(os.environ, HF_MODULES_CACHE=str(scratch / "modules"), PYTHONDONTWRITEBYTECODE="1")
        # `sys.modules[name] = None` makes every `import vis_mae_hf` raise ImportError in the child.
        bootstrap = (
            "import sys, runpy; sys.modules['vis_mae_hf'] = None; "
            f"sys.argv = [{__file__!r}, {target!r}, {str(scratch)!r}]; "
            f"runpy.run_path({__file__!r}, run_name='__main__')"
        )
        completed = subprocess.run(
            [sys.executable, "-c", bootstrap], env=env, capture_output=True, text=True, timeout=timeout,
            cwd=str(scratch),
        )
        if completed.returncode != 0:
            tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
            return [f"loading with trust_remote_code=True and without vis_mae_hf failed:\n{tail}"]
        remote_outputs = load_file(str(scratch / "outputs.safetensors"))
        remote_classes = json.loads((scratch / "classes.json").read_text())
    local_outputs, local_classes = auto_class_outputs(target, trust_remote_code=False)
    for name, origin in remote_classes.items():
        if name.endswith(":labels"):
            if origin != local_classes.get(name):
                problems.append(f"{name[:-7]} labels differ: remote {origin!r}, package {local_classes.get(name)!r}")
            continue
        if not origin.startswith("transformers_modules."):
            problems.append(f"{name} did not use the repository's code without vis_mae_hf: it loaded {origin}")
    for name, local in local_outputs.items():
        remote = remote_outputs.get(name)
        if remote is None or remote.shape != local.shape:
            remote_shape = None if remote is None else tuple(remote.shape)
            problems.append(f"{name}: remote code gave shape {remote_shape}, the package {tuple(local.shape)}")
        elif not torch.allclose(remote.float(), local.float(), atol=atol, rtol=0):
            difference = (remote.float() - local.float()).abs().max().item()
            problems.append(f"{name}: remote code and the package differ by up to {difference:.3g}")
    return problems


def _main(target: str, scratch: str) -> None:
    outputs, classes = auto_class_outputs(target, trust_remote_code=True)
    tensors = {name: tensor.contiguous() for name, tensor in outputs.items()}
    save_file(tensors, str(Path(scratch) / "outputs.safetensors"))
    (Path(scratch) / "classes.json").write_text(json.dumps(classes, indent=1))


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2])
