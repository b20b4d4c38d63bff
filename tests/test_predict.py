"""Whole-image and whole-study inference (`vis_mae_hf.inference`) and the `vis-mae predict` command line.

What matters most here is geometry: a volume mask must land on the input's own voxels (shape, affine and voxel
order, for NIfTI files in any orientation and for shuffled DICOM series). That is checked with a stand-in model
whose answer is known (class 1 where the input is bright), so a transposed or flipped mask cannot pass.
"""

import json
import random
import re
import shutil
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from conftest import save_tiny_model, tiny_config_kwargs
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from transformers.modeling_outputs import SemanticSegmenterOutput

from vis_mae_hf import (
    VisMaeConfig,
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeImageProcessor,
    load_medical_image,
    load_medical_volume,
)
from vis_mae_hf.app.cli import main as vis_mae_main
from vis_mae_hf.inference import TASK_SEGMENTATION, VisMaePredictor
from vis_mae_hf.inference.inputs import (
    load_image_for_model,
    model_window,
    output_stem,
    volume_in_unit_range,
)
from vis_mae_hf.inference.outputs import (
    predicted_label,
    write_volume_mask,
    write_volume_overlay,
)
from vis_mae_hf.inference.overlay import (
    LEGEND_MIN_FONT_SIZE,
    MAX_TILES,
    OVERLAY_ALPHA,
    display_scale,
    label_colour,
    mosaic_slices,
    overlay_image,
)
from vis_mae_hf.medical.orientation import (
    AXIAL_AXIS,
    display_slice,
    ras_plane_from_display,
)
from vis_mae_hf.medical.windows import parse_window

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
TISSUE_LABELS = {0: "background", 1: "grey matter", 2: "white matter", 3: "other brain"}
FINDING_LABELS = {0: "normal", 1: "effusion", 2: "nodule"}


def pydicom_file(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pydicom-data)")
    return Path(path)


@pytest.fixture(scope="module")
def segmentation_model(tmp_path_factory):
    return save_tiny_model(
        tmp_path_factory.mktemp("segmentation"), VisMaeForSemanticSegmentation, "segmentation", id2label=TISSUE_LABELS
    )


@pytest.fixture(scope="module")
def classification_model(tmp_path_factory):
    return save_tiny_model(
        tmp_path_factory.mktemp("classification"),
        VisMaeForImageClassification,
        "classification",
        id2label=FINDING_LABELS,
    )


def predict(capsys, model, *arguments) -> tuple[int, str, str]:
    """Run `vis-mae predict --model MODEL ARGUMENTS...` in-process: (exit status, stdout, stderr)."""
    try:
        status = vis_mae_main(["predict", "--model", str(model), *map(str, arguments)])
    except SystemExit as exit_:  # argparse errors
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ------------------------------------------------------------------------------------------------ a known "model"


class BrightRegionSegmenter(torch.nn.Module):
    """Stands in for a segmentation model with a known answer: class 1 where the first channel is above 0.5."""

    def __init__(self):
        super().__init__()
        self.config = VisMaeConfig(**tiny_config_kwargs(id2label={0: "background", 1: "bright"}))
        self.sharpness = torch.nn.Parameter(torch.tensor(20.0))
        self.seen = []  # the pixel values of each call, to check what the model was shown

    def forward(self, pixel_values):
        self.seen.append(pixel_values.detach().clone())
        first = pixel_values[:, :1] - 0.5
        return SemanticSegmenterOutput(logits=torch.cat([-first, first], dim=1) * self.sharpness)


def known_predictor(normalization: str = "none") -> VisMaePredictor:
    # No resizing: each slice reaches the "model" as it is, so the expected mask is exact.
    processor = VisMaeImageProcessor(do_resize=False, normalization=normalization)
    return VisMaePredictor(BrightRegionSegmenter(), processor, device="cpu", task=TASK_SEGMENTATION)


@pytest.fixture
def known_model(monkeypatch):
    """`vis-mae predict --model anything` uses the known stand-in model."""
    predictor = known_predictor()
    monkeypatch.setattr(VisMaePredictor, "from_pretrained", classmethod(lambda cls, *args, **kwargs: predictor))
    return predictor


# ------------------------------------------------------------------------------------------------ synthetic inputs


def random_volume(shape, seed=0) -> np.ndarray:
    """Integers 0..100 (both present), in an irregular pattern: any transposition or flip changes it."""
    values = np.random.default_rng(seed).integers(0, 101, size=shape).astype(np.float32)
    values.flat[0], values.flat[-1] = 0, 100
    return values


def write_series(folder: Path, n_slices=5, shape=(12, 10), window=None) -> dict[int, np.ndarray]:
    """An axial CT series from CT_small's header, shuffled file names, reversed InstanceNumbers.

    Returns {k: stored pixels of the k-th most inferior slice}. HU = stored - 1024.
    """
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    series_uid = generate_uid()
    names = [f"IM{index:04d}" for index in range(n_slices)]
    random.Random(5).shuffle(names)
    pixels_by_slice = {}
    for k in range(n_slices):
        pixels = (1024 + 10 * random_volume(shape, seed=k)).astype(np.int16)  # HU 0..1000
        dataset = template.copy()
        dataset.SOPInstanceUID = generate_uid()
        dataset.SeriesInstanceUID = series_uid
        dataset.InstanceNumber = n_slices - k
        dataset.ImagePositionPatient = ["-50.0", "20.0", f"{100.0 + 2.5 * k:.4f}"]
        dataset.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        dataset.PixelSpacing = ["0.8", "0.6"]
        dataset.RescaleSlope, dataset.RescaleIntercept = "1", "-1024"
        dataset.Rows, dataset.Columns = shape
        dataset.PixelData = pixels.tobytes()
        if window is not None:
            dataset.WindowWidth, dataset.WindowCenter = window
        dataset.save_as(folder / names[k])
        pixels_by_slice[k] = pixels
    return pixels_by_slice


# An LPS-ish, axis-permuted affine: array axis 0 runs posterior, axis 1 towards the patient's left, axis 2 superior.
PERMUTED_AFFINE = np.array(
    [[0.0, -0.9, 0.0, 30.0], [-1.1, 0.0, 0.0, 40.0], [0.0, 0.0, 2.0, -10.0], [0.0, 0.0, 0.0, 1.0]]
)


# ------------------------------------------------------------------------------------------------ geometry


def test_ras_plane_from_display_undoes_display_slice():
    volume = random_volume((5, 7, 3))
    for index in range(3):
        plane = display_slice(volume, AXIAL_AXIS, index)
        np.testing.assert_array_equal(ras_plane_from_display(plane), volume[:, :, index])


def test_volume_slices_reach_the_model_as_the_loader_shows_them(tmp_path):
    """The model sees each axial slice exactly as `load_medical_image(nifti, slice_index=k)` shows it (the
    radiological orientation the 2-D training images have), whatever the file's own voxel order."""
    path = tmp_path / "permuted.nii.gz"
    nib.save(nib.Nifti1Image(random_volume((9, 11, 4)), PERMUTED_AFFINE), path)
    predictor = known_predictor(normalization="min_max")
    volume = load_medical_volume(path).values

    predictor.segment_volume(volume, batch_size=1)

    assert len(predictor.model.seen) == volume.shape[AXIAL_AXIS] == 4
    for index, pixel_values in enumerate(predictor.model.seen):
        expected = load_medical_image(path, slice_index=index).pixels  # min-max per slice, like the processor
        np.testing.assert_allclose(pixel_values[0, 0].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_nifti_mask_lands_on_the_input_voxels_in_any_orientation(tmp_path, capsys, known_model, batch_size):
    data = random_volume((9, 11, 4))
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(data, PERMUTED_AFFINE), path)

    status, out, err = predict(
        capsys, "known", path, "--output", tmp_path / "out", "--batch-size", batch_size, "--quiet"
    )

    assert status == 0, err
    mask = nib.load(tmp_path / "out" / "scan_mask.nii.gz")
    assert mask.shape == data.shape
    np.testing.assert_allclose(mask.affine, PERMUTED_AFFINE, atol=1e-5)
    assert mask.get_data_dtype() == np.uint8
    # min-max over the volume, then the known model: class 1 exactly where the input is above the mid-range.
    np.testing.assert_array_equal(np.asarray(mask.dataobj), (data > 50).astype(np.uint8))


def test_two_dimensional_nifti_gives_a_two_dimensional_mask(tmp_path, capsys, known_model):
    data = random_volume((9, 11))
    affine = np.diag([-0.7, 0.7, 3.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "plane.nii")

    status, _, err = predict(capsys, "known", tmp_path / "plane.nii", "--output", tmp_path / "out")

    assert status == 0, err
    mask = nib.load(tmp_path / "out" / "plane_mask.nii.gz")
    assert mask.shape == (9, 11)
    np.testing.assert_allclose(mask.affine, affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(mask.dataobj), data > 50)


def test_shuffled_dicom_series_mask_matches_each_dicom_slice(tmp_path, capsys, known_model):
    pixels_by_slice = write_series(tmp_path / "series")

    status, out, err = predict(capsys, "known", tmp_path / "series", "--output", tmp_path / "out")

    assert status == 0, err
    loaded = load_medical_volume(tmp_path / "series")
    volume, affine = loaded.values, loaded.affine
    mask = nib.load(tmp_path / "out" / "series_mask.nii.gz")
    assert mask.shape == volume.shape == (10, 12, 5)
    np.testing.assert_allclose(mask.affine, affine, atol=1e-4)
    labels = np.asarray(mask.dataobj)
    for k, pixels in pixels_by_slice.items():
        # Shown the radiological way, slice k of the mask is the k-th most inferior DICOM image, thresholded
        # (HU 0..1000 scaled min-max over the volume: bright means above 500 HU).
        np.testing.assert_array_equal(display_slice(labels, AXIAL_AXIS, k), (pixels - 1024) > 500)
    assert "series" in err and "slice" in err  # the progress bar, on stderr
    assert "min-max over the volume" in out


def test_volume_probabilities_are_saved_on_the_input_grid(tmp_path, capsys, known_model):
    data = random_volume((9, 11, 4))
    nib.save(nib.Nifti1Image(data, PERMUTED_AFFINE), tmp_path / "scan.nii")

    status, _, err = predict(
        capsys, "known", tmp_path / "scan.nii", "--output", tmp_path / "out", "--save-probabilities", "--quiet"
    )

    assert status == 0, err
    probabilities = nib.load(tmp_path / "out" / "scan_probabilities.nii.gz")
    assert probabilities.shape == (9, 11, 4, 2)
    np.testing.assert_allclose(probabilities.affine, PERMUTED_AFFINE, atol=1e-5)
    values = np.asarray(probabilities.dataobj)
    np.testing.assert_allclose(values.sum(axis=-1), 1.0, atol=1e-5)
    mask = np.asarray(nib.load(tmp_path / "out" / "scan_mask.nii.gz").dataobj)
    np.testing.assert_array_equal(values.argmax(axis=-1), mask)


def count_file_reads(monkeypatch) -> Counter:
    """How often each file name is opened by `pydicom.dcmread` or `nibabel.load` from now on."""
    reads: Counter = Counter()
    real_dcmread, real_load = pydicom.dcmread, nib.load

    def dcmread(path, *args, **kwargs):
        reads[Path(path).name] += 1
        return real_dcmread(path, *args, **kwargs)

    def load(path, *args, **kwargs):
        reads[Path(path).name] += 1
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(pydicom, "dcmread", dcmread)
    monkeypatch.setattr(nib, "load", load)
    return reads


def test_predict_reads_each_input_file_once(tmp_path, capsys, known_model, monkeypatch):
    """Modality, header window, frame count and the input's grid come with the loaded image or volume: no input
    file is opened a second time for its metadata."""
    write_series(tmp_path / "series", window=("400", "40"))
    nib.save(nib.Nifti1Image(random_volume((9, 11, 4)), PERMUTED_AFFINE), tmp_path / "scan.nii.gz")
    shutil.copy(pydicom_file("CT_small.dcm"), tmp_path / "ct.dcm")
    reads = count_file_reads(monkeypatch)

    status, out, err = predict(
        capsys, "known", tmp_path / "series", tmp_path / "scan.nii.gz", tmp_path / "ct.dcm",
        "--output", tmp_path / "out", "--save-probabilities",
    )

    assert status == 0, err
    slices = sorted(path.name for path in (tmp_path / "series").iterdir())
    assert len(slices) == 5
    assert reads == Counter(dict.fromkeys([*slices, "scan.nii.gz", "ct.dcm"], 1))
    assert "header W400/L40 (CT default)" in out  # the series' window, from the slices read once
    assert (tmp_path / "out" / "scan_probabilities.nii.gz").exists()


# ------------------------------------------------------------------------------------------------ real model, volumes


def test_real_model_on_a_real_las_nifti_keeps_shape_and_affine(tmp_path, capsys, segmentation_model):
    source = NIBABEL_DATA / "anatomical.nii"  # a real T1 stored LAS (not RAS)

    status, out, err = predict(capsys, segmentation_model, source, "--output", tmp_path)

    assert status == 0, err
    original = nib.load(source)
    mask = nib.load(tmp_path / "anatomical_mask.nii.gz")
    assert mask.shape == original.shape[:3]
    np.testing.assert_allclose(mask.affine, original.affine, atol=1e-4)
    assert set(np.unique(np.asarray(mask.dataobj))) <= set(TISSUE_LABELS)
    assert json.loads((tmp_path / "labels.json").read_text()) == {str(k): v for k, v in TISSUE_LABELS.items()}
    overlays = list(tmp_path.glob("anatomical_overlay*.png"))
    assert overlays == [tmp_path / "anatomical_overlay.png"] and str(overlays[0]) in out


def test_real_model_on_a_dicom_series(tmp_path, capsys, segmentation_model):
    write_series(tmp_path / "ct_series", window=("80", "40"))

    status, out, err = predict(
        capsys, segmentation_model, tmp_path / "ct_series", "--output", tmp_path / "out", "--batch-size", 2
    )

    assert status == 0, err
    volume = load_medical_volume(tmp_path / "ct_series")
    mask = nib.load(tmp_path / "out" / "ct_series_mask.nii.gz")
    assert mask.shape == volume.values.shape
    np.testing.assert_allclose(mask.affine, volume.affine, atol=1e-4)
    assert "header W80/L40 (CT default)" in out


# ------------------------------------------------------------------------------------------------ windows


def test_volume_window_precedence(tmp_path):
    write_series(tmp_path / "ct", window=("400", "40"))
    volume = load_medical_volume(tmp_path / "ct")
    hounsfield = volume.values

    def scaled(window):
        width, level = window
        return np.clip((hounsfield - (level - width / 2)) / width, 0, 1)

    explicit, how = volume_in_unit_range(volume, (1000.0, 500.0), "brain")
    np.testing.assert_allclose(explicit, scaled((1000, 500)), atol=1e-6)
    assert how == "window W1000/L500 (--window)"
    processor, how = volume_in_unit_range(volume, None, "brain")
    np.testing.assert_allclose(processor, scaled((80, 40)), atol=1e-6)
    assert how == "window brain (the model's processor)"
    header, how = volume_in_unit_range(volume, None, None)
    np.testing.assert_allclose(header, scaled((400, 40)), atol=1e-6)
    assert how == "header W400/L40 (CT default)"

    nib.save(nib.Nifti1Image(random_volume((4, 5, 3)) * 10 - 200, np.eye(4)), tmp_path / "mr.nii")
    plain, how = volume_in_unit_range(load_medical_volume(tmp_path / "mr.nii"), None, None)
    assert how == "min-max over the volume" and plain.min() == 0 and plain.max() == 1


def test_image_window_precedence(tmp_path):
    ct, mr = load_medical_image(pydicom_file("CT_small.dcm")), load_medical_image(pydicom_file("MR_small.dcm"))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "x.png")
    png = load_medical_image(tmp_path / "x.png")

    def chosen(window, processor_window, image):
        return model_window(window, processor_window, kind=image.kind, modality=image.modality)[0]

    assert chosen("lung", "brain", ct) == "lung"
    assert chosen(None, "brain", ct) == "brain"  # the model was fine-tuned with it
    assert chosen(None, "brain", mr) is None  # an MR is not in HU: a CT window makes no sense
    assert chosen(None, "brain", png) is None
    assert chosen(None, None, ct) is None  # the loader's default: header window, else min-max

    image, how = load_image_for_model(pydicom_file("CT_small.dcm"), None, "brain")
    np.testing.assert_array_equal(image.pixels, load_medical_image(pydicom_file("CT_small.dcm"), window="brain").pixels)
    assert how == "window brain (the model's processor)"
    assert load_image_for_model(pydicom_file("MR_small.dcm"), None, "brain")[1] == "min-max (loader default)"


def test_parse_window():
    assert parse_window("400,40") == (400.0, 40.0)
    assert parse_window(" Brain ") == "brain"
    assert parse_window("HEADER") == "header"
    with pytest.raises(ValueError, match=r"unknown window 'soft'.*abdomen.*lung"):
        parse_window("soft")
    with pytest.raises(ValueError, match=r"width must be > 0"):
        parse_window("-5,40")
    with pytest.raises(ValueError, match=r"two numbers"):
        parse_window("wide,40")


def test_output_stem():
    assert output_stem(Path("/data/case1.nii.gz")) == "case1"
    assert output_stem(Path("scan.NII")) == "scan"
    assert output_stem(Path("IM000123")) == "IM000123"  # DICOM files often have no suffix
    assert output_stem(Path("/data/series_07")) == "series_07"


# ------------------------------------------------------------------------------------------------ 2-D


def test_real_dicom_gives_mask_and_overlay_at_the_original_size(tmp_path, capsys, segmentation_model):
    source = pydicom_file("CT_small.dcm")  # 128 x 128 CT

    status, out, err = predict(capsys, segmentation_model, source, "--output", tmp_path, "--save-probabilities")

    assert status == 0, err
    mask = np.asarray(Image.open(tmp_path / "CT_small_mask.png"))
    assert mask.shape == (128, 128) and mask.dtype == np.uint8
    predictor = VisMaePredictor.from_pretrained(segmentation_model, device="cpu")
    image = load_medical_image(source).pixels
    expected = predictor.segment_images([image])[0].label_map
    np.testing.assert_array_equal(mask, expected)
    probabilities = np.load(tmp_path / "CT_small_probabilities.npy")
    assert probabilities.shape == (4, 128, 128)
    np.testing.assert_array_equal(probabilities.argmax(axis=0), mask)

    overlay = np.asarray(Image.open(tmp_path / "CT_small_overlay.png").convert("RGB"))
    # 128 px is small: enlarged 4 times (512 px), each input pixel a 4 x 4 block, the legend to its right
    assert overlay.shape[0] >= 512 and overlay.shape[1] > 512
    enlarged = overlay[:512, :512].astype(float)
    blocks = enlarged.reshape(128, 4, 128, 4, 3)
    assert (blocks == blocks[:, :1, :, :1]).all(), "an enlarged pixel is not one colour: the picture was smoothed"
    picture = blocks[:, 0, :, 0]
    grey = np.rint(image * 255)
    background = mask == 0
    np.testing.assert_array_equal(picture[background], np.repeat(grey[background][:, None], 3, axis=1))
    for label in set(np.unique(mask)) - {0}:
        where = mask == label
        tinted = (1 - OVERLAY_ALPHA) * grey[where][:, None] + OVERLAY_ALPHA * np.array(label_colour(int(label)))
        np.testing.assert_allclose(picture[where], tinted, atol=1.01)
        legend = overlay[:, 512:].reshape(-1, 3)
        assert (legend == label_colour(int(label))).all(axis=1).any(), f"no legend swatch for class {label}"


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_png_inputs_grey_and_rgb(tmp_path, capsys, segmentation_model, mode):
    rows, columns = np.mgrid[0:40, 0:56]
    image = Image.fromarray(((rows * 3 + columns * 2) % 256).astype(np.uint8), mode="L").convert(mode)
    image.save(tmp_path / f"photo_{mode}.png")

    status, _, err = predict(
        capsys, segmentation_model, tmp_path / f"photo_{mode}.png", "--output", tmp_path / "out"
    )

    assert status == 0, err
    assert Image.open(tmp_path / "out" / f"photo_{mode}_mask.png").size == (56, 40)


def test_multi_frame_dicom_needs_a_frame(tmp_path, capsys, segmentation_model):
    source = pydicom_file("emri_small.dcm")  # 10-frame head MR

    status, _, err = predict(capsys, segmentation_model, source, "--output", tmp_path)
    assert status == 1
    assert "emri_small.dcm holds 10 frames: pass --frame 0..9" in err

    status, _, err = predict(capsys, segmentation_model, source, "--frame", 4, "--output", tmp_path)
    assert status == 0, err
    assert Image.open(tmp_path / "emri_small_frame4_mask.png").size == (64, 64)


# ------------------------------------------------------------------------------------------------ overlays


@pytest.mark.parametrize(
    "height, width, scale", [(96, 215, 2), (128, 128, 4), (256, 256, 2), (300, 512, 1), (700, 900, 1), (20, 600, 1)]
)
def test_small_images_are_enlarged_by_the_largest_whole_factor_within_512_px(height, width, scale):
    assert display_scale(height, width) == scale


def swatch_side(picture: np.ndarray, label: int) -> int:
    """The side of the legend's square swatch of `label` (its pixels of that exact colour form one square)."""
    rows, columns = np.nonzero((picture == label_colour(label)).all(axis=-1))
    side = rows.max() - rows.min() + 1
    assert columns.max() - columns.min() + 1 == side and rows.size == side * side
    return int(side)


def test_a_small_scan_overlay_is_enlarged_pixel_for_pixel_with_a_legible_legend():
    """The 215 x 96 scan of the issue: drawn at 430 x 192, each pixel a 2 x 2 block of its own colour."""
    rows, columns = np.mgrid[0:96, 0:215]
    image = ((rows * 3 + columns) % 101) / 100.0
    label_map = np.zeros((96, 215), dtype=np.int64)
    label_map[20:60, 30:90], label_map[50:80, 120:200] = 1, 2

    picture = np.asarray(overlay_image(image, label_map, ["background", "liver", "spleen"]))

    assert picture.shape[0] == 192 and picture.shape[1] > 430
    blocks = picture[:, :430].reshape(96, 2, 215, 2, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()
    grey = np.rint(image * 255)
    np.testing.assert_array_equal(blocks[:, 0, :, 0][label_map == 0], np.repeat(grey[label_map == 0][:, None], 3, 1))
    legend = picture[:, 430:]
    assert swatch_side(legend, 1) >= LEGEND_MIN_FONT_SIZE and swatch_side(legend, 2) >= LEGEND_MIN_FONT_SIZE
    # a thin strip keeps its size, and the picture grows to hold the legend rather than shrinking it
    strip = np.asarray(overlay_image(np.zeros((20, 600)), np.ones((20, 600), int), ["background", "a", "b"]))
    assert strip.shape[0] > 20 and swatch_side(strip[:, 600:], 1) >= LEGEND_MIN_FONT_SIZE


def test_the_mosaic_shows_the_labelled_slices_spread_evenly_or_the_middle_one():
    labels = np.zeros((6, 5, 30), dtype=np.int64)
    assert mosaic_slices(labels, axis=2) == [15]  # nothing labelled: the middle slice
    labels[2, 2, [4, 9]] = 1
    assert mosaic_slices(labels, axis=2) == [4, 9]
    labels[1, 1, 3:25] = 2  # 22 labelled slices: 16 of them, from the first to the last
    chosen = mosaic_slices(labels, axis=2)
    assert len(chosen) == MAX_TILES and chosen[0] == 3 and chosen[-1] == 24 and chosen == sorted(set(chosen))
    assert set(chosen) <= set(range(3, 25))


def test_volume_overlay_tiles_are_captioned_with_the_mask_files_own_slice_numbers(tmp_path, monkeypatch):
    """A NIfTI stored head first (its third axis runs superior -> inferior): the captions count as the file does, so
    "slice N" is slice N of the input and of `<name>_mask.nii.gz`."""
    values = random_volume((12, 10, 6))
    affine = np.diag([1.0, 1.0, -2.0, 1.0])  # axis codes R, A, I
    nib.save(nib.Nifti1Image(values, affine), tmp_path / "head_first.nii.gz")
    volume = load_medical_volume(tmp_path / "head_first.nii.gz")
    label_map = np.zeros(volume.values.shape, dtype=np.int64)
    label_map[3:8, 2:6, 1] = 1  # RAS slices 1 and 4 (counted from the feet) hold labels
    label_map[4:6, 3:5, 4] = 2
    shown = []
    monkeypatch.setattr(
        "vis_mae_hf.inference.outputs.overlay_mosaic",
        lambda tiles, names, legend: shown.append(tiles) or Image.new("RGB", (4, 4)),
    )

    write_volume_overlay(volume.unit_range(), label_map, volume, ["background", "a", "b"], tmp_path / "o.png")

    captions = [caption for _, _, caption in shown[0]]
    assert captions == ["slice 1", "slice 4"]  # file slices 6 - 1 - 4 and 6 - 1 - 1, in the file's order
    mask_path = tmp_path / "head_first_mask.nii.gz"
    mask = np.asarray(nib.load(write_volume_mask(label_map, volume, mask_path)).dataobj)
    labelled = [index for index in range(mask.shape[2]) if mask[:, :, index].any()]
    assert [f"slice {index}" for index in labelled] == captions
    for (image, labels, _), index in zip(shown[0], (4, 1)):  # tile "slice 1" is RAS slice 4
        np.testing.assert_array_equal(labels, display_slice(label_map, AXIAL_AXIS, index))


def test_predict_writes_one_mosaic_overlay_per_volume(tmp_path, capsys, known_model):
    values = random_volume((16, 14, 5))
    nib.save(nib.Nifti1Image(values, np.diag([1.0, 1.0, 3.0, 1.0])), tmp_path / "scan.nii.gz")

    status, out, err = predict(capsys, "known", tmp_path / "scan.nii.gz", "--output", tmp_path / "out")

    assert status == 0, err
    picture = Image.open(tmp_path / "out" / "scan_overlay.png")
    # 5 labelled slices of 14 x 16 px: a 3 x 2 grid of tiles enlarged 16 times (224 x 256 px each), a legend beside
    assert picture.width > 3 * 256 and picture.height > 2 * 224
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "labels.json", "scan_mask.nii.gz", "scan_overlay.png"
    ]


# ------------------------------------------------------------------------------------------------ classification


def test_classification_writes_csv_and_json(tmp_path, capsys, classification_model):
    Image.fromarray(np.full((30, 40), 90, np.uint8)).save(tmp_path / "flat.png")
    inputs = [pydicom_file("CT_small.dcm"), tmp_path / "flat.png"]

    status, _, err = predict(capsys, classification_model, *inputs, "--output", tmp_path / "out")

    assert status == 0, err
    lines = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert lines[0] == "file,label,prob_normal,prob_effusion,prob_nodule"
    rows = [line.split(",") for line in lines[1:]]
    assert [row[0] for row in rows] == [str(path) for path in inputs]
    summary = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert summary["labels"] == list(FINDING_LABELS.values())
    for row, entry in zip(rows, summary["predictions"]):
        scores = [float(value) for value in row[2:]]
        assert sum(scores) == pytest.approx(1.0, abs=1e-5)
        assert row[1] == entry["label"] == list(FINDING_LABELS.values())[int(np.argmax(scores))]
        assert list(entry["probabilities"].values()) == pytest.approx(scores, abs=1e-6)


def test_multi_label_prediction_lists_every_label_over_one_half():
    names = ["effusion", "nodule", "edema"]
    assert predicted_label(np.array([0.7, 0.2, 0.5]), names, multi_label=True) == "effusion;edema"
    assert predicted_label(np.array([0.1, 0.2, 0.3]), names, multi_label=True) == ""
    assert predicted_label(np.array([0.1, 0.6, 0.3]), names, multi_label=False) == "nodule"


def test_classification_refuses_volumes_and_keeps_the_other_inputs(tmp_path, capsys, classification_model):
    inputs = [NIBABEL_DATA / "anatomical.nii", pydicom_file("MR_small.dcm")]
    status, _, err = predict(capsys, classification_model, *inputs, "--output", tmp_path)

    assert status == 1
    assert "anatomical.nii is a volume; classification models take 2-D images" in err
    assert len((tmp_path / "predictions.csv").read_text().splitlines()) == 2  # header + MR_small


# ------------------------------------------------------------------------------------------------ bad input


def truncated_dicom(folder: Path) -> Path:
    data = pydicom_file("CT_small.dcm").read_bytes()
    (folder / "cut.dcm").write_bytes(data[: len(data) // 2])
    return folder / "cut.dcm"


def text_named_dicom(folder: Path) -> Path:
    (folder / "report.dcm").write_text("a radiology report, not an image\n" * 20)
    return folder / "report.dcm"


def nan_nifti(folder: Path) -> Path:
    volume = np.ones((4, 4, 3), np.float32)
    volume[1, 2, 0] = np.nan
    nib.save(nib.Nifti1Image(volume, np.eye(4)), folder / "nan.nii")
    return folder / "nan.nii"


def empty_nifti(folder: Path) -> Path:
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 0), np.float32), np.eye(4)), folder / "empty.nii")
    return folder / "empty.nii"


@pytest.mark.parametrize(
    "make_input, message",
    [
        (truncated_dicom, r"cut\.dcm.*truncated or corrupt"),
        (text_named_dicom, r"report\.dcm is not a DICOM file"),
        (lambda folder: pydicom_file("liver.dcm"), r"liver\.dcm is a DICOM Segmentation \(SEG\)"),
        (lambda folder: NIBABEL_DATA / "example4d.nii.gz", r"example4d\.nii\.gz holds 4-D data"),
        (nan_nifti, r"nan\.nii has 1 NaN or infinite"),
        (empty_nifti, r"empty\.nii holds an empty image"),
        (lambda folder: folder / "absent.dcm", r"No such file or folder: .*absent\.dcm"),
    ],
    ids=["truncated", "not-dicom", "no-pixels", "4-d", "nan", "empty", "missing"],
)
def test_bad_input_is_one_clear_line_and_a_failure_status(tmp_path, capsys, segmentation_model, make_input, message):
    bad = make_input(tmp_path)
    Image.fromarray(np.full((20, 24), 120, np.uint8)).save(tmp_path / "good.png")

    status, out, err = predict(capsys, segmentation_model, bad, tmp_path / "good.png", "--output", tmp_path / "out")

    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("vis-mae predict: error:")]
    assert len(errors) == 1 and re.search(message, errors[0]), err
    assert "Traceback" not in err
    assert f"1 of 2 inputs predicted; failed: {bad}" in err
    assert (tmp_path / "out" / "good_mask.png").exists()  # the good input is still predicted


def test_unknown_window_name_is_a_usage_error(tmp_path, capsys, segmentation_model):
    status, _, err = predict(
        capsys, segmentation_model, pydicom_file("CT_small.dcm"), "--window", "softtissue", "--output", tmp_path
    )
    assert status == 2
    assert "unknown window 'softtissue'" in err and "mediastinum" in err


def test_checkpoint_without_a_task_head_is_refused(tmp_path, capsys):
    folder = save_tiny_model(tmp_path / "pretrained", VisMaeForPreTraining, "pretraining")
    status, _, err = predict(capsys, folder, pydicom_file("CT_small.dcm"), "--output", tmp_path / "o")
    assert status == 1
    assert "holds a VisMaeForPreTraining checkpoint" in err and "Traceback" not in err


def test_model_folder_without_a_processor_is_refused(tmp_path, capsys):
    folder = tmp_path / "bare"
    VisMaeForSemanticSegmentation(VisMaeConfig(**tiny_config_kwargs(image_size=64, num_labels=2))).save_pretrained(
        folder
    )
    status, _, err = predict(capsys, folder, pydicom_file("CT_small.dcm"), "--output", tmp_path / "o")
    assert status == 1
    assert "has no usable image processor" in err


def test_missing_model_is_refused(tmp_path, capsys):
    status, _, err = predict(capsys, tmp_path / "nowhere", pydicom_file("CT_small.dcm"), "--output", tmp_path / "o")
    assert status == 1
    assert "Cannot load a model from" in err and "nowhere" in err


def test_inputs_that_would_overwrite_each_other_are_refused(tmp_path, capsys, segmentation_model):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / folder / "scan.png")
    inputs = [tmp_path / "a" / "scan.png", tmp_path / "b" / "scan.png"]
    status, _, err = predict(capsys, segmentation_model, *inputs, "--output", tmp_path / "out")
    assert status == 1
    assert "would both write outputs named scan_*" in err


def test_readme_figure_script_runs_vis_mae_predict_on_a_real_dicom(tmp_path, segmentation_model):
    import importlib.util

    script = Path(__file__).parents[1] / "docs" / "make_readme_figures.py"
    spec = importlib.util.spec_from_file_location("make_readme_figures", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    status = module.main(["--model", segmentation_model, "--dicom", "CT_small.dcm", "--output", str(tmp_path)])

    assert status == 0
    picture = Image.open(tmp_path / "predict_CT_small_overlay.png")
    assert picture.height == 512 and picture.width > 512  # the 128 px CT enlarged 4 times, the legend beside it
    assert module.main(["--model", str(tmp_path / "no-model"), "--output", str(tmp_path)]) == 1
