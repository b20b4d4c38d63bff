"""On-the-fly example transforms for `Dataset.with_transform`: decode, run the image processor, augment.

A transform receives a batch of rows (column -> list) and returns only the model inputs (`pixel_values`,
`labels`), as tensors per example; `transformers.default_data_collator` stacks them. Because the returned columns
replace the stored ones, the Trainer must run with `remove_unused_columns=False` (it would otherwise drop `image`
and `mask` before the transform sees them).
"""

from __future__ import annotations

import numpy as np
import torch

from ...data.masks import checked_mask
from ...vocabulary import SEGMENTATION
from .augmentation import ClassificationAugmentation, SegmentationAugmentation


class SegmentationTransform:
    """Rows with `image` and `mask` -> `pixel_values` (C, H, W) float and `labels` (H, W) int64.

    Args:
        image_processor: a VIS-MAE image processor (resizes image and mask alike, the mask by nearest neighbour).
        augmentation: applied after processing, to image and mask together; None for evaluation.
        generator: seeds the augmentation (None: torch's global generator, which the Trainer seeds per worker).
        num_labels: the number of classes; masks are checked against it as they are read (`data.masks`): values
            outside 0..num_labels-1 are an error naming the row, a 0/255 mask of two labels is read as 0/1 with a
            notice. None reads masks unchecked.
    """

    def __init__(
        self,
        image_processor,
        augmentation: SegmentationAugmentation | None = None,
        image_column: str = "image",
        mask_column: str = "mask",
        generator: torch.Generator | None = None,
        num_labels: int | None = None,
    ):
        self.image_processor = image_processor
        self.augmentation = augmentation
        self.image_column = image_column
        self.mask_column = mask_column
        self.generator = generator
        self.num_labels = num_labels

    def __call__(self, batch: dict[str, list]) -> dict[str, list[torch.Tensor]]:
        masks = [np.asarray(mask) for mask in batch[self.mask_column]]
        for index, mask in enumerate(masks):
            if mask.ndim != 2:
                raise ValueError(
                    f"Row {index} of the batch: `{self.mask_column}` has shape {mask.shape}; a segmentation mask is "
                    "one class index per pixel (H, W)."
                )
        if self.num_labels is not None:
            masks = [
                checked_mask(mask, self.num_labels, name=f"row {index} of the batch, `{self.mask_column}`")
                for index, mask in enumerate(masks)
            ]
        processed = self.image_processor(batch[self.image_column], segmentation_maps=masks, return_tensors="pt")
        pixel_values, labels = list(processed["pixel_values"]), list(processed["labels"])
        if self.augmentation is not None:
            pairs = [
                self.augmentation(image, mask, generator=self.generator) for image, mask in zip(pixel_values, labels)
            ]
            pixel_values, labels = [image for image, _ in pairs], [mask for _, mask in pairs]
        return {"pixel_values": pixel_values, "labels": [mask.long() for mask in labels]}


class ClassificationTransform:
    """Rows with `image` and `label` (class index) or `labels` (list of class indices) -> `pixel_values`, `labels`.

    Single-label targets become int64 scalars; multi-label targets become multi-hot float vectors of `num_labels`
    (what `BCEWithLogitsLoss` and the metrics expect).
    """

    def __init__(
        self,
        image_processor,
        num_labels: int,
        augmentation: ClassificationAugmentation | None = None,
        image_column: str = "image",
        target_column: str = "label",
        generator: torch.Generator | None = None,
    ):
        if target_column not in ("label", "labels"):
            raise ValueError(
                f"target_column must be 'label' (one class) or 'labels' (multi-label), got {target_column!r}."
            )
        self.image_processor = image_processor
        self.num_labels = num_labels
        self.augmentation = augmentation
        self.image_column = image_column
        self.target_column = target_column
        self.generator = generator

    def _target(self, value, index: int) -> torch.Tensor:
        if self.target_column == "label":
            if not 0 <= int(value) < self.num_labels:
                raise ValueError(
                    f"Row {index} of the batch: label {value} is not a class index in 0..{self.num_labels - 1}."
                )
            return torch.tensor(int(value), dtype=torch.long)
        multi_hot = torch.zeros(self.num_labels, dtype=torch.float32)
        for class_index in value:
            if not 0 <= int(class_index) < self.num_labels:
                raise ValueError(
                    f"Row {index} of the batch: label {class_index} is not a class index in 0..{self.num_labels - 1}."
                )
            multi_hot[int(class_index)] = 1.0
        return multi_hot

    def __call__(self, batch: dict[str, list]) -> dict[str, list[torch.Tensor]]:
        pixel_values = list(self.image_processor(batch[self.image_column], return_tensors="pt")["pixel_values"])
        if self.augmentation is not None:
            pixel_values = [self.augmentation(image, generator=self.generator) for image in pixel_values]
        labels = [self._target(value, index) for index, value in enumerate(batch[self.target_column])]
        return {"pixel_values": pixel_values, "labels": labels}


def attach_transforms(data, image_processor, augment: bool = True) -> tuple[object, object]:
    """(train, validation) datasets of a `FinetuningData` with their transforms attached (augmenting training only)."""
    if data.task == SEGMENTATION:
        augmentation = SegmentationAugmentation() if augment else None
        train = SegmentationTransform(image_processor, augmentation, num_labels=data.num_labels)
        validation = SegmentationTransform(image_processor, None, num_labels=data.num_labels)
    else:
        common = dict(num_labels=data.num_labels, target_column=data.target_column)
        augmentation = ClassificationAugmentation() if augment else None
        train = ClassificationTransform(image_processor, augmentation=augmentation, **common)
        validation = ClassificationTransform(image_processor, **common)
    return data.train.with_transform(train), data.validation.with_transform(validation)


__all__ = ["ClassificationTransform", "SegmentationTransform", "attach_transforms"]
