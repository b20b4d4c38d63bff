"""Training augmentation: image and mask move together, masks are never blended, the affine maths is right."""

import torch
import torch.nn.functional as F

from vis_mae_hf.app.finetuning.augmentation import (
    ClassificationAugmentation,
    SegmentationAugmentation,
    affine_matrix,
    warp,
)


def blocky_pair(size=32, blocks=4, seed=0):
    """A mask of four classes in large blocks, and an image whose every channel *is* the mask (as floats)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, 4, (1, 1, blocks, blocks), generator=generator).float()
    mask = F.interpolate(coarse, size=(size, size), mode="nearest")[0, 0].long()
    # A background frame, like a scan's surroundings: sampling just past the image edge (zero padding) then agrees
    # between the bilinear image and the nearest-neighbour mask.
    mask[:4], mask[-4:], mask[:, :4], mask[:, -4:] = 0, 0, 0, 0
    image = mask.float()[None].repeat(3, 1, 1)
    return image, mask


def test_rotation_by_90_degrees_is_an_exact_counter_clockwise_quarter_turn():
    image = torch.arange(36.0).view(1, 6, 6)
    warped, _ = warp(image, affine_matrix(90.0))
    torch.testing.assert_close(warped, torch.rot90(image, 1, dims=(-2, -1)), atol=1e-4, rtol=0)


def test_horizontal_flip_mirrors_columns():
    image = torch.rand(2, 5, 7)
    warped, _ = warp(image, affine_matrix(0.0, horizontal_flip=True))
    torch.testing.assert_close(warped, torch.flip(image, dims=(-1,)), atol=1e-5, rtol=0)


def test_zoom_with_translation_shows_the_chosen_quadrant_like_a_crop_and_resize():
    image = torch.rand(1, 8, 8)
    # Output centre = input point (0.5, 0.5): the bottom-right quadrant, magnified 2x.
    warped, _ = warp(image, affine_matrix(0.0, 2.0, (-0.5, -0.5)))
    crop = F.interpolate(image[None, :, 4:, 4:], size=(8, 8), mode="bilinear", align_corners=False)[0]
    # The border row/column interpolate with the neighbouring pixel outside the crop; the interior is exact.
    torch.testing.assert_close(warped[:, 1:-1, 1:-1], crop[:, 1:-1, 1:-1], atol=1e-5, rtol=0)


def test_segmentation_rot90_and_flip_path_is_an_exact_permutation_of_image_and_mask_together():
    image, mask = blocky_pair()
    augmentation = SegmentationAugmentation(rot90_flip_probability=1.0, affine_probability=0.0)
    for seed in range(8):
        new_image, new_mask = augmentation(image, mask, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(new_image[0], new_mask.float())
        assert sorted(new_mask.unique().tolist()) == sorted(mask.unique().tolist())


def test_segmentation_rotation_and_affine_move_image_and_mask_identically_without_blending_classes():
    image, mask = blocky_pair(size=48, blocks=3)
    augmentation = SegmentationAugmentation(
        rot90_flip_probability=0.0, rotation_probability=1.0, affine_probability=1.0
    )
    changed = 0
    for seed in range(6):
        new_image, new_mask = augmentation(image, mask, generator=torch.Generator().manual_seed(seed))
        assert new_mask.dtype == mask.dtype
        assert set(new_mask.unique().tolist()) <= {0, 1, 2, 3}  # nearest neighbour: no in-between labels
        # Away from class boundaries (where bilinear image sampling blends two classes) the image must show exactly
        # the mask's class: both were moved by the same transform.
        labels = new_mask.float()[None, None]
        uniform = F.max_pool2d(labels, 5, stride=1, padding=2) == -F.max_pool2d(-labels, 5, stride=1, padding=2)
        uniform = uniform[0, 0]
        # The window cannot see across the output's own edge: leave its outer 2 pixels out.
        uniform[:2], uniform[-2:], uniform[:, :2], uniform[:, -2:] = False, False, False, False
        assert uniform.float().mean() > 0.4, seed  # enough interior to make the check meaningful
        torch.testing.assert_close(new_image[0][uniform], new_mask.float()[uniform], atol=1e-4, rtol=0)
        changed += int(not torch.equal(new_mask, mask))
    assert changed == 6


def test_segmentation_augmentation_refuses_a_mask_of_another_size():
    image, mask = blocky_pair()
    try:
        SegmentationAugmentation()(image, mask[:-1])
    except ValueError as error:
        assert "(31, 32)" in str(error)
    else:
        raise AssertionError("a mismatched mask was accepted")


def test_classification_augmentation_is_seeded_varied_and_keeps_the_shape():
    image = torch.rand(3, 32, 32)
    augmentation = ClassificationAugmentation()
    first = augmentation(image, generator=torch.Generator().manual_seed(0))
    again = augmentation(image, generator=torch.Generator().manual_seed(0))
    other = augmentation(image, generator=torch.Generator().manual_seed(1))
    assert first.shape == image.shape
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert not torch.allclose(first, image)


def test_classification_crop_stays_inside_the_image():
    # With no rotation, shift or zoom jitter, a crop keeping 81 % of the area never shows outside pixels (0 fill);
    # only the outermost half pixel may be interpolated with the padding.
    image = torch.ones(1, 40, 40)
    augmentation = ClassificationAugmentation(
        flip_probability=0.0, max_rotation_degrees=0.0, max_translate=0.0, scale_range=(1.0, 1.0),
        crop_scale_range=(0.81, 0.81), fill_value=0.0,
    )
    for seed in range(10):
        cropped = augmentation(image, generator=torch.Generator().manual_seed(seed))
        assert cropped.min() > 0.9, seed
        assert cropped[:, 1:-1, 1:-1].min() > 0.999, seed
