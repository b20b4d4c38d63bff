"""`vis-mae demo` without a browser: per-class sizes against hand-computed values, what the page shows for a
segmenter, a classifier and a pretraining checkpoint, zipped series, bad uploads as the command's one line, the
bundled examples, and the command itself (help without Gradio, one line naming the extra)."""

from __future__ import annotations

import builtins
import os
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import save_tiny_model
from hostile import assert_one_error_line, vis_mae
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from vis_mae_hf import (
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
)
from vis_mae_hf.app.demo import APP_EXTRA_HINT, views
from vis_mae_hf.app.demo.examples import (
    DEMO_EXTRA_HINT,
    EXAMPLE_NAMES,
    HEAD_CT,
    example_file,
    examples_status,
)
from vis_mae_hf.app.demo.views import DemoModel, Settings, page_result
from vis_mae_hf.hub.notice import package_notice
from vis_mae_hf.inference.measurements import image_class_sizes, volume_class_sizes
from vis_mae_hf.medical import MedicalImageError, load_medical_volume

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
TISSUES = ["background", "grey matter", "white matter", "other brain"]
HEAD_CT_SPACING_MM = 0.478516  # 693_UNCR.dcm's PixelSpacing


def save_segmenter(folder) -> str:
    return save_tiny_model(folder, VisMaeForSemanticSegmentation, "segmentation", num_labels=4,
                           id2label=dict(enumerate(TISSUES)), label2id={name: i for i, name in enumerate(TISSUES)})


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    return DemoModel.load(save_segmenter(tmp_path_factory.mktemp("segmenter")), device="cpu")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    folder = save_tiny_model(tmp_path_factory.mktemp("pretrained"), VisMaeForPreTraining, "pretraining")
    return DemoModel.load(folder, device="cpu")


def head_ct() -> Path:
    return Path(get_testdata_file("693_UNCR.dcm", download=False))


def small_nifti(path: Path, spacing=(2.0, 2.0, 3.0), shape=(24, 20, 5)) -> Path:
    values = np.random.default_rng(0).normal(40, 30, shape).astype(np.float32)
    nib.save(nib.Nifti1Image(values, np.diag([*spacing, 1.0])), path)
    return path


def write_series_zip(path: Path, slices=3) -> Path:
    """A zip of an axial CT_small series (128 x 128, 0.66 mm pixels), 2.5 mm apart, in a folder inside the zip."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    series_uid = generate_uid()
    with zipfile.ZipFile(path, "w") as archive:
        for k in range(slices):
            dataset = template.copy()
            dataset.SeriesInstanceUID, dataset.SOPInstanceUID = series_uid, generate_uid()
            dataset.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            dataset.ImagePositionPatient = [-80.0, -80.0, 100.0 + 2.5 * k]
            dataset.InstanceNumber = k + 1
            slice_path = path.parent / f"IM{k}"
            dataset.save_as(slice_path)
            archive.write(slice_path, f"series/IM{k}")
            slice_path.unlink()
    return path


# ------------------------------------------------------------------------------------------ measurements by hand


def test_image_areas_are_pixels_times_the_pixel_area():
    label_map = np.array([[0, 1, 1], [2, 1, 0]])
    sizes = image_class_sizes(label_map, ["background", "a", "b"], (0.5, 2.0))  # 1 mm² per pixel
    assert [(s.name, s.slice_pixels, s.slice_area_mm2) for s in sizes] == [
        ("background", 2, 2.0), ("a", 3, 3.0), ("b", 1, 1.0)]
    assert all(s.volume_ml is None for s in sizes)


def test_an_image_without_pixel_spacing_gets_counts_and_no_areas():
    sizes = image_class_sizes(np.array([[0, 1]]), ["background", "a"], None)
    assert [(s.slice_pixels, s.slice_area_mm2) for s in sizes] == [(1, None), (1, None)]


def test_volume_sizes_are_voxels_times_the_voxel_volume_in_ml():
    labels = np.zeros((4, 5, 3), dtype=np.uint8)
    labels[:2, :2, 0] = 1  # 4 voxels on slice 0
    labels[0, 0, 2] = 1  # and 1 on slice 2
    sizes = volume_class_sizes(labels, ["background", "lesion"], (0.5, 2.0, 3.0), slice_index=0)
    lesion = sizes[1]
    # slice 0: 4 pixels x 0.5 x 2.0 mm = 4 mm²; volume: 5 voxels x 3 mm³ = 15 mm³ = 0.015 mL
    assert (lesion.slice_pixels, lesion.slice_area_mm2, lesion.volume_voxels) == (4, 4.0, 5)
    assert lesion.volume_ml == pytest.approx(0.015)
    assert sizes[0].volume_voxels + lesion.volume_voxels == labels.size


@pytest.mark.parametrize("spacing", [(0.5, 0.0, 1.0), (1.0, float("nan"), 1.0), (1.0, 1.0)])
def test_a_spacing_that_places_no_voxel_is_refused(spacing):
    with pytest.raises(ValueError, match="spacing"):
        volume_class_sizes(np.zeros((2, 2, 2), np.uint8), ["background"], spacing, slice_index=0)


def test_a_label_beyond_the_names_is_refused():
    with pytest.raises(ValueError, match="class 3"):
        image_class_sizes(np.array([[3]]), ["background", "a"], None)


# --------------------------------------------------------------------------------------------- what the page shows


def test_segmenting_the_head_ct_shows_the_overlay_and_areas_from_its_pixel_spacing(segmenter):
    opened, view = page_result(segmenter, head_ct(), None, Settings())
    assert view.error is None, view.error
    assert view.picture.width > 512 and view.picture.height >= 512  # the 512 px image and its legend
    assert view.headers == ["class", "pixels on slice", "area on slice (mm²)"]
    assert [row[0] for row in view.rows] == TISSUES
    assert sum(row[1] for row in view.rows) == 512 * 512
    for _, pixels, area in view.rows:
        assert area == pytest.approx(pixels * HEAD_CT_SPACING_MM**2, abs=0.01)
    assert "header W100/L40" in view.status and "0.478516" in view.status


def test_a_preset_window_is_applied_through_the_one_parser(segmenter):
    _, view = page_result(segmenter, head_ct(), None, Settings(window="brain"))
    assert "window brain (--window)" in view.status
    _, view = page_result(segmenter, head_ct(), None, Settings(window="WIDTH,LEVEL", custom_window="400,40"))
    assert "window W400/L40" in view.status
    _, view = page_result(segmenter, head_ct(), None, Settings(window="WIDTH,LEVEL", custom_window="400"))
    assert view.error.startswith("vis-mae demo: error: unknown window '400'")


def test_a_volume_shows_the_chosen_slice_and_volumes_in_ml(segmenter, tmp_path):
    opened, view = page_result(segmenter, small_nifti(tmp_path / "scan.nii.gz"), None, Settings(slice_index=1))
    assert view.error is None, view.error
    assert opened.num_slices == 5 and "axial slice 1 of 5" in view.status
    assert view.headers[-1] == "volume (mL)"
    assert sum(row[3] for row in view.rows) == 24 * 20 * 5
    for _, pixels, area, voxels, volume in view.rows:
        assert area == pytest.approx(pixels * 4.0) and volume == pytest.approx(voxels * 12.0 / 1000, abs=1e-3)
    # the next slice reuses the segmentation of the whole volume
    _, again = page_result(segmenter, None, opened, Settings(slice_index=4))
    assert len(opened.segmentations) == 1 and "axial slice 4 of 5" in again.status


def test_a_zipped_dicom_series_is_read_as_a_volume(segmenter, tmp_path):
    opened, view = page_result(segmenter, write_series_zip(tmp_path / "series.zip"), None, Settings())
    assert view.error is None, view.error
    assert opened.num_slices == 3 and opened.volume.spacing[2] == pytest.approx(2.5)


def test_a_zip_with_two_slices_of_one_name_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a/IM1", b"x")
        archive.writestr("b/IM1", b"y")
    with pytest.raises(MedicalImageError, match="several files named IM1"):
        load_medical_volume(tmp_path / "two.zip")


def test_classification_shows_a_probability_table(tmp_path):
    folder = save_tiny_model(tmp_path / "classifier", VisMaeForImageClassification, "classification", num_labels=3)
    _, view = page_result(DemoModel.load(folder, device="cpu"), head_ct(), None, Settings())
    assert view.headers == ["class", "probability"]
    probabilities = [row[1] for row in view.rows]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1, abs=1e-3)


def test_a_pretraining_checkpoint_shows_the_reconstruction_under_the_seeded_mask(pretrained):
    assert pretrained.task == views.TASK_PRETRAINING
    _, first = page_result(pretrained, head_ct(), None, Settings(seed=1))
    _, same = page_result(pretrained, head_ct(), None, Settings(seed=1))
    _, other = page_result(pretrained, head_ct(), None, Settings(seed=2))
    assert first.error is None and first.rows == []
    assert first.picture.width > 4 * 64  # input | masked input | reconstruction | reconstruction + visible
    assert np.array_equal(np.asarray(first.picture), np.asarray(same.picture))
    assert not np.array_equal(np.asarray(first.picture), np.asarray(other.picture))


def test_the_notice_comes_from_the_card_else_from_the_package(segmenter, tmp_path):
    assert segmenter.notice == package_notice() and "not a medical device" in segmenter.notice
    folder = Path(save_segmenter(tmp_path / "carded"))
    (folder / "README.md").write_text("# m\n\n## Intended use\n\nResearch.\n\n## Out-of-scope use\n\n- This is not a "
                                      "medical device.\n\n## Training data\n\nMNI.\n")
    notice = DemoModel.load(folder, device="cpu").notice
    assert notice.startswith("## Intended use\nResearch.") and "Training data" not in notice


# ------------------------------------------------------------------------------------------------- bad uploads


def corrupt_dicom(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.dcm"
    path.write_bytes(head_ct().read_bytes()[:2000])  # cut inside the pixel data
    return path


def four_d_nifti(tmp_path: Path) -> Path:
    path = tmp_path / "cine.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4, 3), np.float32), np.eye(4)), path)
    return path


def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    return path


@pytest.mark.parametrize("make", [corrupt_dicom, four_d_nifti, text_file], ids=["corrupt-dicom", "4d-nifti", "text"])
def test_a_bad_upload_shows_the_commands_one_line(segmenter, tmp_path, make):
    path = make(tmp_path)
    opened, view = page_result(segmenter, path, None, Settings())
    assert opened is None and view.picture is None and view.rows == []
    assert view.error.startswith("vis-mae demo: error: ") and "\n" not in view.error
    assert path.name in view.error and "Traceback" not in view.error


def test_the_page_callbacks_show_a_bad_upload_as_the_line(segmenter, tmp_path):
    from vis_mae_hf.app.demo.page import page_callbacks

    on_upload, on_example, on_settings = page_callbacks(segmenter)
    state, picture, table, message, *_ = on_upload(str(text_file(tmp_path)), "automatic", "", 0, 0)
    assert state is None and picture is None and message.startswith("**vis-mae demo: error: ")
    state, picture, table, message, slices, frames = on_example(HEAD_CT, "automatic", "", 0)
    assert state is not None and picture is not None and list(table.columns)[2] == "area on slice (mm²)"
    assert frames["visible"] is False and slices["visible"] is False


# ------------------------------------------------------------------------------------------------------ examples


def test_every_bundled_example_is_installed():
    assert examples_status() == ""
    assert all(example_file(name).is_file() for name in EXAMPLE_NAMES)


def test_without_the_demo_extra_the_picker_names_it(monkeypatch):
    monkeypatch.setattr("vis_mae_hf.app.demo.examples.get_testdata_file", lambda *args, **kwargs: None)
    with pytest.raises(ImportError, match=r"vis-mae-hf\[demo\]"):
        example_file(HEAD_CT)
    assert examples_status() == DEMO_EXTRA_HINT


# ------------------------------------------------------------------------------------------------------ command


def test_the_demo_builds_on_a_segmenter_and_on_a_pretraining_checkpoint(segmenter, pretrained):
    gradio = pytest.importorskip("gradio", reason="the app extra (Gradio) is not installed")
    from vis_mae_hf.app.demo.page import build_page

    for model in (segmenter, pretrained):
        assert isinstance(build_page(model), gradio.Blocks)


@pytest.fixture
def without_gradio(monkeypatch):
    real_import = builtins.__import__

    def refuse_gradio(name, *args, **kwargs):
        if name == "gradio" or name.startswith("gradio."):
            raise ModuleNotFoundError("No module named 'gradio'", name="gradio")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "vis_mae_hf.app.demo.page", raising=False)
    monkeypatch.setattr(builtins, "__import__", refuse_gradio)


def test_demo_help_works_without_gradio(capsys, without_gradio):
    status, out, err = vis_mae(capsys, "demo", "--help")
    assert status == 0 and out.startswith("usage: vis-mae demo ") and "--share" in out


def test_without_gradio_the_demo_is_one_line_naming_the_extra(capsys, without_gradio, tmp_path):
    status, _, err = vis_mae(capsys, "demo", "--model", tmp_path)
    assert status == 1
    assert assert_one_error_line(err, "demo", APP_EXTRA_HINT)
