"""Hostile medical input: files whose header disagrees with their pixels or with itself, series that are not whole,
and headers that declare more voxels than memory holds. Each case is built in the test from a real packaged file
(pydicom's CT_small.dcm, MR_small.dcm, RLE and Enhanced CT files, pydicom-data's 693_UNCR.dcm, nibabel's
anatomical.nii, PNGs written with PIL) by editing its header or cutting its bytes, and must be refused with a
`MedicalImageError` subclass naming the file, what is wrong and what would be right: by the Python API, and by
`vis-mae predict` as one error line per bad input while the good inputs of the same batch are still predicted.
"""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import warnings
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import save_tiny_model
from hostile import error_lines, vis_mae
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from vis_mae_hf import VisMaeForSemanticSegmentation
from vis_mae_hf.inference.inputs import output_stem
from vis_mae_hf.medical import (
    ImageTooLargeError,
    InvalidGeometryError,
    InvalidRescaleError,
    MedicalImageError,
    PixelDataMismatchError,
    UnreadableMedicalImageError,
    load_medical_image,
    load_medical_volume,
)
from vis_mae_hf.medical.limits import (
    DEFAULT_MAX_VOXELS,
    MAX_VOXELS_VARIABLE,
    max_voxels,
)

# pydicom warns about what these tests build on purpose (NaN/inf in DS values, zero padding it strips).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Invalid value for VR DS:UserWarning"),
    pytest.mark.filterwarnings("ignore:The pixel data is .* excess padding:UserWarning"),
]

ANATOMICAL_NII = Path(nib.__file__).parent / "tests" / "data" / "anatomical.nii"
SERIES_SLICES = 8
SLICE_STEP_MM = 2.5


def pydicom_file(name: str) -> Path:
    """A file shipped with pydicom or pydicom-data (a test dependency), never downloaded."""
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} should ship with pydicom or pydicom-data"
    return Path(path)


def edited_dicom(folder: Path, name: str, source: str = "CT_small.dcm", **attributes) -> Path:
    """`source` saved as `folder/name` with `attributes` set (None deletes one)."""
    dataset = pydicom.dcmread(pydicom_file(source))
    for keyword, value in attributes.items():
        if value is None:
            delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    dataset.save_as(folder / name)
    return folder / name


def write_ct_series(folder: Path, overrides: dict[int, dict] | None = None) -> list[Path]:
    """An axial series of CT_small.dcm slices (128 x 128, real pixels) 2.5 mm apart, named in slice order;
    `overrides` sets attributes of slice k. Returns the slice files, inferior to superior."""
    folder.mkdir(parents=True)
    template = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    series_uid, paths = generate_uid(), []
    for k in range(SERIES_SLICES):
        dataset = template.copy()
        dataset.SeriesInstanceUID, dataset.SOPInstanceUID = series_uid, generate_uid()
        dataset.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        dataset.ImagePositionPatient = [-80.0, -80.0, 100.0 + SLICE_STEP_MM * k]
        dataset.InstanceNumber = k + 1
        for keyword, value in (overrides or {}).get(k, {}).items():
            setattr(dataset, keyword, value)
        paths.append(folder / f"IM{k + 1:04d}")
        dataset.save_as(paths[-1])
    return paths


def cut(path: Path, keep: int) -> Path:
    """Keep the first `keep` bytes of `path` (a copy interrupted, a disk full)."""
    path.write_bytes(path.read_bytes()[:keep])
    return path


def pixel_data_offset(path: Path) -> int:
    """Where the PixelData element starts in an explicit-VR little-endian file."""
    return path.read_bytes().rindex(b"\xe0\x7f\x10\x00")


def nifti_with_header(path: Path, data_bytes: bytes | None = None, **fields) -> Path:
    """anatomical.nii with header `fields` set (`shape` and `dtype` through nibabel's setters), followed by
    `data_bytes` (default: the original voxel bytes); gzipped when `path` ends in .gz."""
    original = nib.load(ANATOMICAL_NII)
    header = original.header.copy()
    if "shape" in fields:
        header.set_data_shape(fields.pop("shape"))
    if "dtype" in fields:
        header.set_data_dtype(fields.pop("dtype"))
    for name, value in fields.items():
        header[name] = value
    buffer = io.BytesIO()
    header.write_to(buffer)
    buffer.write(b"\0" * (int(header["vox_offset"]) - buffer.tell()))
    buffer.write(
        np.asarray(original.dataobj).astype(original.get_data_dtype()).tobytes() if data_bytes is None else data_bytes
    )
    content = buffer.getvalue()
    path.write_bytes(gzip.compress(content) if path.name.endswith(".gz") else content)
    return path


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A real 8 x 8 PNG whose IHDR chunk (with a valid CRC) declares `width` x `height`: a decompression bomb's
    header on a few hundred bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def peak_allocation(function) -> tuple[BaseException | None, int]:
    """(the exception `function()` raised, the peak bytes Python allocated while it ran)."""
    tracemalloc.start()
    try:
        function()
        raised = None
    except Exception as error:  # returned for the test to assert on
        raised = error
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return raised, peak


# ---------------------------------------------------------------------------------------- DICOM: pixels vs header


def test_eight_bits_declared_on_sixteen_bit_pixels_is_refused_not_decoded_to_noise(tmp_path):
    path = edited_dicom(tmp_path, "bits8.dcm", BitsAllocated=8, BitsStored=8, HighBit=7)
    with pytest.raises(PixelDataMismatchError) as caught:
        load_medical_image(path)
    message = str(caught.value)
    for fragment in (
        str(path),
        "32768 bytes of PixelData",
        "BitsAllocated 8 / 8 = 16384 bytes",
        "16384 bytes too many",
        "Expected pixel data of the declared length",
    ):
        assert fragment in message, message


def test_bits_stored_over_bits_allocated_is_refused(tmp_path):
    path = edited_dicom(tmp_path, "bits20.dcm", BitsStored=20, HighBit=19)
    with pytest.raises(
        PixelDataMismatchError,
        match=r"bits20\.dcm has BitsStored 20 with BitsAllocated 16; "
        r"BitsStored must be between 1 and BitsAllocated",
    ):
        load_medical_image(path)


def test_more_frames_declared_than_the_native_pixel_data_hold_is_refused(tmp_path):
    path = edited_dicom(tmp_path, "frames3.dcm", source="MR_small.dcm", NumberOfFrames=3)
    with pytest.raises(
        PixelDataMismatchError,
        match=r"frames3\.dcm has 8192 bytes of PixelData.*NumberOfFrames 3 x "
        r"BitsAllocated 16 / 8 = 24576 bytes: the file is truncated or corrupt",
    ):
        load_medical_image(path, frame=1)


def test_truncated_pixel_data_is_refused(tmp_path):
    path = tmp_path / "cut.dcm"
    path.write_bytes(pydicom_file("CT_small.dcm").read_bytes())
    dataset = pydicom.dcmread(path)
    dataset.PixelData = dataset.PixelData[:-128]  # half the last row gone, the header unchanged
    dataset.save_as(path)
    with pytest.raises(
        PixelDataMismatchError,
        match=r"cut\.dcm has 32640 bytes of PixelData.*32768 bytes: the file "
        r"is truncated or corrupt",
    ):
        load_medical_image(path)


def test_zero_padding_shorter_than_a_frame_is_accepted_but_not_more_than_that(tmp_path):
    padded = pydicom_file("MR_small_padded.dcm")  # 128 zero bytes after 64 x 64 x 2 bytes, from a real writer
    np.testing.assert_array_equal(
        load_medical_image(padded).values, load_medical_image(pydicom_file("MR_small.dcm")).values
    )
    dataset = pydicom.dcmread(padded)
    dataset.PixelData = dataset.PixelData[:8192] + b"\x01" * 128  # not padding: pixels the header does not describe
    dataset.save_as(tmp_path / "tail.dcm")
    with pytest.raises(PixelDataMismatchError, match=r"tail\.dcm has 8320 bytes.*128 bytes too many"):
        load_medical_image(tmp_path / "tail.dcm")


def without_offset_table(pixel_data: bytes) -> bytes:
    """Encapsulated pixel data with an empty Basic Offset Table (allowed): frames are then told by their fragments."""
    table_length = struct.unpack("<I", pixel_data[4:8])[0]
    return pixel_data[:4] + struct.pack("<I", 0) + pixel_data[8 + table_length :]


def test_compressed_frame_count_must_match_the_offset_table(tmp_path):
    path = edited_dicom(tmp_path, "frames.dcm", source="emri_small_RLE.dcm", NumberOfFrames=12)
    with pytest.raises(
        PixelDataMismatchError,
        match=r"frames\.dcm declares NumberOfFrames 12, but its offset table "
        r"lists 10 frame\(s\): the header does not describe these pixels",
    ):
        load_medical_image(path, frame=0)


def test_compressed_frame_count_must_match_the_fragments(tmp_path):
    dataset = pydicom.dcmread(pydicom_file("MR_small_RLE.dcm"))
    dataset.PixelData, dataset.NumberOfFrames = without_offset_table(dataset.PixelData), 2
    dataset.save_as(tmp_path / "frames.dcm")
    with pytest.raises(
        PixelDataMismatchError,
        match=r"frames\.dcm declares NumberOfFrames 2, but its compressed "
        r"pixel data hold only 1 fragment\(s\)",
    ):
        load_medical_image(tmp_path / "frames.dcm", frame=1)
    dataset.NumberOfFrames = 1  # the same data without the offset table, declared right, still load
    dataset.save_as(tmp_path / "one.dcm")
    np.testing.assert_array_equal(
        load_medical_image(tmp_path / "one.dcm").values, load_medical_image(pydicom_file("MR_small_RLE.dcm")).values
    )


# ------------------------------------------------------------------------------------------------ DICOM: rescale


@pytest.mark.parametrize(
    "slope, message",
    [
        ("0", r"RescaleSlope 0: every pixel would become the intercept \(a constant image\)\. Expected a finite slope"),
        ("NaN", r"RescaleSlope nan: no value is finite\. Expected a finite slope other than 0"),
        ("inf", r"RescaleSlope inf: no value is finite\. Expected a finite slope other than 0"),
        (["1", "2"], r"RescaleSlope \[1, 2\]; expected one finite number"),
    ],
)
def test_rescale_slope_zero_or_not_finite_is_refused(tmp_path, slope, message):
    path = edited_dicom(tmp_path, "slope.dcm", source="693_UNCR.dcm", RescaleSlope=slope)
    with pytest.raises(InvalidRescaleError, match=r"slope\.dcm has " + message):
        load_medical_image(path)


def test_rescale_intercept_not_finite_is_refused(tmp_path):
    path = edited_dicom(tmp_path, "intercept.dcm", RescaleIntercept="-inf")
    with pytest.raises(InvalidRescaleError, match=r"intercept\.dcm has RescaleIntercept -inf; expected a finite"):
        load_medical_image(path)


def test_enhanced_functional_group_slope_of_zero_is_refused(tmp_path):
    dataset = pydicom.dcmread(pydicom_file("eCT_Supplemental.dcm"))
    dataset.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleSlope = "0"
    dataset.save_as(tmp_path / "enhanced.dcm")
    with pytest.raises(InvalidRescaleError, match=r"enhanced\.dcm \(functional groups of frame 1\) has RescaleSlope 0"):
        load_medical_image(tmp_path / "enhanced.dcm", frame=1)


# ------------------------------------------------------------------------------------------------ DICOM: spacing


@pytest.mark.parametrize("spacing", [["0", "0.5"], ["-0.7", "0.7"], ["NaN", "0.7"], ["inf", "inf"]])
def test_pixel_spacing_zero_negative_or_not_finite_is_refused(tmp_path, spacing):
    path = edited_dicom(tmp_path, "spacing.dcm", PixelSpacing=spacing)
    with pytest.raises(
        InvalidGeometryError,
        match=r"spacing\.dcm has PixelSpacing .*expected two finite distances in "
        r"mm greater than 0|spacing\.dcm has PixelSpacing .*expected 2 finite numbers",
    ):
        load_medical_image(path)


def test_pixel_spacing_zero_zero_means_not_known_for_a_single_image(tmp_path):
    # Some exporters write 0\0 for "unknown": a 2-D image needs no spacing, so it loads and says None.
    image = load_medical_image(edited_dicom(tmp_path, "unknown.dcm", PixelSpacing=["0", "0"]))
    assert image.pixel_spacing is None and image.pixels.shape == (128, 128)


# ------------------------------------------------------------------------------------------------ DICOM series: whole


def test_intact_series_gives_every_slice(tmp_path):
    write_ct_series(tmp_path / "series")
    volume = load_medical_volume(tmp_path / "series")
    assert volume.values.shape == (128, 128, SERIES_SLICES)
    assert volume.spacing[2] == pytest.approx(SLICE_STEP_MM)


@pytest.mark.parametrize("which", [0, SERIES_SLICES - 1], ids=["first", "last"])
@pytest.mark.parametrize("where", ["before-pixels", "inside-pixels", "inside-preamble"])
def test_series_with_a_truncated_end_slice_fails_naming_it(tmp_path, which, where):
    """Before this rule a first or last slice cut before its pixels was skipped: 7 of 8 slices, and no gap to see."""
    slices = write_ct_series(tmp_path / "series")
    keep = {
        "before-pixels": pixel_data_offset(slices[which]) - 200,
        "inside-pixels": pixel_data_offset(slices[which]) + 20000,
        "inside-preamble": 100,
    }[where]
    cut(slices[which], keep)
    message = {
        "before-pixels": r"in the series folder .* is a DICOM image \(CT Image Storage\) without pixel data: the file "
        r"is truncated before its pixels, and the volume would lack this slice",
        "inside-pixels": r"has \d+ bytes of PixelData, but its header declares .* the file is truncated or corrupt",
        "inside-preamble": r"is named like a DICOM slice but is not a DICOM file .* a truncated slice would be missing",
    }[where]
    with pytest.raises(UnreadableMedicalImageError, match=rf"{slices[which].name} {message}"):
        load_medical_volume(tmp_path / "series")


def test_series_file_cut_inside_its_meta_header_fails(tmp_path):
    slices = write_ct_series(tmp_path / "series")
    cut(slices[-1], 140)  # 'DICM' present, the rest of the meta information gone: no SOP class to say what it is
    with pytest.raises(UnreadableMedicalImageError, match=r"IM0008 in the series folder .* without pixel data"):
        load_medical_volume(tmp_path / "series")


def test_series_keeps_skipping_files_that_say_they_are_something_else(tmp_path):
    write_ct_series(tmp_path / "series")
    (tmp_path / "series" / "notes.txt").write_text("acquired after contrast")
    (tmp_path / "series" / ".DS_Store").write_bytes(b"\0" * 64)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "series" / "thumbnail.png")
    report = pydicom.dcmread(pydicom_file("test-SR.dcm"))  # a structured report: DICOM without pixel data
    report.save_as(tmp_path / "series" / "report.dcm")
    assert load_medical_volume(tmp_path / "series").values.shape[2] == SERIES_SLICES


def test_series_with_a_missing_middle_slice_is_still_refused(tmp_path):
    slices = write_ct_series(tmp_path / "series")
    slices[3].unlink()
    with pytest.raises(MedicalImageError, match=r"slice spacing is not uniform.*missing"):
        load_medical_volume(tmp_path / "series")


@pytest.mark.parametrize("which", [0, 4, SERIES_SLICES - 1])
def test_series_with_a_slope_of_zero_in_any_slice_fails_naming_it(tmp_path, which):
    slices = write_ct_series(tmp_path / "series", {which: {"RescaleSlope": "0"}})
    with pytest.raises(InvalidRescaleError, match=rf"{slices[which].name} has RescaleSlope 0"):
        load_medical_volume(tmp_path / "series")


def test_series_slice_with_eight_bits_declared_on_sixteen_bit_pixels_fails_naming_it(tmp_path):
    slices = write_ct_series(tmp_path / "series", {5: {"BitsAllocated": 8, "BitsStored": 8, "HighBit": 7}})
    with pytest.raises(PixelDataMismatchError, match=rf"{slices[5].name} has 32768 bytes of PixelData"):
        load_medical_volume(tmp_path / "series")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"PixelSpacing": ["0", "0"]}, r"has PixelSpacing 0\\0; expected two finite distances in mm greater than 0"),
        ({"PixelSpacing": ["NaN", "0.7"]}, r"has PixelSpacing nan\\0.7; expected 2 finite numbers"),
        ({"ImagePositionPatient": ["-80", "NaN", "100"]}, r"has ImagePositionPatient -80\\nan\\100; expected 3 finite"),
        (
            {"ImageOrientationPatient": ["0"] * 6},
            r"has ImageOrientationPatient 0\\0\\0\\0\\0\\0; expected two "
            r"perpendicular unit vectors",
        ),
    ],
    ids=["zero-spacing", "nan-spacing", "nan-position", "zero-orientation"],
)
def test_series_geometry_that_cannot_place_voxels_is_refused_naming_the_slice(tmp_path, overrides, message):
    slices = write_ct_series(tmp_path / "series", dict.fromkeys(range(SERIES_SLICES), overrides))
    with pytest.raises(InvalidGeometryError, match=rf"{slices[0].name} {message}"):
        load_medical_volume(tmp_path / "series")


# ------------------------------------------------------------------------------------------------ NIfTI geometry


def test_nifti_with_a_singular_sform_is_refused(tmp_path):
    path = nifti_with_header(tmp_path / "flat.nii", srow_z=[0, 0, 0, -16], sform_code=1)
    with pytest.raises(
        InvalidGeometryError,
        match=r"flat\.nii has a singular or non-finite affine .* Expected finite "
        r"voxel sizes other than 0 along three independent axes",
    ):
        load_medical_volume(path)


@pytest.mark.parametrize("pixdim", [[1, 2, 0, 2, 1, 1, 1, 1], [1, np.nan, 2, 2, 1, 1, 1, 1]], ids=["zero", "nan"])
def test_nifti_voxel_size_zero_or_not_finite_is_refused_not_made_one_millimetre(tmp_path, pixdim):
    path = nifti_with_header(tmp_path / "pixdim.nii.gz", pixdim=pixdim, qform_code=0, sform_code=0)
    with pytest.raises(
        InvalidGeometryError,
        match=r"pixdim\.nii\.gz has voxel sizes pixdim\[1:4\] = .* and no sform; "
        r"expected finite voxel sizes other than 0",
    ):
        load_medical_image(path)


# ------------------------------------------------------------------------------------------------ declared sizes


def test_default_limit_holds_a_whole_body_ct_and_is_configurable(monkeypatch):
    monkeypatch.delenv(MAX_VOXELS_VARIABLE, raising=False)
    assert max_voxels() == DEFAULT_MAX_VOXELS == 512 * 512 * 2048
    monkeypatch.setenv(MAX_VOXELS_VARIABLE, "3e9")
    assert max_voxels() == 3_000_000_000
    for bad in ("lots", "0", "-5", "1.5", "inf"):
        monkeypatch.setenv(MAX_VOXELS_VARIABLE, bad)
        with pytest.raises(ValueError, match=rf"{MAX_VOXELS_VARIABLE}={bad!r} is not a voxel count"):
            max_voxels()


def test_small_nifti_declaring_ten_gigabytes_is_refused_before_allocating(tmp_path):
    """A few kB of .nii.gz whose header says 2048 x 2048 x 600 float32: read, it would take 10 GB."""
    path = nifti_with_header(tmp_path / "huge.nii.gz", shape=(2048, 2048, 600), dtype=np.float32)
    assert path.stat().st_size < 100_000
    for load in (load_medical_volume, load_medical_image):
        raised, peak = peak_allocation(lambda: load(path))
        assert isinstance(raised, ImageTooLargeError), raised
        assert (
            f"{path} declares a header shape of 2048 x 2048 x 600 = 2,516,582,400 voxels, more than the limit"
            in str(raised)
        )
        assert f"set the environment variable {MAX_VOXELS_VARIABLE} to at least 2516582400" in str(raised)
        assert peak < 20_000_000


def test_nifti_under_the_limit_but_truncated_names_a_reason(tmp_path):
    path = nifti_with_header(tmp_path / "short.nii.gz", shape=(64, 64, 64), dtype=np.float32)
    with pytest.raises(UnreadableMedicalImageError, match=r"short\.nii\.gz is a truncated or corrupt NIfTI file: \S"):
        load_medical_volume(path)


def test_compressed_dicom_declaring_a_huge_image_is_refused_before_decoding(tmp_path):
    path = edited_dicom(tmp_path, "huge.dcm", source="MR_small_RLE.dcm", Rows=60000, Columns=60000)
    raised, peak = peak_allocation(lambda: load_medical_image(path))
    assert isinstance(raised, ImageTooLargeError), raised
    assert "huge.dcm declares Rows 60000 x Columns 60000 x NumberOfFrames 1 = 3,600,000,000 voxels" in str(raised)
    assert peak < 20_000_000


def test_the_limit_applies_to_every_format(tmp_path, monkeypatch):
    png = tmp_path / "small.png"
    Image.fromarray(np.full((30, 40), 7, np.uint8)).save(png)
    write_ct_series(tmp_path / "series")
    monkeypatch.setenv(MAX_VOXELS_VARIABLE, "1000")
    cases = [
        (
            lambda: load_medical_image(pydicom_file("CT_small.dcm")),
            "Rows 128 x Columns 128 x NumberOfFrames 1 = 16,384",
        ),
        (lambda: load_medical_image(png), "small.png declares an image of 40 x 30 pixels = 1,200 voxels"),
        (lambda: load_medical_volume(ANATOMICAL_NII), "anatomical.nii declares a header shape of 33 x 41 x 25"),
        (
            lambda: load_medical_volume(tmp_path / "series"),
            f"series declares {SERIES_SLICES} slices x Rows 128 x Columns "
            "128 = 131,072 voxels, more than the limit of 1,000",
        ),
    ]
    for load, fragment in cases:
        with pytest.raises(ImageTooLargeError) as caught:
            load()
        assert fragment in str(caught.value)
    monkeypatch.setenv(MAX_VOXELS_VARIABLE, str(128 * 128 * SERIES_SLICES))  # raised: the same files load
    assert load_medical_volume(tmp_path / "series").values.shape == (128, 128, SERIES_SLICES)
    assert load_medical_image(png).pixels.shape == (30, 40)


def deflated_dicom(path: Path, extra_zeros: int = 0) -> Path:
    """CT_small.dcm in the Deflated Explicit VR Little Endian transfer syntax, with `extra_zeros` zero bytes in a
    private element (zeros deflate about a thousandfold: a zip bomb in a DICOM file)."""
    dataset = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    dataset.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    if extra_zeros:
        dataset.add_new(0x00091010, "OB", b"\0" * extra_zeros)
    dataset.save_as(path)
    return path


def test_deflated_dicom_that_inflates_past_the_limit_is_refused_before_inflating_it(tmp_path, monkeypatch):
    genuine = deflated_dicom(tmp_path / "deflated.dcm")
    np.testing.assert_array_equal(
        load_medical_image(genuine).values, load_medical_image(pydicom_file("CT_small.dcm")).values
    )
    bomb = deflated_dicom(tmp_path / "bomb.dcm", extra_zeros=64_000_000)
    assert bomb.stat().st_size < 200_000
    monkeypatch.setenv(MAX_VOXELS_VARIABLE, str(4_000_000))  # 16 MB of inflated data at most
    raised, peak = peak_allocation(lambda: load_medical_image(bomb))
    assert isinstance(raised, ImageTooLargeError), raised
    assert "bomb.dcm is deflated and inflates to more than 16,000,000 bytes" in str(raised)
    assert peak < 20_000_000
    write_ct_series(tmp_path / "series")
    deflated_dicom(tmp_path / "series" / "IM0009", extra_zeros=64_000_000)
    with pytest.raises(ImageTooLargeError, match=r"IM0009 is deflated and inflates to more than"):
        load_medical_volume(tmp_path / "series")


def test_png_decompression_bomb_is_this_files_error(tmp_path):
    path = png_declaring(tmp_path / "bomb.png", 100_000, 100_000)
    raised, peak = peak_allocation(lambda: load_medical_image(path))
    assert isinstance(raised, ImageTooLargeError), raised
    assert "bomb.png is larger than Pillow's decompression-bomb guard allows" in str(raised)
    assert "raise PIL.Image.MAX_IMAGE_PIXELS" in str(raised)
    assert peak < 20_000_000


def test_pillow_decompression_warning_as_an_error_is_this_files_error(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 2400 pixels: Pillow warns, short of its error
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLargeError, match=r"wide\.png is larger than Pillow's decompression-bomb guard"):
            load_medical_image(path)


def test_png_over_the_limit_but_within_pillows_guard_is_refused_before_decoding(tmp_path, monkeypatch):
    path = png_declaring(tmp_path / "tall.png", 9000, 9000)  # 81 M pixels: under Pillow's guard, IDAT of 8 x 8
    monkeypatch.setenv(MAX_VOXELS_VARIABLE, str(80_000_000))
    raised, peak = peak_allocation(lambda: load_medical_image(path))
    assert isinstance(raised, ImageTooLargeError), raised
    assert "tall.png declares an image of 9000 x 9000 pixels = 81,000,000 voxels" in str(raised)
    assert peak < 20_000_000


# ------------------------------------------------------------------------------------------------ every caller


def test_corpus_builder_skips_a_refused_file_with_the_reason(tmp_path):
    from vis_mae_hf.data.modality_preprocessing import (
        ModalityPreprocessing,
        SkippedFile,
        read_images,
    )

    path = edited_dicom(tmp_path, "slope0.dcm", RescaleSlope="0")
    with pytest.raises(SkippedFile, match=r"slope0\.dcm has RescaleSlope 0"):
        read_images(path, ModalityPreprocessing())


@pytest.fixture(scope="module")
def segmentation_model(tmp_path_factory):
    return save_tiny_model(
        tmp_path_factory.mktemp("model"),
        VisMaeForSemanticSegmentation,
        "segmentation",
        id2label={0: "background", 1: "tissue"},
    )


def test_predict_reports_each_refused_input_on_one_line_and_predicts_the_others(tmp_path, capsys, segmentation_model):
    good_png = tmp_path / "good.png"
    Image.fromarray(np.tile(np.arange(24, dtype=np.uint8) * 10, (20, 1))).save(good_png)
    good_ct = tmp_path / "ct.dcm"
    good_ct.write_bytes(pydicom_file("CT_small.dcm").read_bytes())
    cut_series = write_ct_series(tmp_path / "cut_series")
    cut(cut_series[-1], pixel_data_offset(cut_series[-1]) - 200)
    write_ct_series(tmp_path / "flat_series", dict.fromkeys(range(SERIES_SLICES), {"PixelSpacing": ["0", "0"]}))
    refused = {
        edited_dicom(tmp_path, "bits8.dcm", BitsAllocated=8, BitsStored=8, HighBit=7): "16384 bytes too many",
        edited_dicom(tmp_path, "slope0.dcm", RescaleSlope="0"): "has RescaleSlope 0",
        tmp_path / "cut_series": f"{cut_series[-1]} in the series folder",
        tmp_path / "flat_series": "has PixelSpacing 0\\0; expected two finite distances",
        nifti_with_header(tmp_path / "huge.nii.gz", shape=(2048, 2048, 600), dtype=np.float32): "2,516,582,400 voxels",
        nifti_with_header(tmp_path / "flat.nii", srow_z=[0, 0, 0, -16], sform_code=1): "singular or non-finite affine",
        png_declaring(tmp_path / "bomb.png", 100_000, 100_000): "decompression-bomb guard",
    }
    inputs = [good_png, *refused, good_ct]

    status, out, err = vis_mae(
        capsys, "predict", "--model", segmentation_model, *inputs, "--output", tmp_path / "out", "--quiet"
    )

    assert status == 1
    assert "Traceback" not in err
    lines = error_lines(err, "predict")
    assert len(lines) == len(refused), err
    for path, fragment in refused.items():
        (line,) = [line for line in lines if str(path) in line]
        assert fragment in line, line
    assert f"2 of {len(inputs)} inputs predicted" in err
    assert (tmp_path / "out" / "good_mask.png").exists() and (tmp_path / "out" / "ct_mask.png").exists()
    refused_stems = tuple(f"{output_stem(path)}_" for path in refused)
    written = [path.name for path in (tmp_path / "out").iterdir()]
    assert not [name for name in written if name.startswith(refused_stems)], written  # nothing partial
