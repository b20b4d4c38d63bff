# Copyright 2025 The vis-mae-hf developers. Licensed under the Apache License, Version 2.0.
"""Image processor for VIS-MAE, plus the one implementation of CT intensity windowing.

This file is shipped to the Hub as remote code, so it imports only numpy, torch, PIL and transformers.

Two classes compute the same numbers (within 1e-5) through two backends:

- `VisMaeImageProcessor`: torch tensors end to end (`torch.nn.functional.interpolate`), usable on a GPU. It does not
  need torchvision: transformers' `TorchvisionBackend` resizes with torchvision, which is not a dependency here, so
  this class derives from `BaseImageProcessor` and implements the pipeline itself.
- `VisMaeImageProcessorPil`: numpy arrays resized with PIL (`PilBackend`), portable CPU twin.

The pipeline, per image (see `VisMaeImageProcessor` for every argument):

1. to a channels-first array, keeping the input dtype (PIL modes "I;16", "I", "F" keep their 16-bit/float values);
2. to [0, 1]: unsigned 8/16-bit images are divided by their dtype range; other integer and float images are
   "raw-valued": a `hounsfield_window` is applied to them, values already in [0, 1] are kept, anything else is an
   error unless `normalization="min_max"` rescales it anyway;
3. to `num_channels` (grey repeated to 3, RGB to grey by ITU-R 601-2 luminance, alpha dropped);
4. resize to `size` (bilinear or bicubic with antialiasing, clipped back to [0, 1]);
5. the normalisation the checkpoint was trained with (`normalization`).
"""

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.image_utils import (
    ChannelDimension,
    PILImageResampling,
    SizeDict,
    infer_channel_dimension_format,
)
from transformers.processing_utils import ImagesKwargs, Unpack

try:
    from transformers.image_processing_outputs import (
        SemanticSegmentationPostProcessorOutput,
    )
except ImportError:  # a Transformers 5 release from before the class: the same fields, for remote code there

    class SemanticSegmentationPostProcessorOutput(BatchFeature):
        """One image's `segmentation` (height, width) and `segmentation_scores` (num_labels, height, width)."""

# --------------------------------------------------------------------------------------------------------------------
# CT intensity windows
# --------------------------------------------------------------------------------------------------------------------

CT_WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    # name: (width, level) in Hounsfield units. Classic radiology display windows.
    "abdomen": (400.0, 40.0),
    "liver": (150.0, 30.0),
    "mediastinum": (350.0, 50.0),
    "lung": (1500.0, -600.0),
    "brain": (80.0, 40.0),
    "bone": (1800.0, 400.0),
    # BTCV multi-organ CT recipes, written as windows: TransUNet clips HU to [-125, 275], UNETR to [-175, 250].
    "btcv_transunet": (400.0, 75.0),
    "btcv_unetr": (425.0, 37.5),
}
"""Named CT windows, name -> (width, level) in HU; a window maps [level - width/2, level + width/2] onto [0, 1]."""


def resolve_window(window: str | Sequence[float] | None) -> tuple[float, float] | None:
    """Turn a window specification into `(width, level)`.

    Args:
        window: a name from `CT_WINDOW_PRESETS` (case-insensitive), an explicit `(width, level)` pair, or None.

    Returns:
        `(width, level)` as floats, or None when `window` is None.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones), a pair that is not two finite numbers,
            or a width <= 0.
    """
    if window is None:
        return None
    if isinstance(window, str):
        key = window.strip().lower()
        if key not in CT_WINDOW_PRESETS:
            valid = ", ".join(sorted(CT_WINDOW_PRESETS))
            raise ValueError(f"Unknown CT window {window!r}: expected one of {valid}, or an explicit (width, level).")
        return CT_WINDOW_PRESETS[key]
    if isinstance(window, (np.ndarray, torch.Tensor)):
        window = window.tolist()
    if not isinstance(window, Sequence) or len(window) != 2:
        raise ValueError(f"A window must be a preset name or a (width, level) pair of numbers, got {window!r}.")
    try:
        width, level = float(window[0]), float(window[1])
    except (TypeError, ValueError) as error:
        raise ValueError(f"A window (width, level) must hold two numbers, got {window!r}.") from error
    if not (math.isfinite(width) and math.isfinite(level)):
        raise ValueError(f"A window (width, level) must be finite, got {window!r}.")
    if width <= 0:
        raise ValueError(f"A window width must be > 0, got width={width} in {window!r}.")
    return width, level


def _is_tensor(values: Any) -> bool:
    return isinstance(values, torch.Tensor)


def _as_float32(values: Any) -> "np.ndarray | torch.Tensor":
    if _is_tensor(values):
        return values.to(torch.float32)
    return np.asarray(values, dtype=np.float32)


def _all_finite(values: "np.ndarray | torch.Tensor") -> bool:
    if _is_tensor(values):
        return bool(torch.isfinite(values).all())
    return bool(np.isfinite(values).all())


def apply_window(values: Any, width: float, level: float) -> "np.ndarray | torch.Tensor":
    """Map `[level - width/2, level + width/2]` linearly onto [0, 1], clipping outside.

    `clip((values - (level - width / 2)) / width, 0, 1)`, in float32. Works on numpy arrays (returns numpy) and torch
    tensors (returns a tensor on the same device), so the processor and the file loaders share this one function.
    Display inversion (MONOCHROME1) is not done here: it comes after windowing.
    """
    width, level = resolve_window((width, level))
    lower = level - width / 2.0
    return ((_as_float32(values) - lower) / width).clip(0.0, 1.0)


def scale_min_max(values: Any) -> "np.ndarray | torch.Tensor":
    """Rescale linearly so that the minimum maps to 0 and the maximum to 1, in float32.

    A constant image gives zeros (not NaN). Works on numpy arrays and torch tensors alike.

    Raises:
        ValueError: for an empty array or one with NaN/Inf values (their min/max are meaningless).
    """
    values = _as_float32(values)
    if math.prod(values.shape) == 0:
        raise ValueError(f"Cannot min-max scale an empty array (shape {tuple(values.shape)}).")
    if not _all_finite(values):
        raise ValueError("Cannot min-max scale an array with NaN or infinite values.")
    low, high = values.min(), values.max()
    span = float(high - low)
    if span <= 0.0:
        return values * 0.0
    return (values - low) / span


# --------------------------------------------------------------------------------------------------------------------
# Normalisations (which one a checkpoint was trained with: `vis_mae_hf.recipes`)
# --------------------------------------------------------------------------------------------------------------------

PRETRAINING_MEAN = 0.223
PRETRAINING_STD = 0.202
"""Pretraining normalised [0, 1] pixels with one scalar mean/std, the same on every channel."""

NORMALIZATIONS = ("pretraining", "min_max", "none", "mean_std")


# --------------------------------------------------------------------------------------------------------------------
# Array helpers shared by both backends (numpy arrays and torch tensors support the same indexing and arithmetic)
# --------------------------------------------------------------------------------------------------------------------

_LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2, what PIL's convert("L") uses
_SUPPORTED_RESAMPLING = {
    int(PILImageResampling.NEAREST): "nearest",
    int(PILImageResampling.BILINEAR): "bilinear",
    int(PILImageResampling.BICUBIC): "bicubic",
}


def _unsigned_range(image: "np.ndarray | torch.Tensor") -> float | None:
    """The full-scale value of an unsigned 8/16-bit display image, None for raw-valued (signed/float) images."""
    if _is_tensor(image):
        return {torch.uint8: 255.0, torch.uint16: 65535.0}.get(image.dtype)
    return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(image.dtype)


def _nearest_source_indices(input_size: int, output_size: int) -> np.ndarray:
    """Source index of each output pixel for nearest-neighbour resizing, by pixel centres, in exact integers.

    floor((out + 0.5) * input_size / output_size) computed as floor((2 * out + 1) * input_size / (2 * output_size)):
    floating-point versions (torch's "nearest-exact", PIL's NEAREST) round exact ties differently, and masks must
    come out identical on both backends.
    """
    output_index = np.arange(output_size, dtype=np.int64)
    return ((2 * output_index + 1) * input_size) // (2 * output_size)


def _take_pixels(image, rows: np.ndarray, columns: np.ndarray):
    """`image[..., rows, :][..., :, columns]` for numpy arrays and torch tensors."""
    if _is_tensor(image):
        rows = torch.from_numpy(rows).to(image.device)
        columns = torch.from_numpy(columns).to(image.device)
    return image[..., rows, :][..., :, columns]


def _channel_column(like, values: Sequence[float]):
    """`values` as a (C, 1, 1) float32 array of the same kind (and device) as `like`, for broadcasting."""
    if _is_tensor(like):
        return torch.tensor(list(values), dtype=torch.float32, device=like.device).reshape(-1, 1, 1)
    return np.asarray(list(values), dtype=np.float32).reshape(-1, 1, 1)


def pil_image_to_array(image: Image.Image) -> np.ndarray:
    """A PIL image as a numpy array that keeps 16-bit, 32-bit and float values (modes I;16*, I, F).

    Bilevel and grey+alpha images become uint8 grey, every other colour mode uint8 RGB (alpha dropped, as PIL's
    convert("RGB") does).
    """
    if image.mode.startswith("I;16"):
        pixels = np.asarray(image)
        # "I;16B" comes out big-endian: make it native so it is recognised as (u)int16 downstream.
        return pixels.astype(pixels.dtype.newbyteorder("="))
    if image.mode in ("1", "LA", "La"):
        image = image.convert("L")
    elif image.mode not in ("L", "I", "F", "RGB"):
        image = image.convert("RGB")
    return np.asarray(image)


def _flat_image_list(images: Any, single_ndims: tuple[int, ...], what: str) -> list:
    """Flatten images (one, a list, a nested list, or a batch array) into a list of single images.

    A single image is a PIL image or an array with `ndim in single_ndims`; an array with one more dimension is a batch.
    """

    def is_array(value):
        return isinstance(value, (np.ndarray, torch.Tensor))

    if isinstance(images, Image.Image):
        return [images]
    if is_array(images):
        if images.ndim in single_ndims:
            return [images]
        if images.ndim == max(single_ndims) + 1:
            return list(images)
        raise ValueError(
            f"Cannot read {what} from an array of shape {tuple(images.shape)}: expected one {what[:-1]} with "
            f"{' or '.join(map(str, single_ndims))} dimensions, or a batch with {max(single_ndims) + 1}."
        )
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError(f"No {what} given: the list is empty.")
        flat = []
        for item in images:
            if isinstance(item, (list, tuple)):
                flat.extend(_flat_image_list(item, single_ndims, what))
            elif isinstance(item, Image.Image) or (is_array(item) and item.ndim in single_ndims):
                flat.append(item)
            elif is_array(item):
                raise ValueError(
                    f"Cannot read {what} from an array of shape {tuple(item.shape)} inside a list: each item must "
                    f"have {' or '.join(map(str, single_ndims))} dimensions."
                )
            else:
                raise TypeError(f"{what} must be PIL images, numpy arrays or torch tensors, got {type(item).__name__}.")
        return flat
    raise TypeError(f"{what} must be PIL images, numpy arrays or torch tensors, got {type(images).__name__}.")


# --------------------------------------------------------------------------------------------------------------------
# Processor
# --------------------------------------------------------------------------------------------------------------------


class VisMaeImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    hounsfield_window (`str` or `tuple[float, float]`, *optional*):
        CT window (a `CT_WINDOW_PRESETS` name or `(width, level)` in HU) applied first to raw-valued images (float or
        signed-integer input whose values leave [0, 1], e.g. a slice in HU). Unsigned 8/16-bit images are display
        images and are not windowed. None: off.
    normalization (`str`, *optional*):
        "pretraining" (scalar mean 0.223 / std 0.202), "min_max" (each image scaled to [0, 1]), "none" (plain [0, 1])
        or "mean_std" (`image_mean` / `image_std`).
    num_channels (`int`, *optional*):
        Channels the model takes: 3 (grey repeated) or 1 (RGB to luminance).
    """

    hounsfield_window: str | tuple[int | float, int | float] | list[int | float] | None
    normalization: Literal["pretraining", "min_max", "none", "mean_std"] | None
    num_channels: int | None


class _VisMaeImageProcessingMixin:
    """Everything both backends share: settings, validation, the per-image pipeline, post-processing.

    A backend provides `process_image` (one input -> channels-first array of the input dtype),
    `_resize_float` (C, H, W) float32 -> (C, height, width) float32, and `_to_backend_array` for segmentation maps.
    """

    valid_kwargs = VisMaeImageProcessorKwargs
    model_input_names = ["pixel_values"]

    do_resize = True
    size = {"height": 224, "width": 224}
    resample = PILImageResampling.BILINEAR
    do_rescale = True
    rescale_factor = 1 / 255  # for uint8 input; uint16 input is always divided by 65535
    do_normalize = True
    normalization = "pretraining"
    image_mean = None  # used by normalization="mean_std" only
    image_std = None
    num_channels = 3
    hounsfield_window = None

    # ---------------------------------------------------------------- settings

    def _standardize_kwargs(self, hounsfield_window=None, **kwargs) -> dict:
        kwargs = super()._standardize_kwargs(**kwargs)
        if isinstance(hounsfield_window, str):
            hounsfield_window = hounsfield_window.strip().lower()
        elif hounsfield_window is not None:
            hounsfield_window = resolve_window(hounsfield_window)
        kwargs["hounsfield_window"] = hounsfield_window
        return kwargs

    def _validate_preprocess_kwargs(
        self,
        do_resize=None,
        size=None,
        resample=None,
        do_rescale=None,
        rescale_factor=None,
        do_normalize=None,
        normalization=None,
        image_mean=None,
        image_std=None,
        num_channels=None,
        hounsfield_window=None,
        do_center_crop=None,
        do_pad=None,
        data_format=None,
        **kwargs,
    ):
        if isinstance(hounsfield_window, str) and hounsfield_window == "header":
            raise ValueError(
                "hounsfield_window='header' needs a file header, but the processor sees arrays: load the file with "
                "vis_mae_hf.load_medical_image(path, window='header') and pass its .pixels (already in [0, 1])."
            )
        resolve_window(hounsfield_window)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}.")
        if normalization == "mean_std":
            self._mean_std_columns(image_mean, image_std, num_channels)
        if num_channels not in (1, 3):
            raise ValueError(f"num_channels must be 1 or 3, got {num_channels!r}.")
        if do_resize:
            if size is None or not size.height or not size.width:
                raise ValueError(f"size must be {{'height': int, 'width': int}} when do_resize=True, got {size!r}.")
            if resample is None or int(resample) not in _SUPPORTED_RESAMPLING:
                raise ValueError(
                    f"resample must be NEAREST (0), BILINEAR (2) or BICUBIC (3): the two backends agree on those only; "
                    f"got {resample!r}."
                )
        if do_rescale and (rescale_factor is None or rescale_factor <= 0):
            raise ValueError(f"rescale_factor must be > 0 when do_rescale=True, got {rescale_factor!r}.")
        if do_center_crop or do_pad:
            raise ValueError("VIS-MAE processors resize to `size`; center cropping and padding are not supported.")
        if data_format not in (None, ChannelDimension.FIRST, "channels_first"):
            raise ValueError(f"VIS-MAE pixel_values are channels-first; data_format={data_format!r} is not supported.")

    def _check_settings(self) -> None:
        """Fail at construction (not at the first call) on settings no call could use."""
        self._validate_preprocess_kwargs(**{name: getattr(self, name, None) for name in self._valid_kwargs_names})

    @staticmethod
    def _mean_std_columns(image_mean, image_std, num_channels: int) -> tuple[list[float], list[float]]:
        def per_channel(values, name):
            if values is None:
                raise ValueError(f"normalization='mean_std' needs {name} (one number, or one per channel).")
            values = [float(values)] * num_channels if isinstance(values, (int, float)) else [float(v) for v in values]
            if len(values) == 1:
                values = values * num_channels
            if len(values) != num_channels:
                raise ValueError(f"{name} has {len(values)} values but num_channels is {num_channels}.")
            return values

        mean, std = per_channel(image_mean, "image_mean"), per_channel(image_std, "image_std")
        if any(s <= 0 for s in std):
            raise ValueError(f"image_std must be > 0 on every channel, got {std}.")
        return mean, std

    # ---------------------------------------------------------------- preprocessing

    def preprocess(self, images, segmentation_maps=None, **kwargs: Unpack[VisMaeImageProcessorKwargs]) -> BatchFeature:
        """Turn images (and optional segmentation maps) into model inputs.

        Args:
            images: a PIL image (RGB, L, I;16, I, F, ...), a numpy array or torch tensor shaped (H, W), (H, W, C) or
                (C, H, W) of dtype uint8, uint16, signed int or float, a batch array (B, ...), or a list of those.
            segmentation_maps: class-index masks (H, W) matching each image's size; returned as `labels`, resized by
                nearest neighbour, values untouched.
            kwargs: any processor setting, overriding the instance's for this call; `return_tensors="pt"` stacks.

        Returns:
            `BatchFeature` with `pixel_values` (B, num_channels, height, width) float32 and, with masks, `labels`
            (B, height, width) int64.
        """
        return super().preprocess(images, segmentation_maps, **kwargs)

    def _prepare_images_structure(self, images, expected_ndims: int = 3):
        images = self.fetch_images(images)
        if expected_ndims == 2:
            return _flat_image_list(images, (2,), "segmentation maps")
        return _flat_image_list(images, (2, 3), "images")

    def _preprocess_image_like_inputs(
        self,
        images,
        segmentation_maps=None,
        *,
        input_data_format=None,
        device=None,
        return_tensors=None,
        **kwargs,
    ) -> BatchFeature:
        prepared = self._prepare_image_like_inputs(images, input_data_format=input_data_format, device=device)
        data = {"pixel_values": self._preprocess(prepared, **kwargs)}
        if segmentation_maps is not None:
            masks = self._prepare_images_structure(segmentation_maps, expected_ndims=2)
            if len(masks) != len(prepared):
                raise ValueError(f"Got {len(prepared)} images but {len(masks)} segmentation maps: give one per image.")
            labels = []
            for index, (mask, image) in enumerate(zip(masks, prepared)):
                mask = self._mask_to_array(mask, index, device=device)
                if tuple(mask.shape) != tuple(image.shape[-2:]):
                    raise ValueError(
                        f"Segmentation map {index} has size {tuple(mask.shape)} but its image has size "
                        f"{tuple(image.shape[-2:])}: a mask must have its image's height and width."
                    )
                if kwargs["do_resize"]:
                    size = kwargs["size"]
                    rows = _nearest_source_indices(mask.shape[0], size.height)
                    columns = _nearest_source_indices(mask.shape[1], size.width)
                    mask = _take_pixels(mask, rows, columns)
                labels.append(mask)
            data["labels"] = labels
        return BatchFeature(data=data, tensor_type=return_tensors)

    def _preprocess(
        self,
        images: list,
        *,
        do_resize: bool,
        size: SizeDict,
        resample,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        normalization: str,
        image_mean,
        image_std,
        num_channels: int,
        hounsfield_window,
        **kwargs,
    ) -> list:
        window = resolve_window(hounsfield_window)
        min_max = do_normalize and normalization == "min_max"
        processed = []
        for index, image in enumerate(images):
            image = self._to_unit_range(image, index, window, do_rescale, rescale_factor, accepts_any_range=min_max)
            image = self._match_channels(image, num_channels, before_resize=True)
            if do_resize and tuple(image.shape[-2:]) != (size.height, size.width):
                mode = _SUPPORTED_RESAMPLING[int(resample)]
                if mode == "nearest":
                    rows = _nearest_source_indices(image.shape[-2], size.height)
                    columns = _nearest_source_indices(image.shape[-1], size.width)
                    image = _take_pixels(image, rows, columns)
                else:
                    # Bicubic overshoots: clip so every normalisation starts from [0, 1] (min-max images too).
                    image = self._resize_float(image, size.height, size.width, mode)
                    image = image if min_max else image.clip(0.0, 1.0)
            image = self._match_channels(image, num_channels, before_resize=False)
            if do_normalize:
                image = self._normalize(image, normalization, image_mean, image_std, num_channels)
            processed.append(image)
        return processed

    @staticmethod
    def _to_unit_range(image, index: int, window, do_rescale: bool, rescale_factor: float, accepts_any_range: bool):
        """Step 2 of the pipeline: any input dtype -> float32 in [0, 1] (or any finite range for min-max)."""
        if math.prod(image.shape) == 0:
            raise ValueError(f"Image {index} is empty (shape {tuple(image.shape)}).")
        input_dtype = str(image.dtype).removeprefix("torch.")
        full_scale = _unsigned_range(image)
        if full_scale is not None and do_rescale:
            factor = rescale_factor if full_scale == 255.0 else 1.0 / full_scale
            return _as_float32(image) * factor
        image = _as_float32(image)
        if not _all_finite(image):
            raise ValueError(f"Image {index} has NaN or infinite values.")
        low, high = float(image.min()), float(image.max())
        if low >= 0.0 and high <= 1.0:
            # Already in [0, 1] (e.g. load_medical_image output): never re-windowed or rescaled.
            return image
        if window is not None:
            return apply_window(image, *window)
        if accepts_any_range:
            return image
        raise ValueError(
            f"Image {index} ({input_dtype}) has values in [{low:g}, {high:g}], outside [0, 1]. Pass "
            "hounsfield_window (a CT preset or (width, level)) for images in HU, scale the image to [0, 1] first, or "
            "use normalization='min_max'."
        )

    @staticmethod
    def _match_channels(image, num_channels: int, before_resize: bool):
        """Step 3: RGB -> grey before resizing (less to resize), grey -> 3 channels after (repeating is exact)."""
        if before_resize and num_channels == 1 and image.shape[0] == 3:
            red, green, blue = _LUMINANCE_WEIGHTS
            return (red * image[0] + green * image[1] + blue * image[2])[None]
        if not before_resize and num_channels == 3 and image.shape[0] == 1:
            return image[[0, 0, 0]]
        return image

    def _normalize(self, image, normalization: str, image_mean, image_std, num_channels: int):
        if normalization == "pretraining":
            return (image - PRETRAINING_MEAN) / PRETRAINING_STD
        if normalization == "min_max":
            return scale_min_max(image)
        if normalization == "mean_std":
            mean, std = self._mean_std_columns(image_mean, image_std, num_channels)
            return (image - _channel_column(image, mean)) / _channel_column(image, std)
        return image

    def _mask_to_array(self, mask, index: int, device=None):
        """A segmentation map as a 2-D int64 array of class indices (PIL "P" masks keep their palette indices)."""
        if isinstance(mask, Image.Image):
            if mask.mode not in ("1", "L", "P", "I", "F") and not mask.mode.startswith("I;16"):
                raise ValueError(
                    f"Segmentation map {index} is a {mask.mode} image: masks must hold one class index per pixel "
                    "(PIL mode L, P, I or I;16, or a 2-D integer array)."
                )
            mask = np.asarray(mask)
        elif isinstance(mask, torch.Tensor):
            mask = mask.detach().cpu().numpy()
        if mask.ndim != 2:
            raise ValueError(f"Segmentation map {index} has shape {tuple(mask.shape)}; expected (height, width).")
        if mask.dtype.kind == "f":
            if not np.isfinite(mask).all() or not (mask == np.round(mask)).all():
                raise ValueError(f"Segmentation map {index} has non-integer values: masks hold class indices.")
        elif mask.dtype.kind not in "iub":
            raise ValueError(f"Segmentation map {index} has dtype {mask.dtype}; expected integer class indices.")
        mask = mask.astype(np.int64)
        if self._backend_is_torch:
            mask = torch.from_numpy(mask)
            return mask.to(device) if device is not None else mask
        return mask

    # ---------------------------------------------------------------- post-processing

    @staticmethod
    def _resized_logits(outputs, target_sizes) -> list[torch.Tensor]:
        logits = outputs if isinstance(outputs, torch.Tensor) else getattr(outputs, "logits", None)
        if logits is None and isinstance(outputs, dict):
            logits = outputs.get("logits")
        if not isinstance(logits, torch.Tensor) or logits.ndim != 4:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"Expected segmentation logits (batch, classes, height, width), got {shape}.")
        if logits.shape[1] < 2:
            raise ValueError(
                f"Segmentation logits have {logits.shape[1]} class channel; VIS-MAE heads output one channel per "
                "class including background, so at least 2."
            )
        if target_sizes is None:
            return list(logits)
        if isinstance(target_sizes, torch.Tensor):
            target_sizes = target_sizes.tolist()
        if len(target_sizes) != logits.shape[0]:
            raise ValueError(
                f"Got {len(target_sizes)} target sizes for a batch of {logits.shape[0]} logits: give one per image."
            )
        resized = []
        for image_logits, target_size in zip(logits, target_sizes):
            height, width = (int(v) for v in target_size)
            if height <= 0 or width <= 0:
                raise ValueError(f"Target sizes must be positive (height, width), got {tuple(target_size)}.")
            resized.append(
                F.interpolate(image_logits[None], size=(height, width), mode="bilinear", align_corners=False)[0]
            )
        return resized

    def post_process_semantic_segmentation(
        self, outputs, target_sizes=None, return_segmentation_scores: bool = False
    ) -> "list[torch.Tensor] | list[SemanticSegmentationPostProcessorOutput]":
        """Class maps from segmentation logits, as Transformers' segmentation processors make them.

        Args:
            outputs: the model output (anything with `.logits` of shape (B, K, h, w)) or the logits tensor.
            target_sizes: one (height, width) per image, usually the original sizes; logits are resized bilinearly
                to it before the argmax. None keeps the logits' size.
            return_segmentation_scores: also return each image's scores, the (resized) logits the map is the
                argmax of.

        Returns:
            One int64 tensor (height, width) per image; with `return_segmentation_scores`, one
            `SemanticSegmentationPostProcessorOutput` per image instead, with `segmentation` (that map) and
            `segmentation_scores` (num_labels, height, width). For probabilities, see
            `post_process_semantic_segmentation_probabilities`.
        """
        results = []
        for image_logits in self._resized_logits(outputs, target_sizes):
            segmentation = image_logits.argmax(dim=0)
            if return_segmentation_scores:
                segmentation = SemanticSegmentationPostProcessorOutput(
                    data={"segmentation": segmentation, "segmentation_scores": image_logits}
                )
            results.append(segmentation)
        return results

    def post_process_semantic_segmentation_probabilities(self, outputs, target_sizes=None) -> list[torch.Tensor]:
        """Class probabilities: softmax over classes of the (resized) logits, one float tensor (K, H, W) per image.

        Their argmax is exactly `post_process_semantic_segmentation`'s map for the same `target_sizes`.
        """
        return [image_logits.softmax(dim=0) for image_logits in self._resized_logits(outputs, target_sizes)]


class VisMaeImageProcessor(_VisMaeImageProcessingMixin, BaseImageProcessor):
    r"""
    VIS-MAE image processor on torch tensors (CPU or GPU), without torchvision.

    Args:
        do_resize (`bool`, defaults to True): resize to `size`.
        size (`dict[str, int]`, defaults to `{"height": 224, "width": 224}`): output size.
        resample (`PILImageResampling`, defaults to BILINEAR): BILINEAR or BICUBIC (antialiased when shrinking), or
            NEAREST. Segmentation maps are always resized by nearest neighbour.
        do_rescale (`bool`, defaults to True): divide uint8 images by 255 (`rescale_factor`) and uint16 images by
            65535. With False, unsigned images are treated as raw-valued like float ones.
        rescale_factor (`float`, defaults to 1/255): the uint8 factor.
        hounsfield_window (`str` or `(width, level)`, *optional*): CT window for raw-valued images in HU, applied
            first. Float/signed images already inside [0, 1] and unsigned 8/16-bit images are never windowed: they
            are display images already (this is what keeps `load_medical_image` output and PNGs from being windowed
            twice).
        num_channels (`int`, defaults to 3): 3 repeats grey images; 1 turns RGB into luminance.
        do_normalize (`bool`, defaults to True): apply `normalization`.
        normalization (`str`, defaults to "pretraining"): "pretraining" ((x - 0.223) / 0.202 on every channel),
            "min_max" (each image, all channels together, to [0, 1]: segmentation fine-tuning), "none" ([0, 1],
            classification fine-tuning) or "mean_std" (`image_mean`, `image_std`, scalars or per channel).
        image_mean, image_std (*optional*): for normalization="mean_std" only.

    Raw-valued images (float, or signed integers) outside [0, 1] need `hounsfield_window` or
    normalization="min_max"; anything else is refused rather than guessed. `do_convert_rgb` is ignored:
    `num_channels` decides the channel count.
    """

    _backend_is_torch = True

    def __init__(self, **kwargs: Unpack[VisMaeImageProcessorKwargs]):
        super().__init__(**kwargs)
        self._set_attributes(**kwargs)
        self._check_settings()

    @property
    def backend(self) -> str:
        return "torch"

    def process_image(self, image, input_data_format=None, device=None, **kwargs) -> torch.Tensor:
        """One image -> (C, H, W) tensor with C in {1, 3}, in the input's dtype."""
        if isinstance(image, Image.Image):
            image, input_data_format = pil_image_to_array(image), ChannelDimension.LAST
        if isinstance(image, np.ndarray):
            if not image.dtype.isnative or not image.flags.writeable:
                # torch.from_numpy needs native byte order, and warns on read-only arrays (np.asarray of PIL images)
                image = image.astype(image.dtype.newbyteorder("="))
            image = torch.from_numpy(np.ascontiguousarray(image))
        if image.ndim == 2:
            image = image[None]
        elif _channels_last(image, input_data_format):
            image = image.permute(2, 0, 1)
        image = _drop_alpha(image)
        return image.to(device) if device is not None else image

    @staticmethod
    def _resize_float(image: torch.Tensor, height: int, width: int, mode: str) -> torch.Tensor:
        # torch's float32 antialiased kernels drift ~1e-5 from the exact result; float64 matches PIL within 1e-7.
        resized = F.interpolate(
            image[None].to(torch.float64), size=(height, width), mode=mode, align_corners=False, antialias=True
        )
        return resized[0].to(torch.float32)


class VisMaeImageProcessorPil(_VisMaeImageProcessingMixin, PilBackend):
    r"""
    VIS-MAE image processor on numpy arrays, resizing with PIL: the portable twin of `VisMaeImageProcessor`
    (same arguments, same numbers within 1e-5).
    """

    _backend_is_torch = False

    def __init__(self, **kwargs: Unpack[VisMaeImageProcessorKwargs]):
        super().__init__(**kwargs)
        self._check_settings()

    def process_image(self, image, input_data_format=None, **kwargs) -> np.ndarray:
        """One image -> (C, H, W) numpy array with C in {1, 3}, in the input's dtype."""
        if isinstance(image, Image.Image):
            image, input_data_format = pil_image_to_array(image), ChannelDimension.LAST
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().numpy()
        if not image.dtype.isnative:
            image = image.astype(image.dtype.newbyteorder("="))
        if image.ndim == 2:
            image = image[None]
        elif _channels_last(image, input_data_format):
            image = np.moveaxis(image, -1, 0)
        return _drop_alpha(image)

    @staticmethod
    def _resize_float(image: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
        # PIL resizes "F" (float32) images with double-precision weights, one channel at a time.
        resample = Image.Resampling.BILINEAR if mode == "bilinear" else Image.Resampling.BICUBIC
        channels = [
            np.asarray(Image.fromarray(np.ascontiguousarray(channel)).resize((width, height), resample))
            for channel in image
        ]
        return np.stack(channels).astype(np.float32, copy=False)


def _channels_last(image, input_data_format) -> bool:
    """Whether a 3-D image is (H, W, C). Grey/RGB counts (1, 3) are looked for first, so that a (4, 4, 3) RGB image
    is not read as a 4-channel (RGBA) image 4 pixels wide."""
    if input_data_format is None:
        try:
            input_data_format = infer_channel_dimension_format(image, num_channels=(1, 3))
        except ValueError:
            input_data_format = infer_channel_dimension_format(image, num_channels=(2, 4))
    return ChannelDimension(input_data_format) == ChannelDimension.LAST


def _drop_alpha(image):
    """(C, H, W) with C in 1..4 -> C in {1, 3}: alpha is dropped (as PIL's convert("RGB") does), LA -> L."""
    channels = image.shape[0]
    if channels == 4:
        return image[:3]
    if channels == 2:
        return image[:1]
    if channels not in (1, 3):
        raise ValueError(
            f"An image has {channels} channels (shape {tuple(image.shape)}); expected 1 (grey), 3 (RGB) or 4 (RGBA), "
            "channels first or last."
        )
    return image


__all__ = [
    "CT_WINDOW_PRESETS",
    "NORMALIZATIONS",
    "PRETRAINING_MEAN",
    "PRETRAINING_STD",
    "VisMaeImageProcessor",
    "VisMaeImageProcessorPil",
    "apply_window",
    "pil_image_to_array",
    "resolve_window",
    "scale_min_max",
]
