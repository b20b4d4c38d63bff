"""A fine-tuned VIS-MAE model with its image processor, predicting 2-D images and whole volumes.

`VisMaePredictor.from_pretrained(folder_or_repo_id)` loads a `VisMaeForSemanticSegmentation` or
`VisMaeForImageClassification` checkpoint and the processor saved with it (the processor carries the input size and
normalisation the model was fine-tuned with). Images given to the predictor are 2-D arrays in [0, 1], (H, W) grey or
(H, W, 3) RGB: the `pixels` of a `MedicalImage` from `load_medical_image`; the processor maps them to the model's
channels and size.

Volumes are segmented slice by slice along the RAS axial axis (the third axis of a `MedicalVolume`, in [0, 1] from
`MedicalVolume.unit_range`). Each slice is shown to the model in radiological display orientation
(`orientation.display_slice`: the orientation of axial DICOM images and of the 2-D training slices cut from
volumes), and its prediction is turned back to the RAS voxel layout with `ras_plane_from_display`, so the label
volume lines up voxel for voxel with the input volume (`MedicalVolume.to_source_layout` then puts it on the input's
own grid).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    AutoModelForSemanticSegmentation,
    PreTrainedConfig,
)
from transformers.utils import logging as transformers_logging

from ..medical.orientation import AXIAL_AXIS, display_slice, ras_plane_from_display
from ..vocabulary import CLASSIFICATION, HUB_TASK_TYPES, SEGMENTATION
from ..weights.load_report import LoadReport

TASK_SEGMENTATION = HUB_TASK_TYPES[SEGMENTATION]
TASK_CLASSIFICATION = HUB_TASK_TYPES[CLASSIFICATION]
TASK_OF_ARCHITECTURE = {
    "VisMaeForSemanticSegmentation": TASK_SEGMENTATION,
    "VisMaeForImageClassification": TASK_CLASSIFICATION,
}
MAX_SEGMENTATION_LABELS = 256  # label maps are written as uint8
MAX_NAMED_TENSORS = 8
# What reading a config.json or preprocessor_config.json raises (a strict-dataclass error is a config field refused).
CONFIG_ERRORS = (OSError, ValueError, StrictDataclassError)
# What reading the weights raises: a damaged safetensors file, a pickle (.bin) that torch's safe loader refuses or that
# ends early, or a load Transformers gives up on.
WEIGHT_ERRORS = (*CONFIG_ERRORS, SafetensorError, RuntimeError, EOFError, pickle.UnpicklingError)


class PredictorLoadError(ValueError):
    """A model folder or repo id that cannot be used for prediction; the message names it."""


@dataclass
class SegmentationPrediction:
    """One image's or volume's segmentation at the input's size.

    Attributes:
        label_map: uint8 class indices, (H, W) for an image, (X, Y, Z) for a volume (same layout as the input).
        probabilities: float32 class probabilities (num_labels, *label_map.shape), or None when not asked for.
    """

    label_map: np.ndarray
    probabilities: np.ndarray | None = None


class VisMaePredictor:
    """A VIS-MAE segmentation or classification model, its image processor and a device, ready to predict.

    Args:
        model: a `VisMaeForSemanticSegmentation` or `VisMaeForImageClassification` (anything returning `.logits`
            from `model(pixel_values=...)` with a `config` holding `id2label`).
        image_processor: the `VisMaeImageProcessor` (or Pil twin) the model was fine-tuned with.
        device: where the model runs ("cpu", "cuda", "cuda:1", ...); default CUDA when available.
        task: `TASK_SEGMENTATION` or `TASK_CLASSIFICATION`; default from the model's class name.
    """

    def __init__(self, model, image_processor, *, device: str | torch.device | None = None, task: str | None = None):
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.image_processor = image_processor
        self.task = task or TASK_OF_ARCHITECTURE.get(type(model).__name__)
        if self.task not in (TASK_SEGMENTATION, TASK_CLASSIFICATION):
            raise PredictorLoadError(
                f"{type(model).__name__} is neither a segmentation nor a classification model: pass task="
                f"'{TASK_SEGMENTATION}' or '{TASK_CLASSIFICATION}'."
            )
        if self.task == TASK_SEGMENTATION and self.num_labels > MAX_SEGMENTATION_LABELS:
            raise PredictorLoadError(
                f"The model has {self.num_labels} labels; label maps are written as uint8, so at most "
                f"{MAX_SEGMENTATION_LABELS}."
            )

    @classmethod
    def from_pretrained(
        cls, model_name_or_path: str | Path, *, device: str | torch.device | None = None, **from_pretrained_kwargs
    ) -> VisMaePredictor:
        """Load the model and its image processor from a local folder or a Hub repo id (the Hub cache offline).

        Only a whole model is used: Transformers fills tensors missing from the checkpoint (or of another shape than
        the config's) with fresh random weights and merely logs it, which would give masks from random layers. Here
        any such tensor, any checkpoint tensor the model does not use, and any NaN or infinite weight refuses the
        model.

        Raises:
            PredictorLoadError: one line naming the model and what would be right, when: nothing loadable is there
                (a missing folder, a file given for the folder, an unreadable config.json or processor), the
                checkpoint has no task head (pretraining, bare encoder), the weights file is damaged (truncated,
                empty), the weights do not match the config (missing, unexpected or differently shaped tensors,
                named by module), or a weight is not finite.
        """

        name = str(model_name_or_path)
        config, task = _load_config(name, from_pretrained_kwargs)
        try:
            image_processor = AutoImageProcessor.from_pretrained(name, **from_pretrained_kwargs)
        except CONFIG_ERRORS as error:
            raise PredictorLoadError(
                f"{name} has no usable image processor ({_reason(error)}); save the processor the model was "
                "fine-tuned with next to it (image_processor.save_pretrained(folder))."
            ) from error
        model = _load_whole_model(name, config, task, from_pretrained_kwargs)
        return cls(model, image_processor, device=device, task=task)

    # ---------------------------------------------------------------- model facts

    @property
    def num_labels(self) -> int:
        return int(self.model.config.num_labels)

    @property
    def id2label(self) -> dict[int, str]:
        return {int(index): str(name) for index, name in self.model.config.id2label.items()}

    @property
    def label_names(self) -> list[str]:
        id2label = self.id2label
        return [id2label.get(index, f"LABEL_{index}") for index in range(self.num_labels)]

    @property
    def processor_window(self):
        """The CT window the model was fine-tuned with (the processor's `hounsfield_window`), or None."""
        return getattr(self.image_processor, "hounsfield_window", None)

    @property
    def multi_label(self) -> bool:
        return getattr(self.model.config, "problem_type", None) == "multi_label_classification"

    # ---------------------------------------------------------------- prediction

    @torch.inference_mode()
    def _logits(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        inputs = self.image_processor(images=list(images), return_tensors="pt")
        dtype = getattr(self.model, "dtype", torch.float32)
        pixel_values = inputs["pixel_values"].to(device=self.device, dtype=dtype)
        return self.model(pixel_values=pixel_values).logits.float()

    def _require(self, task: str) -> None:
        if self.task != task:
            raise ValueError(f"This is a {self.task} model; {task} needs a model fine-tuned for it.")

    @torch.inference_mode()
    def _segmentation_probabilities(self, images: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Per image, class probabilities (K, H, W) at the image's own size."""
        logits = self._logits(images)
        target_sizes = [tuple(image.shape[:2]) for image in images]
        return self.image_processor.post_process_semantic_segmentation_probabilities(
            logits, target_sizes=target_sizes
        )

    def segment_images(
        self, images: Sequence[np.ndarray], *, return_probabilities: bool = False
    ) -> list[SegmentationPrediction]:
        """Segment 2-D images (each (H, W) or (H, W, 3) in [0, 1]) in one batch; label maps at each image's size."""
        self._require(TASK_SEGMENTATION)
        predictions = []
        for probabilities in self._segmentation_probabilities(images):
            label_map = probabilities.argmax(dim=0).to(torch.uint8).cpu().numpy()
            kept = probabilities.cpu().numpy().astype(np.float32) if return_probabilities else None
            predictions.append(SegmentationPrediction(label_map=label_map, probabilities=kept))
        return predictions

    def segment_volume(
        self,
        volume: np.ndarray,
        *,
        batch_size: int = 8,
        return_probabilities: bool = False,
        progress: bool = False,
        description: str | None = None,
    ) -> SegmentationPrediction:
        """Segment every axial slice of a canonical RAS volume (X, Y, Z) in [0, 1]; the label map has its shape.

        Args:
            volume: RAS (X, Y, Z) in [0, 1], e.g. `MedicalVolume.unit_range(window)`
                (`inputs.volume_in_unit_range` picks the window).
            batch_size: slices per forward pass.
            return_probabilities: also return (num_labels, X, Y, Z) float32 probabilities (memory: 4 bytes per
                voxel and class).
            progress: show a tqdm bar over slices (on stderr).
            description: the bar's label, e.g. the file name.
        """
        self._require(TASK_SEGMENTATION)
        volume = np.asarray(volume)
        if volume.ndim != 3 or volume.size == 0:
            raise ValueError(f"A volume must be a non-empty (X, Y, Z) array, got shape {volume.shape}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        n_slices = volume.shape[AXIAL_AXIS]
        label_map = np.zeros(volume.shape, dtype=np.uint8)
        probabilities = np.zeros((self.num_labels, *volume.shape), dtype=np.float32) if return_probabilities else None
        with tqdm(total=n_slices, desc=description, unit="slice", disable=not progress, leave=False) as bar:
            for start in range(0, n_slices, batch_size):
                indices = range(start, min(start + batch_size, n_slices))
                planes = [display_slice(volume, AXIAL_AXIS, index) for index in indices]
                for index, slice_probabilities in zip(indices, self._segmentation_probabilities(planes)):
                    label_map[:, :, index] = ras_plane_from_display(
                        slice_probabilities.argmax(dim=0).to(torch.uint8).cpu().numpy()
                    )
                    if probabilities is not None:
                        probabilities[:, :, :, index] = ras_plane_from_display(slice_probabilities.cpu().numpy())
                bar.update(len(indices))
        return SegmentationPrediction(label_map=label_map, probabilities=probabilities)

    def classify_images(self, images: Sequence[np.ndarray], *, batch_size: int = 8) -> np.ndarray:
        """Class probabilities (N, num_labels) for 2-D images in [0, 1]: softmax, or per-label sigmoid for models
        fine-tuned with `problem_type="multi_label_classification"`."""
        self._require(TASK_CLASSIFICATION)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        batches = []
        for start in range(0, len(images), batch_size):
            logits = self._logits(images[start : start + batch_size])
            scores = logits.sigmoid() if self.multi_label else logits.softmax(dim=-1)
            batches.append(scores.cpu().numpy().astype(np.float32))
        return np.concatenate(batches) if batches else np.zeros((0, self.num_labels), dtype=np.float32)


# ---------------------------------------------------------------- loading a whole model


def _load_config(name: str, from_pretrained_kwargs: dict) -> tuple[PreTrainedConfig, str]:
    """The model's config and its task; a file where a folder belongs, an unreadable config or a checkpoint without
    a task head is a `PredictorLoadError`."""
    config = checkpoint_config(name, from_pretrained_kwargs)
    architectures = list(getattr(config, "architectures", None) or [])
    tasks = [TASK_OF_ARCHITECTURE[a] for a in architectures if a in TASK_OF_ARCHITECTURE]
    if not tasks:
        raise PredictorLoadError(
            f"{name} holds a {', '.join(architectures) or config.model_type} checkpoint; prediction needs a "
            f"fine-tuned {' or '.join(TASK_OF_ARCHITECTURE)} model (pretraining and encoder checkpoints have no "
            "task head)."
        )
    return config, tasks[0]


def checkpoint_config(name: str, from_pretrained_kwargs: dict | None = None) -> PreTrainedConfig:
    """The config of the model folder or repo id `name`; a file where a folder belongs or an unreadable config is a
    `PredictorLoadError` naming it."""
    if Path(name).is_file():
        raise PredictorLoadError(
            f"{name} is a file; a model is loaded from the folder that holds its config.json, weights and "
            f"preprocessor_config.json (here perhaps {Path(name).parent}), or from a Hub repo id."
        )
    try:
        return AutoConfig.from_pretrained(name, **(from_pretrained_kwargs or {}))
    except CONFIG_ERRORS as error:
        raise PredictorLoadError(f"Cannot load a model from {name}: {_reason(error)}") from error


def _load_whole_model(name: str, config: PreTrainedConfig, task: str, from_pretrained_kwargs: dict):
    """The task model with every tensor from the checkpoint and every checkpoint tensor used, all finite."""
    auto_class = {
        TASK_SEGMENTATION: AutoModelForSemanticSegmentation,
        TASK_CLASSIFICATION: AutoModelForImageClassification,
    }[task]
    return load_whole_model(name, config, auto_class, from_pretrained_kwargs)


def load_whole_model(name: str, config: PreTrainedConfig, model_class, from_pretrained_kwargs: dict):
    """`model_class.from_pretrained(name)` with every tensor from the checkpoint and every checkpoint tensor used,
    all finite; anything else is a `PredictorLoadError` naming the model and what would be right."""
    # Shape mismatches are collected in the loading info (and refused below, named) rather than raised with a
    # pointer to a logged table; Transformers' own load report is silenced because ours replaces it.
    kwargs = {**from_pretrained_kwargs, "output_loading_info": True, "ignore_mismatched_sizes": True}
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        model, loading_info = model_class.from_pretrained(name, config=config, **kwargs)
    except WEIGHT_ERRORS as error:
        raise PredictorLoadError(
            f"Cannot load the weights of {name}{_weight_files(name)}: {_reason(error)}. They are missing, damaged or "
            "incomplete (a copy or download cut short?): copy the model folder again as save_pretrained wrote it."
        ) from error
    finally:
        transformers_logging.set_verbosity(verbosity)
    report = LoadReport.from_loading_info(name, model, loading_info)
    if not report.complete:
        raise PredictorLoadError(
            f"{name} is not a whole {type(model).__name__}: {report.gaps()}. Its weights do not match its config.json "
            "(Transformers would fill the gaps with random weights): use the folder save_pretrained wrote for the "
            "fine-tuned model, config and weights together."
        )
    non_finite = _non_finite_tensors(model)
    if non_finite:
        count = f"{len(non_finite)} tensor{'' if len(non_finite) == 1 else 's'}"
        more = f" and {len(non_finite) - MAX_NAMED_TENSORS} more" if len(non_finite) > MAX_NAMED_TENSORS else ""
        raise PredictorLoadError(
            f"{name} holds NaN or infinite weights in {count} ({', '.join(non_finite[:MAX_NAMED_TENSORS])}{more}): "
            "training diverged or the file is damaged; use an earlier checkpoint of the run, or copy the model again."
        )
    return model


def _non_finite_tensors(model) -> list[str]:
    return [
        key
        for key, tensor in model.state_dict().items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def _weight_files(name: str) -> str:
    """` (model.safetensors)`: the weight files of a local model folder, to name in an error; empty otherwise."""
    folder = Path(name)
    files = sorted(p.name for p in folder.glob("*") if p.suffix in (".safetensors", ".bin")) if folder.is_dir() else []
    return f" ({', '.join(files)})" if files else ""


def _reason(error: BaseException) -> str:
    """The first line of an exception's message; for a refused config field the config's own message (a strict-
    dataclass error only names the validator and chains the config's ValueError)."""
    if isinstance(error, StrictDataclassError) and error.__cause__ is not None:
        error = error.__cause__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
