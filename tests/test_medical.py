"""Loading DICOM / NIfTI / 2-D image files, on the real files shipped in pydicom, pydicom-data and nibabel."""

import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from vis_mae_hf.medical import (
    MedicalImage,
    MedicalImageError,
    MedicalImageNotFoundError,
    MedicalVolume,
    MissingDicomDecoderError,
    MixedSeriesError,
    NoImagePixelDataError,
    UnreadableMedicalImageError,
    load_medical_image,
    load_medical_volume,
    save_mask_like,
)

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"


def pydicom_file(name: str) -> str:
    """A file from pydicom's or pydicom-data's test files, never downloaded."""
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} should ship with pydicom or pydicom-data (a test dependency)"
    return path


def stored(name: str, frame: int | None = None) -> np.ndarray:
    pixels = pydicom.dcmread(pydicom_file(name)).pixel_array
    return pixels if frame is None else pixels[frame]


# ------------------------------------------------------------------------------------------------ CT windows


def test_head_ct_header_window_matches_hounsfield_arithmetic():
    dataset = pydicom.dcmread(pydicom_file("693_UNCR.dcm"))
    # What DATA.md says about this file, which the expected values below rely on.
    assert (float(dataset.WindowCenter), float(dataset.WindowWidth)) == (40.0, 100.0)
    assert (float(dataset.RescaleSlope), float(dataset.RescaleIntercept)) == (1.0, -1024.0)
    hounsfield = dataset.pixel_array.astype(np.float64) - 1024.0

    image = load_medical_image(pydicom_file("693_UNCR.dcm"), window="header").pixels

    assert image.shape == (512, 512) and image.dtype == np.float32
    # A few pixels in each regime: below the window (air), inside it (brain), above it (bone).
    for low, high in ((-2000, -200), (0, 80), (300, 3000)):
        rows, columns = np.nonzero((hounsfield > low) & (hounsfield < high))
        assert rows.size > 0
        for row, column in list(zip(rows, columns))[:: max(rows.size // 4, 1)]:
            expected = min(max((hounsfield[row, column] - (40 - 100 / 2)) / 100, 0.0), 1.0)
            assert image[row, column] == pytest.approx(expected, abs=1e-6)
    assert 0.0 < image[(hounsfield > 0) & (hounsfield < 80)].mean() < 1.0


def test_ct_without_window_uses_its_header_window():
    path = pydicom_file("693_UNCR.dcm")
    assert np.array_equal(load_medical_image(path).pixels, load_medical_image(path, window="header").pixels)


@pytest.mark.parametrize(
    "window, width, level",
    [("brain", 80, 40), ("lung", 1500, -600), ("bone", 1800, 400), ((400, 40), 400, 40), ("BTCV_TransUNet", 400, 75)],
)
def test_head_ct_presets_match_hounsfield_arithmetic(window, width, level):
    hounsfield = stored("693_UNCR.dcm").astype(np.float64) - 1024.0
    expected = np.clip((hounsfield - (level - width / 2)) / width, 0, 1)
    image = load_medical_image(pydicom_file("693_UNCR.dcm"), window=window).pixels
    np.testing.assert_allclose(image, expected, atol=1e-6)


def test_compressed_head_ct_decodes_to_the_same_image():
    lossless = load_medical_image(pydicom_file("693_J2KR.dcm"), window="abdomen").pixels
    uncompressed = load_medical_image(pydicom_file("693_UNCR.dcm"), window="abdomen").pixels
    np.testing.assert_array_equal(lossless, uncompressed)


def test_enhanced_ct_rescale_and_window_come_from_functional_groups():
    dataset = pydicom.dcmread(pydicom_file("eCT_Supplemental.dcm"))
    # The rescale lives only in the shared functional groups: pydicom's apply_modality_lut would miss it.
    assert "RescaleIntercept" not in dataset and "WindowCenter" not in dataset
    shared = dataset.SharedFunctionalGroupsSequence[0]
    assert float(shared.PixelValueTransformationSequence[0].RescaleIntercept) == -1024.0
    voi = shared.FrameVOILUTSequence[0]
    assert (float(voi.WindowCenter), float(voi.WindowWidth)) == (49.0, 102.0)

    for frame in (0, 1):
        hounsfield = stored("eCT_Supplemental.dcm", frame).astype(np.float64) - 1024.0
        expected = np.clip((hounsfield - (49 - 102 / 2)) / 102, 0, 1)
        loaded = load_medical_image(pydicom_file("eCT_Supplemental.dcm"), frame=frame).pixels
        np.testing.assert_allclose(loaded, expected, atol=1e-6)
        explicit = np.clip((hounsfield - (40 - 400 / 2)) / 400, 0, 1)
        windowed = load_medical_image(pydicom_file("eCT_Supplemental.dcm"), frame=frame, window="abdomen")
        np.testing.assert_allclose(windowed.pixels, explicit, atol=1e-6)


def test_header_window_index_picks_among_several():
    path = pydicom_file("MR-SIEMENS-DICOM-WithOverlays.dcm")  # WindowCenter [450, 200], WindowWidth [790, 443]
    values = stored("MR-SIEMENS-DICOM-WithOverlays.dcm").astype(np.float64)
    second = load_medical_image(path, window="header", window_index=1).pixels
    np.testing.assert_allclose(second, np.clip((values - (200 - 443 / 2)) / 443, 0, 1), atol=1e-6)
    assert not np.allclose(second, load_medical_image(path, window="header", window_index=0).pixels)
    with pytest.raises(MedicalImageError, match=r"window_index=2 is out of range.*WINDOW1.*WINDOW2"):
        load_medical_image(path, window="header", window_index=2).pixels


def test_modality_lut_sequence_and_voi_lut_sequence_are_applied():
    dataset = pydicom.dcmread(pydicom_file("mlut_18.dcm"))
    lut = dataset.ModalityLUTSequence[0]
    first_mapped = lut.LUTDescriptor[1]
    table = np.asarray(lut.LUTData, dtype=np.float64)
    indices = np.clip(dataset.pixel_array.astype(np.int64) - first_mapped, 0, len(table) - 1)
    expected = table[indices]
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(load_medical_image(pydicom_file("mlut_18.dcm")).pixels, expected, atol=1e-6)

    dataset = pydicom.dcmread(pydicom_file("vlut_04.dcm"))
    lut = dataset.VOILUTSequence[0]
    bits = lut.LUTDescriptor[2]
    table = np.asarray(lut.LUTData, dtype=np.float64) / (2**bits - 1)
    expected = table[np.clip(dataset.pixel_array.astype(np.int64) - lut.LUTDescriptor[1], 0, len(table) - 1)]
    image = load_medical_image(pydicom_file("vlut_04.dcm"), window="header")
    np.testing.assert_allclose(image.pixels, expected, atol=1e-6)


def test_header_window_missing_is_an_error():
    with pytest.raises(MedicalImageError, match=r"CT_small\.dcm has no WindowCenter/WindowWidth"):
        load_medical_image(pydicom_file("CT_small.dcm"), window="header").pixels


def test_unknown_window_name_lists_the_presets():
    with pytest.raises(MedicalImageError, match=r"Unknown CT window 'soft'.*abdomen.*lung.*CT_small\.dcm"):
        load_medical_image(pydicom_file("CT_small.dcm"), window="soft").pixels


# ------------------------------------------------------------------------------------------------ typed results


def test_head_ct_image_carries_its_file_facts():
    path = pydicom_file("693_UNCR.dcm")
    hounsfield = stored("693_UNCR.dcm").astype(np.float64) - 1024.0

    image = load_medical_image(path)

    assert isinstance(image, MedicalImage)
    assert image.path == Path(path) and image.kind == "dicom" and image.modality == "CT"
    assert image.pixel_spacing == pytest.approx((0.478516, 0.478516))
    assert image.header_windows == ((100.0, 40.0, ""),)  # width, level, explanation: DATA.md's 40/100
    assert image.has_header_window and image.intensity == "header W100/L40"
    assert (image.frame, image.num_frames) == (0, 1)
    assert image.values.dtype == np.float32 and image.pixels.dtype == np.float32
    np.testing.assert_array_equal(image.values, hounsfield)  # the HU a later re-windowing needs


def test_enhanced_ct_frames_carry_their_functional_group_facts():
    image = load_medical_image(pydicom_file("eCT_Supplemental.dcm"), frame=1)
    assert (image.frame, image.num_frames) == (1, 2)
    assert image.header_windows == ((102.0, 49.0, ""),)
    assert image.pixel_spacing is not None and all(spacing > 0 for spacing in image.pixel_spacing)


def test_several_header_windows_keep_their_explanations():
    image = load_medical_image(pydicom_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    assert image.header_windows == ((790.0, 450.0, "WINDOW1"), (443.0, 200.0, "WINDOW2"))
    assert image.modality == "MR" and image.intensity == "min-max"  # only CT uses its header window by default


def test_radiograph_without_a_patient_pixel_spacing_says_none():
    image = load_medical_image(pydicom_file("RG1_UNCR.dcm"))  # PixelSpacing 0\0: unknown
    assert image.pixel_spacing is None and image.inverted and image.modality == "XRAY"


def test_nifti_slice_carries_spacing_and_slice_count():
    image = load_medical_image(NIBABEL_DATA / "anatomical.nii", slice_index=3)
    assert image.kind == "nifti" and image.modality is None
    assert image.pixel_spacing == (2.0, 2.0) and (image.frame, image.num_frames) == (3, 25)
    assert image.header_windows == () and not image.has_header_window


@pytest.mark.parametrize(
    "name, load_options, window, window_index",
    [
        ("693_UNCR.dcm", {}, "brain", 0),
        ("693_UNCR.dcm", {}, (400.0, 40.0), 0),
        ("693_UNCR.dcm", {"window": "lung"}, "header", 0),
        ("693_UNCR.dcm", {"window": "lung"}, None, 0),  # back to the loader's default: the CT header window
        ("RG1_UNCR.dcm", {}, "header", 0),  # MONOCHROME1: inverted after windowing
        ("MR-SIEMENS-DICOM-WithOverlays.dcm", {}, "header", 1),
        ("vlut_04.dcm", {}, "header", 0),  # a VOI LUT Sequence, no WindowCenter
        ("eCT_Supplemental.dcm", {"frame": 1}, "abdomen", 0),
        ("CT_small.dcm", {}, "liver", 0),
    ],
)
def test_with_window_equals_loading_with_that_window(name, load_options, window, window_index):
    path = pydicom_file(name)
    loaded = load_medical_image(path, **load_options)
    frame = load_options.get("frame")

    rewindowed = loaded.with_window(window, window_index)
    direct = load_medical_image(path, window=window, window_index=window_index, frame=frame)

    np.testing.assert_array_equal(rewindowed.pixels, direct.pixels)
    assert rewindowed.intensity == direct.intensity
    np.testing.assert_array_equal(rewindowed.values, loaded.values)  # the values stay; only the window changes


def test_with_window_on_nifti_and_sixteen_bit_images(tmp_path):
    volume = np.linspace(-1000, 1000, 4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
    image = nib.Nifti1Image(volume, np.eye(4))
    image.header["cal_min"], image.header["cal_max"] = -100.0, 300.0
    nib.save(image, tmp_path / "cal.nii")
    Image.fromarray((1000 + np.arange(40 * 30).reshape(40, 30) % 400).astype(np.uint16)).save(tmp_path / "x16.png")
    for path, window in ((tmp_path / "cal.nii", "header"), (tmp_path / "x16.png", (200, 1100))):
        np.testing.assert_array_equal(
            load_medical_image(path).with_window(window).pixels, load_medical_image(path, window=window).pixels
        )
    assert load_medical_image(tmp_path / "cal.nii").header_windows == ((400.0, 100.0, "cal_min/cal_max"),)


def test_images_without_raw_values_take_no_window(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "grey.png")
    display = load_medical_image(tmp_path / "grey.png")
    assert display.values is None and display.intensity == "8-bit display"
    assert display.with_window(None) is display
    with pytest.raises(MedicalImageError, match=r"grey\.png holds display values"):
        display.with_window("brain")
    colour = load_medical_image(pydicom_file("SC_rgb.dcm"))
    assert colour.values is None and colour.intensity == "colour RGB" and colour.pixels.shape[-1] == 3
    with pytest.raises(MedicalImageError, match=r"SC_rgb\.dcm holds display values \(colour RGB\)"):
        colour.with_window((400, 40))


# ------------------------------------------------------------------------------------------------ X-ray, colour


def test_monochrome1_chest_is_inverted_so_the_body_is_brighter_than_the_air():
    image = load_medical_image(pydicom_file("RG1_UNCR.dcm")).pixels
    pixels = stored("RG1_UNCR.dcm").astype(np.float64)
    assert pydicom.dcmread(pydicom_file("RG1_UNCR.dcm")).PhotometricInterpretation == "MONOCHROME1"
    np.testing.assert_allclose(image, 1 - (pixels - pixels.min()) / (pixels.max() - pixels.min()), atol=1e-6)
    height, width = image.shape
    centre = image[height // 2 - 100 : height // 2 + 100, width // 2 - 100 : width // 2 + 100].mean()
    corners = [image[:50, :50], image[:50, -50:], image[-50:, :50], image[-50:, -50:]]
    assert all(centre > corner.mean() + 0.2 for corner in corners)


def test_monochrome1_extremity_shows_bone_brighter_than_air():
    image = load_medical_image(pydicom_file("RG3_UNCR.dcm")).pixels
    # Rows 700-900 cross the lower leg: air beside the leg at columns 500-650, the leg at 850-1000.
    air, leg = image[700:900, 500:650].mean(), image[700:900, 850:1000].mean()
    assert air < 0.2 and leg > air + 0.3
    assert load_medical_image(pydicom_file("RG3_UNCR.dcm")).modality == "XRAY"


def test_palette_colour_ultrasound_becomes_rgb_in_unit_range():
    path = pydicom_file("examples_palette.dcm")
    image = load_medical_image(path).pixels
    dataset = pydicom.dcmread(path)
    rgb = apply_color_lut(dataset.pixel_array, dataset)
    assert image.shape == dataset.pixel_array.shape + (3,) and image.dtype == np.float32
    np.testing.assert_allclose(image, rgb / 65535.0, atol=1e-6)
    assert np.abs(image[..., 0] - image[..., 2]).max() > 0.1  # real colour, not grey
    # A 16-bit palette (segmented LUT): a bright maximum shows it was scaled by 65535, not clipped at 255.
    sixteen_bit = load_medical_image(pydicom_file("gdcm-US-ALOKA-16.dcm")).pixels
    assert sixteen_bit.shape == (480, 640, 3) and 0.9 < sixteen_bit.max() <= 1.0


@pytest.mark.parametrize("name", ["SC_ybr_full_uncompressed.dcm", "SC_ybr_full_422_uncompressed.dcm"])
def test_ybr_images_are_converted_to_rgb(name):
    assert pydicom.dcmread(pydicom_file(name)).PhotometricInterpretation.startswith("YBR_FULL")
    reference = load_medical_image(pydicom_file("SC_rgb.dcm")).pixels  # the same picture stored as RGB
    converted = load_medical_image(pydicom_file(name)).pixels
    assert converted.shape == reference.shape == (100, 100, 3)
    assert np.abs(converted - reference).max() <= 6 / 255 + 1e-6  # YCbCr rounding


def test_ybr_ultrasound_cine_frame_by_index():
    path = pydicom_file("examples_ybr_color.dcm")
    assert load_medical_image(path, frame=0).num_frames == 30
    first, last = load_medical_image(path, frame=0).pixels, load_medical_image(path, frame=29).pixels
    assert first.shape == (240, 320, 3) and not np.array_equal(first, last)
    with pytest.raises(MedicalImageError, match=r"holds 30 frames: pass frame=0\.\.29"):
        load_medical_image(path).pixels
    with pytest.raises(MedicalImageError, match=r"frame=30 is out of range.*30 frame"):
        load_medical_image(path, frame=30).pixels


def test_multi_frame_mr_by_index():
    path = pydicom_file("emri_small.dcm")
    for frame in (0, 9):
        pixels = stored("emri_small.dcm", frame).astype(np.float64)
        expected = (pixels - pixels.min()) / (pixels.max() - pixels.min())
        np.testing.assert_allclose(load_medical_image(path, frame=frame).pixels, expected, atol=1e-6)
    with pytest.raises(MedicalImageError, match=r"frame=-1 is out of range"):
        load_medical_image(path, frame=-1).pixels


def test_window_on_a_colour_image_is_an_error():
    message = r"examples_rgb_color\.dcm holds display values \(colour RGB\).*window='lung' cannot apply"
    with pytest.raises(MedicalImageError, match=message):
        load_medical_image(pydicom_file("examples_rgb_color.dcm"), window="lung").pixels


# ------------------------------------------------------------------------------------------------ modality


def write_dicom(path: Path, pixels: np.ndarray, **attributes) -> Path:
    """A minimal single-frame greyscale DICOM (Explicit VR Little Endian)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = attributes.pop("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    dataset.PixelData = np.ascontiguousarray(pixels).tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_synthetic_pet_is_rescaled_to_activity_and_tagged_pet(tmp_path):
    pixels = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 1000
    path = write_dicom(
        tmp_path / "pet.dcm", pixels, Modality="PT", Units="BQML", RescaleSlope="2.5", RescaleIntercept="0",
        SOPClassUID="1.2.840.10008.5.1.4.1.1.128",
    )
    activity = pixels * 2.5  # Bq/ml
    # A (width, level) window in Bq/ml only matches if the slope was applied.
    image = load_medical_image(path, window=(1000, 500)).pixels
    np.testing.assert_allclose(image, np.clip(activity / 1000, 0, 1), atol=1e-6)
    assert load_medical_image(path).modality == "PET"


@pytest.mark.parametrize(
    "name, modality",
    [
        ("693_UNCR.dcm", "CT"), ("MR_small.dcm", "MR"), ("RG1_UNCR.dcm", "XRAY"), ("examples_palette.dcm", "US"),
        ("JPEG2000_UNC.dcm", None),  # NM is nuclear medicine (gamma camera), not PET
        ("SC_rgb.dcm", None),  # secondary capture
    ],
)
def test_modality_groups(name, modality):
    assert load_medical_image(pydicom_file(name), frame=0).modality == modality


def test_modality_of_non_dicom_images_is_unknown(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    assert load_medical_image(tmp_path / "a.png").modality is None
    assert load_medical_image(NIBABEL_DATA / "anatomical.nii").modality is None
    assert load_medical_volume(NIBABEL_DATA / "anatomical.nii").modality is None


# ------------------------------------------------------------------------------------------------ NIfTI


def ras_copy(source: Path, target: Path) -> Path:
    """The same image stored with its first axis flipped (LAS <-> RAS): identical anatomy, different layout."""
    image = nib.load(source)
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, image.shape[0] - 1
    flipped = nib.Nifti1Image(np.asarray(image.dataobj)[::-1].copy(), image.affine @ flip)
    nib.save(flipped, target)
    return target


def test_las_and_ras_nifti_give_the_same_canonical_slices(tmp_path):
    las = NIBABEL_DATA / "anatomical.nii"
    ras = ras_copy(las, tmp_path / "anatomical_ras.nii.gz")
    assert nib.aff2axcodes(nib.load(las).affine) == ("L", "A", "S")
    assert nib.aff2axcodes(nib.load(ras).affine) == ("R", "A", "S")
    for slice_index in (None, 0, 12, 24):
        from_las = load_medical_image(las, slice_index=slice_index).pixels
        from_ras = load_medical_image(ras, slice_index=slice_index).pixels
        assert from_las.shape == (41, 33) and from_las.dtype == np.float32
        np.testing.assert_array_equal(from_las, from_ras)
    first, last = load_medical_image(las, slice_index=0), load_medical_image(las, slice_index=24)
    assert not np.array_equal(first.pixels, last.pixels)
    middle = load_medical_image(las, slice_index=12)
    np.testing.assert_array_equal(load_medical_image(las).pixels, middle.pixels)  # the middle slice by default


def test_nifti_slice_is_shown_the_radiological_way(tmp_path):
    volume = np.zeros((5, 4, 3), np.float32)
    volume[4, 3, 1] = 1.0  # most rightward (x) and most anterior (y) voxel of the middle slice, RAS
    nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "marker.nii.gz")
    image = load_medical_image(tmp_path / "marker.nii.gz").pixels
    # Radiological: the patient's right on the image's left, anterior at the top.
    assert image.shape == (4, 5) and image[0, 0] == 1.0 and image.sum() == 1.0


def test_nifti_header_window_uses_cal_range(tmp_path):
    volume = np.linspace(-1000, 1000, 4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
    image = nib.Nifti1Image(volume, np.eye(4))
    nib.save(image, tmp_path / "no_cal.nii")
    with pytest.raises(MedicalImageError, match=r"no_cal\.nii sets no display range"):
        load_medical_image(tmp_path / "no_cal.nii", window="header").pixels
    image.header["cal_min"], image.header["cal_max"] = -100.0, 300.0
    nib.save(image, tmp_path / "cal.nii")
    expected = np.clip((volume[:, :, 1].T[::-1, ::-1] + 100) / 400, 0, 1)
    np.testing.assert_allclose(load_medical_image(tmp_path / "cal.nii", window="header").pixels, expected, atol=1e-6)


def test_nifti_argument_errors():
    path = NIBABEL_DATA / "anatomical.nii"
    with pytest.raises(MedicalImageError, match=r"slice_index=25 is out of range.*25 axial slices"):
        load_medical_image(path, slice_index=25).pixels
    with pytest.raises(MedicalImageError, match=r"frame applies to multi-frame DICOM"):
        load_medical_image(path, frame=0).pixels
    with pytest.raises(MedicalImageError, match=r"slice_index applies to NIfTI volumes"):
        load_medical_image(pydicom_file("CT_small.dcm"), slice_index=0).pixels


def test_4d_nifti_is_refused():
    with pytest.raises(MedicalImageError, match=r"example4d\.nii\.gz holds 4-D data of shape \(128, 96, 24, 2\)"):
        load_medical_image(NIBABEL_DATA / "example4d.nii.gz").pixels
    with pytest.raises(MedicalImageError, match=r"4-D data"):
        load_medical_volume(NIBABEL_DATA / "example4d.nii.gz")


def test_nifti_volume_comes_back_canonical(tmp_path):
    las = NIBABEL_DATA / "anatomical.nii"
    loaded = load_medical_volume(las)
    volume, affine = loaded.values, loaded.affine
    assert volume.dtype == np.float32 and affine.dtype == np.float64
    assert nib.aff2axcodes(affine) == ("R", "A", "S")
    canonical = nib.as_closest_canonical(nib.load(las))
    np.testing.assert_array_equal(volume, canonical.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(affine, canonical.affine)
    ras_loaded = load_medical_volume(ras_copy(las, tmp_path / "ras.nii"))
    ras_volume, ras_affine = ras_loaded.values, ras_loaded.affine
    np.testing.assert_array_equal(ras_volume, volume)
    np.testing.assert_allclose(ras_affine, affine)


def test_las_nifti_volume_carries_its_source_grid():
    las = NIBABEL_DATA / "anatomical.nii"
    stored_image = nib.load(las)

    volume = load_medical_volume(las)

    assert isinstance(volume, MedicalVolume) and volume.kind == "nifti" and volume.path == las
    assert volume.spacing == (2.0, 2.0, 2.0) and volume.modality is None and volume.header_windows == ()
    assert volume.source_axcodes == ("L", "A", "S") and volume.source_shape == (33, 41, 25)
    np.testing.assert_allclose(volume.source_affine, stored_image.affine)
    # back in the file's own voxel order, without reading it again
    source = np.asarray(stored_image.dataobj, dtype=np.float32)
    np.testing.assert_array_equal(volume.to_source_layout(volume.values), source)
    with pytest.raises(MedicalImageError, match=r"shape \(41, 33, 25\) does not fit the volume of .*anatomical\.nii"):
        volume.to_source_layout(np.zeros((41, 33, 25)))


def test_volume_unit_range_min_max_window_and_header(tmp_path):
    values = np.linspace(-1000, 1000, 4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
    image = nib.Nifti1Image(values, np.eye(4))
    nib.save(image, tmp_path / "plain.nii")
    image.header["cal_min"], image.header["cal_max"] = -100.0, 300.0
    nib.save(image, tmp_path / "cal.nii")

    plain = load_medical_volume(tmp_path / "plain.nii")

    np.testing.assert_allclose(plain.unit_range(), (values + 1000) / 2000, atol=1e-6)  # over the whole volume
    np.testing.assert_allclose(plain.unit_range("abdomen"), np.clip((values + 160) / 400, 0, 1), atol=1e-6)
    with pytest.raises(MedicalImageError, match=r"window='header' but .*plain\.nii sets no display range"):
        plain.unit_range("header")
    with pytest.raises(MedicalImageError, match=r"Unknown CT window 'soft'.*plain\.nii"):
        plain.unit_range("soft")
    calibrated = load_medical_volume(tmp_path / "cal.nii")
    assert calibrated.header_windows == ((400.0, 100.0, "cal_min/cal_max"),)
    np.testing.assert_allclose(calibrated.unit_range("header"), np.clip((values + 100) / 400, 0, 1), atol=1e-6)


# ------------------------------------------------------------------------------------------------ DICOM series


def write_series(folder: Path, orientation, n_slices=6, spacing=2.5, shape=(12, 10), skip=None, slice_overrides=None):
    """A synthetic series from CT_small's header, with shuffled file names and reversed InstanceNumbers.

    Slice k holds stored values k * 1000 + row * 10 + column, so every voxel says where it came from.
    Returns {slice k: (ImagePositionPatient, stored pixels, slope, intercept)}.
    """
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    row_direction, column_direction = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(row_direction, column_direction)
    series_uid = generate_uid()
    names = [f"IM{random.Random(7).randrange(10**6):06d}_{i}" for i in range(n_slices)]
    random.Random(3).shuffle(names)
    truth = {}
    for k in range(n_slices):
        if skip is not None and k == skip:
            continue
        dataset = template.copy()
        rows, columns = shape
        pixels = (k * 1000 + np.arange(rows)[:, None] * 10 + np.arange(columns)[None, :]).astype(np.int16)
        position = np.array([-50.0, 20.0, 100.0]) + normal * spacing * k
        slope, intercept = (2.0, -1024.0) if k == 2 else (1.0, -1024.0)  # one slice rescaled differently
        dataset.SOPInstanceUID = generate_uid()
        dataset.SeriesInstanceUID = series_uid
        dataset.InstanceNumber = n_slices - k
        dataset.ImagePositionPatient = [f"{v:.4f}" for v in position]
        dataset.ImageOrientationPatient = [f"{v:.6f}" for v in orientation]
        dataset.PixelSpacing = ["0.8", "0.6"]  # row spacing, column spacing
        dataset.RescaleSlope, dataset.RescaleIntercept = str(slope), str(intercept)
        dataset.Rows, dataset.Columns = rows, columns
        dataset.PixelData = pixels.tobytes()
        for keyword, value in (slice_overrides or {}).get(k, {}).items():
            setattr(dataset, keyword, value)
        dataset.save_as(folder / names[k])
        truth[k] = (position, pixels, slope, intercept)
    return truth


@pytest.mark.parametrize(
    "orientation",
    [(1, 0, 0, 0, 1, 0), (1, 0, 0, 0, 0, -1), (0.8, 0.6, 0, 0, 0, -1)],
    ids=["axial", "coronal", "oblique"],
)
def test_dicom_series_volume_is_ordered_by_position_with_the_right_affine(tmp_path, orientation):
    truth = write_series(tmp_path / "series", orientation)
    (tmp_path / "series" / "notes.txt").write_text("not a DICOM file: skipped")
    loaded = load_medical_volume(tmp_path / "series")
    volume, affine = loaded.values, loaded.affine

    assert volume.dtype == np.float32 and sorted(volume.shape) == sorted((12, 10, 6))
    assert nib.aff2axcodes(affine) == ("R", "A", "S")
    world_to_voxel = np.linalg.inv(affine)
    row_direction, column_direction = np.array(orientation[:3], float), np.array(orientation[3:], float)
    for k, (position, pixels, slope, intercept) in truth.items():
        for row, column in ((0, 0), (11, 9), (5, 3)):
            lps = position + column * 0.6 * row_direction + row * 0.8 * column_direction
            ras = np.array([-lps[0], -lps[1], lps[2], 1.0])
            voxel = world_to_voxel @ ras
            np.testing.assert_allclose(voxel[:3], np.round(voxel[:3]), atol=1e-3)
            i, j, kk = np.round(voxel[:3]).astype(int)
            assert volume[i, j, kk] == pixels[row, column] * slope + intercept


def test_axial_dicom_series_slices_look_like_the_dicom_images(tmp_path):
    truth = write_series(tmp_path / "series", (1, 0, 0, 0, 1, 0))
    loaded = load_medical_volume(tmp_path / "series")
    volume, affine = loaded.values, loaded.affine
    assert nib.aff2axcodes(affine) == ("R", "A", "S") and volume.shape == (10, 12, 6)
    np.testing.assert_allclose(np.diag(affine)[:3], [0.6, 0.8, 2.5], atol=1e-4)
    for k, (_, pixels, slope, intercept) in truth.items():
        # Radiological display of canonical slice k == the DICOM pixel array of the k-th most inferior slice.
        np.testing.assert_array_equal(volume[:, :, k].T[::-1, ::-1], pixels * slope + intercept)


def test_dicom_series_volume_carries_modality_and_header_window(tmp_path):
    windowed = {k: {"WindowCenter": "40", "WindowWidth": "400"} for k in range(6)}
    write_series(tmp_path / "series", (1, 0, 0, 0, 1, 0), slice_overrides=windowed)
    write_series(tmp_path / "plain", (1, 0, 0, 0, 1, 0))

    volume = load_medical_volume(tmp_path / "series")

    assert volume.kind == "dicom" and volume.modality == "CT" and volume.path == tmp_path / "series"
    assert volume.header_windows == ((400.0, 40.0, ""),)
    assert volume.spacing == pytest.approx((0.6, 0.8, 2.5))
    # a series has no stored grid of its own: its source layout is the RAS volume built from it
    assert volume.source_axcodes == ("R", "A", "S") and volume.source_shape == volume.values.shape
    np.testing.assert_array_equal(volume.to_source_layout(volume.values), volume.values)
    np.testing.assert_allclose(volume.unit_range("header"), np.clip((volume.values + 160) / 400, 0, 1), atol=1e-6)
    with pytest.raises(MedicalImageError, match=r"window='header' but .*plain has no WindowCenter/WindowWidth"):
        load_medical_volume(tmp_path / "plain").unit_range("header")


def test_mask_written_back_overlays_the_volume(tmp_path):
    write_series(tmp_path / "series", (1, 0, 0, 0, 1, 0))
    loaded = load_medical_volume(tmp_path / "series")
    volume, affine = loaded.values, loaded.affine
    mask = (volume > 3000).astype(np.uint8) * 2
    written = save_mask_like(mask, affine, tmp_path / "out" / "mask.nii.gz")
    reloaded = nib.load(written)
    assert reloaded.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(reloaded.dataobj), mask)
    np.testing.assert_allclose(reloaded.affine, affine, atol=1e-5)
    with pytest.raises(MedicalImageError, match=r"mask\.png should end in \.nii or \.nii\.gz"):
        save_mask_like(mask, affine, tmp_path / "mask.png")
    with pytest.raises(MedicalImageError, match=r"classes 0\.\.255.*\[0, 300\]"):
        save_mask_like(mask.astype(np.int32) * 150, affine, tmp_path / "big.nii")
    with pytest.raises(MedicalImageError, match=r"integer class indices"):
        save_mask_like(mask + 0.5, affine, tmp_path / "half.nii")
    with pytest.raises(MedicalImageError, match=r"finite 4x4"):
        save_mask_like(mask, np.eye(3), tmp_path / "eye.nii")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({3: {"SeriesInstanceUID": "1.2.3.4"}}, r"2 different series \(SeriesInstanceUID\)"),
        ({3: {"ImageOrientationPatient": ["0", "1", "0", "0", "0", "-1"]}}, r"2 different orientations"),
        ({3: {"PixelSpacing": ["0.5", "0.5"]}}, r"2 different pixel spacings"),
    ],
)
def test_mixed_series_are_refused(tmp_path, overrides, message):
    write_series(tmp_path / "series", (1, 0, 0, 0, 1, 0), slice_overrides=overrides)
    with pytest.raises(MixedSeriesError, match=message):
        load_medical_volume(tmp_path / "series")


def test_series_with_different_image_sizes_is_refused(tmp_path):
    write_series(tmp_path / "series", (1, 0, 0, 0, 1, 0))
    write_series(tmp_path / "other", (1, 0, 0, 0, 1, 0), shape=(8, 8))
    odd = next((tmp_path / "other").iterdir())
    dataset = pydicom.dcmread(odd)
    dataset.SeriesInstanceUID = pydicom.dcmread(next((tmp_path / "series").iterdir())).SeriesInstanceUID
    dataset.save_as(tmp_path / "series" / "odd_one")
    message = r"image sizes \(Rows, Columns\).*\(12, 10\) \(6 files\).*\(8, 8\) \(1 files\)"
    with pytest.raises(MixedSeriesError, match=message):
        load_medical_volume(tmp_path / "series")


def test_series_with_a_missing_slice_is_refused(tmp_path):
    write_series(tmp_path / "series", (1, 0, 0, 0, 1, 0), skip=3)
    with pytest.raises(MixedSeriesError, match=r"slice spacing is not uniform.*missing"):
        load_medical_volume(tmp_path / "series")


def test_series_with_duplicate_positions_is_refused(tmp_path):
    write_series(tmp_path / "series", (1, 0, 0, 0, 1, 0))
    first = sorted((tmp_path / "series").iterdir())[0]
    duplicate = pydicom.dcmread(first)
    duplicate.SOPInstanceUID = generate_uid()
    duplicate.save_as(tmp_path / "series" / "copy_of_a_slice")
    with pytest.raises(MixedSeriesError, match=r"sit at the same position"):
        load_medical_volume(tmp_path / "series")


def test_volume_of_a_folder_without_dicom_or_a_single_file(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing here")
    with pytest.raises(MedicalImageError, match=r"empty holds no DICOM image files"):
        load_medical_volume(tmp_path / "empty")
    with pytest.raises(MedicalImageError, match=r"expects a NIfTI file .*, a folder of DICOM slices or a zip of one"):
        load_medical_volume(pydicom_file("CT_small.dcm"))
    with pytest.raises(MedicalImageNotFoundError, match=r"No such file or folder"):
        load_medical_volume(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------ 2-D images


def test_sixteen_bit_png_with_a_small_range_is_min_max_scaled(tmp_path):
    pixels = (1000 + np.arange(40 * 30).reshape(40, 30) % 400).astype(np.uint16)
    Image.fromarray(pixels).save(tmp_path / "xray16.png")
    assert Image.open(tmp_path / "xray16.png").mode.startswith("I")
    image = load_medical_image(tmp_path / "xray16.png").pixels
    np.testing.assert_allclose(image, (pixels - 1000.0) / 399.0, atol=1e-6)  # not pixels / 65535 (~0.02)
    windowed = load_medical_image(tmp_path / "xray16.png", window=(200, 1100)).pixels
    np.testing.assert_allclose(windowed, np.clip((pixels - 1000.0) / 200, 0, 1), atol=1e-6)


def test_eight_bit_images_are_divided_by_255(tmp_path):
    grey = (np.arange(20 * 10).reshape(20, 10) % 256).astype(np.uint8)
    rgb = np.stack([grey, 255 - grey, grey // 2], axis=-1)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(grey).save(tmp_path / "grey.bmp")
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    for name in ("grey.png", "grey.bmp"):
        np.testing.assert_allclose(load_medical_image(tmp_path / name).pixels, grey / 255.0, atol=1e-7)
    colour = load_medical_image(tmp_path / "colour.png").pixels
    assert colour.shape == (20, 10, 3)
    np.testing.assert_allclose(colour, rgb / 255.0, atol=1e-7)
    with pytest.raises(MedicalImageError, match=r"grey\.png holds display values \(8-bit display\)"):
        load_medical_image(tmp_path / "grey.png", window="lung").pixels
    with pytest.raises(MedicalImageError, match=r"no window in its header"):
        load_medical_image(tmp_path / "grey.png", window="header").pixels


def test_jpeg_loads_in_unit_range(tmp_path):
    grey = np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (16, 1))
    Image.fromarray(grey).save(tmp_path / "us.jpg", quality=95)
    image = load_medical_image(tmp_path / "us.jpg").pixels
    assert image.shape == (16, 32) and np.abs(image - grey / 255.0).max() < 0.05


def test_float_tiff_in_hounsfield_units_and_multi_page_tiff(tmp_path):
    hounsfield = np.linspace(-1000, 1000, 24 * 24, dtype=np.float32).reshape(24, 24)
    Image.fromarray(hounsfield).save(tmp_path / "slice.tif")
    np.testing.assert_allclose(
        load_medical_image(tmp_path / "slice.tif", window="abdomen").pixels,
        np.clip((hounsfield + 160) / 400, 0, 1),
        atol=1e-6,
    )
    np.testing.assert_allclose(load_medical_image(tmp_path / "slice.tif").pixels, (hounsfield + 1000) / 2000, atol=1e-6)

    pages = [Image.fromarray(np.full((8, 8), value, np.uint8)) for value in (10, 200)]
    pages[0].save(tmp_path / "pages.tif", save_all=True, append_images=pages[1:])
    assert load_medical_image(tmp_path / "pages.tif", frame=0).num_frames == 2
    assert load_medical_image(tmp_path / "pages.tif", frame=1).pixels[0, 0] == pytest.approx(200 / 255)
    with pytest.raises(MedicalImageError, match=r"holds 2 frames"):
        load_medical_image(tmp_path / "pages.tif").pixels


def test_nan_and_infinite_pixels_are_refused(tmp_path):
    values = np.ones((8, 8), np.float32)
    values[2, 3] = np.nan
    Image.fromarray(values).save(tmp_path / "nan.tif")
    with pytest.raises(MedicalImageError, match=r"nan\.tif has 1 NaN or infinite pixel values"):
        load_medical_image(tmp_path / "nan.tif").pixels
    volume = np.ones((4, 4, 3), np.float32)
    volume[0, 0, 0] = np.inf
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "inf.nii")
    with pytest.raises(MedicalImageError, match=r"inf\.nii has 1 NaN or infinite"):
        load_medical_image(tmp_path / "inf.nii").pixels


def test_empty_image_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 0), np.float32), np.eye(4)), tmp_path / "empty.nii")
    with pytest.raises(MedicalImageError, match=r"empty\.nii holds an empty image"):
        load_medical_image(tmp_path / "empty.nii").pixels


# ------------------------------------------------------------------------------------------------ bad files


def test_missing_file():
    with pytest.raises(FileNotFoundError, match=r"No such file: .*absent\.dcm"):
        load_medical_image("/nonexistent/absent.dcm").pixels
    with pytest.raises(MedicalImageNotFoundError):
        load_medical_volume("/nonexistent/absent.nii")


def test_non_dicom_file(tmp_path):
    (tmp_path / "report.dcm").write_text("this is a text report, not DICOM\n" * 20)
    with pytest.raises(UnreadableMedicalImageError, match=r"report\.dcm is not a DICOM file"):
        load_medical_image(tmp_path / "report.dcm").pixels
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    with pytest.raises(UnreadableMedicalImageError, match=r"broken\.png"):
        load_medical_image(tmp_path / "broken.png").pixels


def test_truncated_dicom(tmp_path):
    data = Path(pydicom_file("CT_small.dcm")).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableMedicalImageError, match=r"cut\.dcm.*truncated or corrupt"):
        load_medical_image(tmp_path / "cut.dcm").pixels
    with pytest.raises(UnreadableMedicalImageError, match=r"MR_truncated\.dcm.*truncated or corrupt"):
        load_medical_image(pydicom_file("MR_truncated.dcm")).pixels


@pytest.mark.parametrize(
    "name, message",
    [
        ("liver.dcm", r"liver\.dcm is a DICOM Segmentation \(SEG\)"),
        ("test-SR.dcm", r"test-SR\.dcm has no pixel data \(Comprehensive SR Storage\)"),
    ],
)
def test_dicom_objects_without_an_image(name, message):
    with pytest.raises(NoImagePixelDataError, match=message):
        load_medical_image(pydicom_file(name), frame=0).pixels


def test_missing_decoder_names_the_packages_to_install(monkeypatch):
    path = pydicom_file("693_J2KR.dcm")
    decoder = get_decoder(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    monkeypatch.setattr(decoder, "_available", {})  # as if no JPEG 2000 plugin were installed
    message = r"693_J2KR\.dcm is compressed as JPEG 2000.*pylibjpeg-openjpeg"
    with pytest.raises(MissingDicomDecoderError, match=message) as caught:
        load_medical_image(path).pixels
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, ValueError)


def test_missing_jpeg_lossless_decoder(monkeypatch):
    path = pydicom_file("JPEG-LL.dcm")
    decoder = get_decoder(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    monkeypatch.setattr(decoder, "_available", {})
    with pytest.raises(MissingDicomDecoderError, match=r"pylibjpeg \+ pylibjpeg-libjpeg.*python-gdcm"):
        load_medical_image(path).pixels


def test_folder_given_as_image(tmp_path):
    with pytest.raises(MedicalImageError, match=r"is a folder; expected one image file"):
        load_medical_image(tmp_path).pixels
