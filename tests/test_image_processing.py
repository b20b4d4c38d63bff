"""VIS-MAE image processors: windowing, every normalisation, input kinds, masks, both backends, save/load."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_utils import PILImageResampling
from transformers.modeling_outputs import SemanticSegmenterOutput

from vis_mae_hf.image_processing_vis_mae import (
    CT_WINDOW_PRESETS,
    PRETRAINING_MEAN,
    PRETRAINING_STD,
    VisMaeImageProcessor,
    VisMaeImageProcessorPil,
    apply_window,
    resolve_window,
    scale_min_max,
)
from vis_mae_hf.recipes import get_recipe

BACKENDS = [VisMaeImageProcessor, VisMaeImageProcessorPil]


def pixels_of(processor, images, **kwargs) -> np.ndarray:
    return processor(images, return_tensors="pt", **kwargs)["pixel_values"].numpy()


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth float image in [0, 1] with some noise: anatomy-like, not a worst-case checkerboard."""
    rows, columns = np.mgrid[0:height, 0:width]
    base = 0.5 + 0.3 * np.sin(rows / 7.0) * np.cos(columns / 11.0)
    noise = np.random.default_rng(seed).normal(0, 0.05, (height, width))
    return np.clip(base + noise, 0, 1)


# ------------------------------------------------------------------------------------------------ windows


def test_presets_are_the_documented_windows():
    assert CT_WINDOW_PRESETS["abdomen"] == (400, 40) and CT_WINDOW_PRESETS["lung"] == (1500, -600)
    assert CT_WINDOW_PRESETS["liver"] == (150, 30) and CT_WINDOW_PRESETS["mediastinum"] == (350, 50)
    assert CT_WINDOW_PRESETS["brain"] == (80, 40) and CT_WINDOW_PRESETS["bone"] == (1800, 400)
    # The BTCV recipes are HU clips: their windows must map the clip bounds onto 0 and 1.
    for name, (low, high) in {"btcv_transunet": (-125, 275), "btcv_unetr": (-175, 250)}.items():
        windowed = apply_window(np.array([low, high, low - 1, high + 1]), *resolve_window(name))
        np.testing.assert_allclose(windowed, [0, 1, 0, 1])


def test_resolve_window():
    assert resolve_window(None) is None
    assert resolve_window(" Lung ") == (1500.0, -600.0)
    assert resolve_window((400, 40)) == (400.0, 40.0) and resolve_window(np.array([10, 5])) == (10.0, 5.0)
    with pytest.raises(ValueError, match=r"Unknown CT window 'liverish': expected one of abdomen, bone, brain"):
        resolve_window("liverish")
    with pytest.raises(ValueError, match=r"width must be > 0, got width=0"):
        resolve_window((0, 40))
    with pytest.raises(ValueError, match=r"width must be > 0, got width=-5"):
        apply_window(np.zeros(3), -5, 40)
    with pytest.raises(ValueError, match=r"\(width, level\) pair"):
        resolve_window((400, 40, 3))
    with pytest.raises(ValueError, match=r"two numbers"):
        resolve_window(("wide", 40))


def test_apply_window_formula_on_numpy_and_torch():
    hounsfield = np.array([-1000.0, -160.0, 0.0, 40.0, 240.0, 3000.0])
    expected = np.array([0.0, 0.0, 0.4, 0.5, 1.0, 1.0])
    windowed = apply_window(hounsfield, 400, 40)
    assert windowed.dtype == np.float32
    np.testing.assert_allclose(windowed, expected, atol=1e-7)
    as_tensor = apply_window(torch.tensor(hounsfield), 400, 40)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float32
    np.testing.assert_allclose(as_tensor.numpy(), expected, atol=1e-7)
    assert apply_window(np.array([-1024], np.int16), 100, 40)[0] == 0.0


def test_scale_min_max():
    np.testing.assert_allclose(scale_min_max(np.array([2.0, 4.0, 6.0])), [0.0, 0.5, 1.0])
    constant = scale_min_max(np.full((3, 3), 7.0))
    assert constant.dtype == np.float32 and np.array_equal(constant, np.zeros((3, 3)))
    np.testing.assert_allclose(scale_min_max(torch.tensor([1.0, 3.0])).numpy(), [0.0, 1.0])
    with pytest.raises(ValueError, match="NaN or infinite"):
        scale_min_max(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="empty"):
        scale_min_max(np.zeros((0, 4)))


# ------------------------------------------------------------------------------------------------ recipes, settings


def test_recipes():
    segmentation = get_recipe("segmentation").image_processor()
    assert segmentation.normalization == "min_max" and (segmentation.size.height, segmentation.size.width) == (320, 320)
    pil = get_recipe("segmentation").image_processor(256, pil=True)
    assert isinstance(pil, VisMaeImageProcessorPil) and pil.size.height == 256
    classification = get_recipe("classification").image_processor()
    assert classification.normalization == "none" and classification.size.height == 224
    pretraining = get_recipe("pretraining").image_processor()
    assert pretraining.normalization == "pretraining" and pretraining.num_channels == 3
    assert VisMaeImageProcessor().normalization == "pretraining"  # defaults = the pretrained checkpoints
    ct = get_recipe("segmentation").image_processor(hounsfield_window="btcv_unetr")
    assert ct.hounsfield_window == "btcv_unetr"
    kwargs = get_recipe("classification").processor_kwargs(128)
    kwargs["size"]["height"] = 1  # a fresh dict each call
    assert get_recipe("classification").processor_kwargs()["size"] == {"height": 224, "width": 224}
    assert get_recipe("multilabel") is get_recipe("classification")
    assert get_recipe("segmentation", demo=True).image_size == 96
    with pytest.raises(ValueError, match=r"Unknown VIS-MAE recipe 'detection'"):
        get_recipe("detection")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"normalization": "zscore"}, r"normalization must be one of pretraining, min_max, none, mean_std"),
        ({"normalization": "mean_std"}, r"needs image_mean"),
        (
            {"normalization": "mean_std", "image_mean": [0.5, 0.5], "image_std": 0.2},
            r"image_mean has 2 values but num_channels is 3",
        ),
        ({"num_channels": 2}, r"num_channels must be 1 or 3"),
        ({"resample": PILImageResampling.LANCZOS}, r"resample must be NEAREST \(0\), BILINEAR \(2\) or BICUBIC \(3\)"),
        ({"hounsfield_window": "header"}, r"needs a file header.*load_medical_image"),
        ({"hounsfield_window": "spine"}, r"Unknown CT window 'spine'"),
        ({"hounsfield_window": (-1, 40)}, r"width must be > 0"),
        ({"do_center_crop": True}, r"center cropping and padding are not supported"),
    ],
)
def test_bad_settings_fail_at_construction(backend, kwargs, message):
    with pytest.raises(ValueError, match=message):
        backend(**kwargs)


# ------------------------------------------------------------------------------------------------ normalisation


@pytest.mark.parametrize("backend", BACKENDS)
def test_pretraining_normalisation_uses_one_scalar_on_every_channel(backend):
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 0, 128, 255
    pixel_values = pixels_of(backend(size={"height": 4, "width": 4}), image)
    assert pixel_values.shape == (1, 3, 4, 4) and pixel_values.dtype == np.float32
    for channel, value in enumerate((0, 128, 255)):
        expected = (value / 255 - PRETRAINING_MEAN) / PRETRAINING_STD
        np.testing.assert_allclose(pixel_values[0, channel], expected, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_min_max_normalisation_scales_each_image(backend):
    dim = np.full((6, 6), 0.2) + np.eye(6) * 0.1  # values 0.2..0.3
    bright = np.full((6, 6), 200, np.uint8)
    bright[0, 0] = 100
    processor = backend(normalization="min_max", size={"height": 6, "width": 6})
    pixel_values = pixels_of(processor, [dim, bright])
    for image in pixel_values:
        assert image.min() == pytest.approx(0.0) and image.max() == pytest.approx(1.0)
    np.testing.assert_allclose(pixel_values[0, 0], (dim - 0.2) / 0.1, atol=1e-5)
    # Min-max accepts any finite range, e.g. raw MR intensities.
    raw = pixels_of(processor, np.arange(36, dtype=np.float32).reshape(6, 6) * 50 - 300)
    np.testing.assert_allclose(raw[0, 0], np.arange(36).reshape(6, 6) / 35, atol=1e-6)
    constant = pixels_of(processor, np.full((6, 6), 0.7))
    assert np.array_equal(constant, np.zeros_like(constant))


@pytest.mark.parametrize("backend", BACKENDS)
def test_none_normalisation_gives_plain_unit_pixels(backend):
    image = (np.arange(64).reshape(8, 8) * 4).astype(np.uint8)
    pixel_values = pixels_of(backend(normalization="none", size={"height": 8, "width": 8}), image)
    np.testing.assert_allclose(pixel_values[0], np.stack([image / 255.0] * 3), atol=1e-7)
    unnormalised = pixels_of(backend(do_normalize=False, size={"height": 8, "width": 8}), image)
    np.testing.assert_allclose(unnormalised, pixel_values)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mean_std_normalisation_per_channel(backend):
    image = np.full((5, 5, 3), 0.5, np.float32)
    processor = backend(
        normalization="mean_std", image_mean=[0.1, 0.2, 0.3], image_std=[0.5, 0.25, 0.1], size={"height": 5, "width": 5}
    )
    pixel_values = pixels_of(processor, image)
    for channel, (mean, std) in enumerate(zip([0.1, 0.2, 0.3], [0.5, 0.25, 0.1])):
        np.testing.assert_allclose(pixel_values[0, channel], (0.5 - mean) / std, atol=1e-6)


# ------------------------------------------------------------------------------------------------ input kinds


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_layout_of_the_same_grey_image_gives_the_same_pixels(backend):
    grey = (smooth_image(30, 20) * 255).astype(np.uint8)
    processor = backend(size={"height": 16, "width": 24})
    reference = pixels_of(processor, grey)
    assert reference.shape == (1, 3, 16, 24)
    np.testing.assert_array_equal(reference[0, 0], reference[0, 2])  # grey repeated to 3 channels
    for variant in (
        grey[None],  # (1, H, W)
        grey[..., None],  # (H, W, 1)
        np.repeat(grey[..., None], 3, axis=-1),  # (H, W, 3)
        np.repeat(grey[None], 3, axis=0),  # (3, H, W)
        torch.from_numpy(grey),
        Image.fromarray(grey),  # "L"
        Image.fromarray(grey).convert("RGB"),
        [grey],
        [[grey]],
    ):
        np.testing.assert_allclose(pixels_of(processor, variant), reference, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sixteen_bit_and_float_inputs(backend):
    unit = smooth_image(12, 12)
    processor = backend(normalization="none", size={"height": 12, "width": 12}, num_channels=1)
    sixteen = np.round(unit * 65535).astype(np.uint16)
    for image in (sixteen, Image.fromarray(sixteen)):  # PIL "I;16"
        np.testing.assert_allclose(pixels_of(processor, image)[0, 0], sixteen / 65535.0, atol=1e-6)
    floats = unit.astype(np.float32)
    np.testing.assert_allclose(pixels_of(processor, floats)[0, 0], floats, atol=1e-7)  # [0, 1]: not rescaled
    np.testing.assert_allclose(pixels_of(processor, Image.fromarray(floats))[0, 0], floats, atol=1e-7)  # PIL "F"
    message = r"Image 0 \(float32\) has values in \[\d.*\], outside \[0, 1\].*hounsfield_window"
    with pytest.raises(ValueError, match=message):
        processor(floats * 255)
    with pytest.raises(ValueError, match=r"Image 0 \(int16\) has values in \[-1000, 400\], outside \[0, 1\]"):
        processor(np.array([[-1000, 400]], np.int16))


@pytest.mark.parametrize("backend", BACKENDS)
def test_hounsfield_window_applies_to_raw_values_only(backend):
    hounsfield = np.linspace(-1000, 1000, 64, dtype=np.float32).reshape(8, 8)
    settings = {"normalization": "none", "size": {"height": 8, "width": 8}, "num_channels": 1}
    processor = backend(hounsfield_window="abdomen", **settings)
    abdomen = np.clip((hounsfield + 160) / 400, 0, 1)
    np.testing.assert_allclose(pixels_of(processor, hounsfield)[0, 0], abdomen, atol=1e-6)
    as_int16 = hounsfield.astype(np.int16)
    int16_abdomen = np.clip((as_int16 + 160) / 400, 0, 1)
    np.testing.assert_allclose(pixels_of(processor, as_int16)[0, 0], int16_abdomen, atol=1e-6)
    as_pil_int32 = Image.fromarray(as_int16.astype(np.int32))  # PIL mode "I"
    np.testing.assert_allclose(pixels_of(processor, as_pil_int32)[0, 0], int16_abdomen, atol=1e-6)
    # Already-windowed images (8-bit PNGs, load_medical_image output in [0, 1]) pass through untouched.
    display = (np.arange(64).reshape(8, 8) * 3).astype(np.uint8)
    np.testing.assert_allclose(pixels_of(processor, display)[0, 0], display / 255.0, atol=1e-7)
    unit = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    np.testing.assert_allclose(pixels_of(processor, unit)[0, 0], unit, atol=1e-7)
    explicit = backend(hounsfield_window=[1500, -600], **settings)
    lung = np.clip((hounsfield + 1350) / 1500, 0, 1)
    np.testing.assert_allclose(pixels_of(explicit, hounsfield)[0, 0], lung, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rgb_to_grey_by_luminance(backend):
    rgb = np.zeros((5, 6, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    processor = backend(num_channels=1, normalization="none", size={"height": 5, "width": 6})
    grey = pixels_of(processor, rgb)
    assert grey.shape == (1, 1, 5, 6)
    np.testing.assert_allclose(grey, (0.299 * 200 + 0.587 * 100 + 0.114 * 50) / 255, atol=1e-6)
    rgba = np.concatenate([rgb, np.full((5, 6, 1), 7, np.uint8)], axis=-1)
    np.testing.assert_allclose(pixels_of(processor, rgba), grey)  # alpha dropped
    np.testing.assert_allclose(pixels_of(processor, Image.fromarray(rgba)), grey)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_images_are_refused(backend):
    processor = backend()
    with pytest.raises(ValueError, match=r"Image 0 has NaN or infinite values"):
        processor(np.array([[0.1, np.nan], [0.2, 0.3]], np.float32))
    with pytest.raises(ValueError, match=r"Image 0 is empty"):
        processor(np.zeros((0, 5), np.float32))
    with pytest.raises(ValueError, match=r"array of shape \(1, 2, 3, 8, 8\)"):
        processor(np.zeros((1, 2, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"has 5 channels"):
        processor(np.zeros((5, 8, 8), np.uint8), input_data_format="channels_first")
    with pytest.raises(TypeError, match=r"int"):
        processor([3])


# ------------------------------------------------------------------------------------------------ resizing, backends


@pytest.mark.parametrize(
    "resample", [PILImageResampling.BILINEAR, PILImageResampling.BICUBIC, PILImageResampling.NEAREST]
)
@pytest.mark.parametrize("normalization", ["pretraining", "min_max", "none"])
def test_torch_and_pil_backends_agree(resample, normalization):
    settings = {"size": {"height": 224, "width": 224}, "resample": resample, "normalization": normalization}
    torch_processor, pil_processor = VisMaeImageProcessor(**settings), VisMaeImageProcessorPil(**settings)
    rng = np.random.default_rng(0)
    images = [
        (smooth_image(300, 484) * 255).astype(np.uint8),  # shrink, grey
        (rng.random((100, 80, 3)) * 255).astype(np.uint8),  # enlarge, RGB noise: the worst case for resampling
        np.round(smooth_image(512, 512, seed=1) * 4000).astype(np.uint16),
        Image.fromarray((smooth_image(37, 53, seed=2) * 255).astype(np.uint8)).convert("RGB"),
        smooth_image(224, 224, seed=3).astype(np.float32),
    ]
    for image in images:
        from_torch = pixels_of(torch_processor, image)
        from_pil = pixels_of(pil_processor, image)
        assert from_torch.shape == from_pil.shape == (1, 3, 224, 224)
        assert np.abs(from_torch - from_pil).max() < 1e-5


def test_backends_agree_on_hounsfield_input_with_one_channel():
    hounsfield = (smooth_image(90, 70) * 2000 - 1000).astype(np.float32)
    settings = {"hounsfield_window": "lung", "num_channels": 1, "size": 64, "resample": PILImageResampling.BICUBIC}
    from_torch = pixels_of(VisMaeImageProcessor(**settings), hounsfield)
    from_pil = pixels_of(VisMaeImageProcessorPil(**settings), hounsfield)
    assert from_torch.shape == (1, 1, 64, 64) and np.abs(from_torch - from_pil).max() < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_matches_antialiased_bilinear(backend):
    image = smooth_image(96, 64).astype(np.float32)
    resized = pixels_of(backend(normalization="none", size={"height": 48, "width": 40}, num_channels=1), image)
    as_batch = torch.from_numpy(image)[None, None].double()
    expected = F.interpolate(as_batch, size=(48, 40), mode="bilinear", antialias=True)
    np.testing.assert_allclose(resized[0, 0], expected[0, 0].numpy(), atol=1e-6)


# ------------------------------------------------------------------------------------------------ masks


@pytest.mark.parametrize("backend", BACKENDS)
def test_masks_become_labels_by_nearest_neighbour(backend):
    mask = np.array([[0, 3], [7, 255]], np.uint8)
    image = np.zeros((2, 2), np.uint8)
    out = backend(size={"height": 4, "width": 6})(image, segmentation_maps=mask, return_tensors="pt")
    labels = out["labels"]
    assert labels.dtype == torch.int64 and labels.shape == (1, 4, 6)
    np.testing.assert_array_equal(labels[0].numpy(), np.repeat(np.repeat(mask, 2, axis=0), 3, axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_mask_values_are_untouched_when_shrinking(backend):
    rng = np.random.default_rng(0)
    palette_mask = Image.frombytes("P", (80, 100), rng.choice([0, 2, 9], size=(100, 80)).astype(np.uint8).tobytes())
    masks = [rng.choice([0, 1, 5, 13], size=(300, 484)), palette_mask]
    images = [np.zeros((300, 484), np.uint8), np.zeros((100, 80, 3), np.uint8)]
    labels = backend(size={"height": 224, "width": 224})(images, segmentation_maps=masks, return_tensors="pt")["labels"]
    assert labels.shape == (2, 224, 224)
    assert set(labels[0].unique().tolist()) <= {0, 1, 5, 13} and set(labels[1].unique().tolist()) <= {0, 2, 9}
    assert len(labels[0].unique()) == 4


def test_mask_labels_agree_between_backends():
    rng = np.random.default_rng(1)
    mask = rng.integers(0, 14, size=(512, 512))  # 512 -> 224 hits exact nearest-neighbour ties
    image = np.zeros((512, 512), np.uint8)
    from_torch = VisMaeImageProcessor()(image, segmentation_maps=mask, return_tensors="pt")["labels"]
    from_pil = VisMaeImageProcessorPil()(image, segmentation_maps=mask, return_tensors="pt")["labels"]
    assert torch.equal(from_torch, from_pil)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_masks_are_refused(backend):
    processor = backend()
    image = np.zeros((8, 10), np.uint8)
    with pytest.raises(ValueError, match=r"Segmentation map 0 has size \(8, 8\) but its image has size \(8, 10\)"):
        processor(image, segmentation_maps=np.zeros((8, 8), np.int64))
    with pytest.raises(ValueError, match=r"Got 2 images but 1 segmentation maps"):
        processor([image, image], segmentation_maps=[np.zeros((8, 10), np.int64)])
    with pytest.raises(ValueError, match=r"Segmentation map 0 is a RGB image"):
        processor(image, segmentation_maps=Image.fromarray(np.zeros((8, 10, 3), np.uint8)))
    with pytest.raises(ValueError, match=r"non-integer values"):
        processor(image, segmentation_maps=np.full((8, 10), 0.5))


# ------------------------------------------------------------------------------------------------ save / load


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("recipe", ["pretraining", "segmentation", "classification"])
def test_save_load_round_trip(tmp_path, backend, recipe):
    processor = get_recipe(recipe).image_processor(96, pil=backend is VisMaeImageProcessorPil, hounsfield_window=(350, 50))
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["normalization"] == processor.normalization
    assert saved["hounsfield_window"] == [350.0, 50.0] and saved["size"] == {"height": 96, "width": 96}
    assert saved["image_processor_type"] == "VisMaeImageProcessor"
    for loader in BACKENDS:
        reloaded = loader.from_pretrained(tmp_path)
        assert reloaded.normalization == processor.normalization and reloaded.hounsfield_window == (350.0, 50.0)
        hounsfield = (smooth_image(50, 40) * 2000 - 1000).astype(np.float32)
        np.testing.assert_allclose(pixels_of(reloaded, hounsfield), pixels_of(processor, hounsfield), atol=1e-5)


def test_mean_std_round_trip(tmp_path):
    processor = VisMaeImageProcessor(normalization="mean_std", image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.2, 0.2])
    processor.save_pretrained(tmp_path)
    reloaded = VisMaeImageProcessorPil.from_pretrained(tmp_path)
    assert list(reloaded.image_mean) == [0.5, 0.4, 0.3] and reloaded.normalization == "mean_std"


def test_model_input_names_and_numpy_output():
    processor = VisMaeImageProcessor()
    assert processor.model_input_names == ["pixel_values"]
    output = processor([np.zeros((8, 8), np.uint8)] * 2, return_tensors="np")
    assert isinstance(output["pixel_values"], np.ndarray) and output["pixel_values"].shape == (2, 3, 224, 224)


# ------------------------------------------------------------------------------------------------ post-processing


def test_post_process_semantic_segmentation_resizes_logits_then_takes_argmax():
    logits = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    outputs = SemanticSegmenterOutput(logits=logits)
    processor = VisMaeImageProcessorPil()
    maps = processor.post_process_semantic_segmentation(outputs, target_sizes=[(16, 20), (5, 7)])
    assert [tuple(m.shape) for m in maps] == [(16, 20), (5, 7)] and all(m.dtype == torch.int64 for m in maps)
    expected = F.interpolate(logits[1:2], size=(5, 7), mode="bilinear", align_corners=False)[0].argmax(0)
    assert torch.equal(maps[1], expected)
    unresized = processor.post_process_semantic_segmentation(outputs)
    assert torch.equal(unresized[0], logits[0].argmax(0))
    probabilities = VisMaeImageProcessor().post_process_semantic_segmentation_probabilities(
        outputs, target_sizes=torch.tensor([[16, 20], [5, 7]])
    )
    assert probabilities[0].shape == (3, 16, 20)
    torch.testing.assert_close(probabilities[0].sum(0), torch.ones(16, 20))
    assert torch.equal(probabilities[1].argmax(0), maps[1])


def test_post_process_errors_and_pipeline_compatibility():
    processor = VisMaeImageProcessor()
    with pytest.raises(ValueError, match=r"Got 1 target sizes for a batch of 2"):
        processor.post_process_semantic_segmentation(torch.zeros(2, 3, 4, 4), target_sizes=[(4, 4)])
    with pytest.raises(ValueError, match=r"1 class channel"):
        processor.post_process_semantic_segmentation(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"Expected segmentation logits \(batch, classes, height, width\)"):
        processor.post_process_semantic_segmentation(torch.zeros(3, 4, 4))
    # The image-segmentation pipeline tries panoptic/instance post-processing first when they exist.
    for backend in BACKENDS:
        assert not hasattr(backend, "post_process_panoptic_segmentation")
        assert not hasattr(backend, "post_process_instance_segmentation")


# ------------------------------------------------------------------------------------------- Auto classes, pipeline


def test_auto_image_processor_picks_the_backend(tmp_path):
    from transformers import AutoImageProcessor

    import vis_mae_hf  # noqa: F401  (registers the VIS-MAE classes)

    get_recipe("segmentation").image_processor().save_pretrained(tmp_path)
    # torchvision is not a dependency, so the default backend resolves to PIL; asking for it gives the torch class.
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path, backend="pil"), VisMaeImageProcessorPil)
    loaded = AutoImageProcessor.from_pretrained(tmp_path, backend="torchvision")
    assert type(loaded) is VisMaeImageProcessor and loaded.normalization == "min_max"


@pytest.mark.parametrize("backend", BACKENDS)
def test_image_segmentation_pipeline_returns_masks_at_the_original_size(tiny_config, backend):
    from transformers import pipeline

    from vis_mae_hf import VisMaeForSemanticSegmentation

    labels = {0: "background", 1: "liver", 2: "kidney"}
    config = tiny_config(num_labels=3, id2label=labels, label2id={name: i for i, name in labels.items()})
    torch.manual_seed(0)
    model = VisMaeForSemanticSegmentation(config).eval()
    processor = get_recipe("segmentation").image_processor(64, pil=backend is VisMaeImageProcessorPil)
    segmenter = pipeline("image-segmentation", model=model, image_processor=processor)
    image = Image.fromarray((smooth_image(50, 70) * 255).astype(np.uint8))
    results = segmenter(image)
    assert results and {result["label"] for result in results} <= set(labels.values())
    assert all(result["mask"].size == (70, 50) for result in results)
    covered = sum(np.asarray(result["mask"]) > 0 for result in results)
    assert (covered == 1).all()  # every pixel gets exactly one class
