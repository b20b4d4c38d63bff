"""Masks are checked as fine-tuning reads them, so a hand-built dataset gets the converters' rule (`data.masks`)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from vis_mae_hf.app.finetuning.transforms import SegmentationTransform
from vis_mae_hf.data.masks import BinaryMaskNotice, MaskValueError
from vis_mae_hf.recipes import get_recipe


def batch_with_mask(mask: np.ndarray) -> dict[str, list]:
    image = Image.fromarray((np.arange(64 * 64) % 251).reshape(64, 64).astype(np.uint8))
    return {"image": [image, image], "mask": [Image.fromarray(np.zeros((64, 64), np.uint8)), Image.fromarray(mask)]}


def square_mask(value: int) -> np.ndarray:
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = value
    return mask


@pytest.fixture(scope="module")
def processor():
    return get_recipe("segmentation", demo=True).image_processor()


def test_a_0_255_mask_trains_on_its_foreground_with_a_notice(processor):
    transform = SegmentationTransform(processor, num_labels=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = transform(batch_with_mask(square_mask(255)))["labels"][1]
    assert set(labels.unique().tolist()) == {0, 1}  # not 255, the ignore value that would drop every foreground pixel
    assert labels.float().mean() == pytest.approx(0.25, abs=0.02)
    assert any(issubclass(warning.category, BinaryMaskNotice) for warning in caught)


def test_a_mask_value_outside_the_labels_is_an_error_naming_the_row(processor):
    transform = SegmentationTransform(processor, num_labels=2)
    with pytest.raises(MaskValueError, match=r"row 1 of the batch, `mask`: mask values \[127\] are not among the "
                                             r"declared labels 0..1"):
        transform(batch_with_mask(square_mask(127)))


def test_in_range_masks_pass_unchanged(processor):
    checked = SegmentationTransform(processor, num_labels=3)(batch_with_mask(square_mask(2)))["labels"][1]
    unchecked = SegmentationTransform(processor)(batch_with_mask(square_mask(2)))["labels"][1]
    assert checked.equal(unchecked) and set(checked.unique().tolist()) == {0, 2}
