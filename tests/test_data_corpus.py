"""The pretraining corpus builder on a mixed folder of real DICOMs, a NIfTI volume, PNGs and a corrupt file."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from test_data_support import noise_image, pet_series, save_nifti, save_png

from vis_mae_hf.data.corpus import (
    CORPUS_TOOL,
    NOT_WALKED,
    build_corpus,
    iter_input_files,
    load_corpus,
    read_corpus_summary,
)
from vis_mae_hf.data.modality_preprocessing import (
    ModalityPreprocessing,
    letterbox,
    modality_from_path,
    read_images,
)
from vis_mae_hf.output_folders import open_output_folder


def _testdata(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} needs pydicom-data")
    return Path(path)


@pytest.fixture
def mixed_folder(tmp_path):
    root = tmp_path / "clinic_export"
    dicom = root / "patient_a"
    dicom.mkdir(parents=True)
    for name, target in (("CT_small.dcm", "ct.dcm"), ("MR_small.dcm", "mr.dcm"), ("RG3_UNCR.dcm", "IM0001"),
                         ("US1_UNCR.dcm", "us.dcm"), ("emri_small.dcm", "enhanced_mr.dcm"),
                         ("reportsi.dcm", "report.dcm")):
        shutil.copy(_testdata(name), dicom / target)
    pet_series(root / "patient_b" / "pet_series", n_slices=2)
    # truncated before its pixel data, as an interrupted copy leaves it
    (dicom / "broken.dcm").write_bytes(_testdata("CT_small.dcm").read_bytes()[:3000])
    volume = np.random.default_rng(0).gamma(2.0, 100.0, (24, 24, 6)).astype(np.float32)
    volume[..., 0] = 0  # an empty slice: dropped
    save_nifti(root / "MRI" / "brain.nii.gz", volume)
    save_png(root / "US" / "frame.png", noise_image(1, (40, 30)))
    save_png(root / "unsorted" / "photo.png", noise_image(2))  # no modality anywhere: reported, not guessed
    (root / "README.txt").write_text("export notes")
    return root


def test_corpus_tags_modalities_and_skips_bad_files(mixed_folder, tmp_path):
    output = tmp_path / "corpus"
    summary = build_corpus([mixed_folder], output, shard_size=4, progress=False)
    assert summary["files_by_modality"] == {"CT": 1, "MR": 3, "PET": 2, "XRAY": 1, "US": 2}
    # emri_small has 10 frames; the NIfTI 6 slices, one of them empty
    assert summary["images_by_modality"] == {"CT": 1, "MR": 1 + 10 + 5, "PET": 2, "XRAY": 1, "US": 2}
    skipped = {Path(entry["path"]).name: entry for entry in summary["skipped"]}
    assert set(skipped) == {"broken.dcm", "report.dcm", "photo.png"}
    assert skipped["broken.dcm"]["category"] == "unreadable or corrupt"
    assert skipped["report.dcm"]["category"] == "modality not used" and "'SR'" in skipped["report.dcm"]["reason"]
    assert skipped["photo.png"]["category"] == "modality unknown"
    assert summary["ignored_non_image_files"] == 1
    assert read_corpus_summary(output)["images"] == 22

    from datasets import Image, load_dataset

    dataset = load_dataset("parquet", data_files=sorted(str(p) for p in output.glob("shard-*.parquet")), split="train")
    assert isinstance(dataset.features["image"], Image)
    assert len(dataset) == 22
    first = dataset[0]
    assert first["image"].size == (224, 224) and first["image"].mode == "L"
    by_file = {}
    for row in dataset.remove_columns("image"):
        by_file.setdefault(Path(row["source_path"]).name, []).append(row)
    assert by_file["ct.dcm"][0]["modality"] == "CT" and by_file["IM0001"][0]["modality"] == "XRAY"
    assert by_file["IM0001"][0]["height"] == 1760  # size before letterboxing
    assert sorted(row["frame_index"] for row in by_file["brain.nii.gz"]) == [1, 2, 3, 4, 5]
    assert by_file["frame.png"][0]["modality"] == "US"

    streamed = load_corpus(output, "mr", streaming=True)
    modalities = [row["modality"] for row in streamed]
    assert modalities == ["MR"] * 16
    assert Counter(load_corpus(output)["modality"])["PET"] == 2
    build_corpus([mixed_folder / "MRI"], tmp_path / "mr_only", progress=False)
    with pytest.raises(ValueError, match="has no CT images"):
        load_corpus(tmp_path / "mr_only", "ct")


def test_corpus_resumes_after_an_interruption(mixed_folder, tmp_path):
    complete = build_corpus([mixed_folder], tmp_path / "complete", shard_size=3, progress=False)
    output = tmp_path / "resumed"
    build_corpus([mixed_folder], output, shard_size=3, progress=False)
    shards = sorted(output.glob("shard-*.json"))
    assert len(shards) >= 3
    # Interrupt: the last two shards never finished (their parquet and sidecar are gone), and a shard being written
    # left its temporary file, which the builder entered in the manifest before creating it.
    for sidecar in shards[-2:]:
        sidecar.unlink()
        sidecar.with_suffix(".parquet").unlink(missing_ok=True)
    open_output_folder(output, CORPUS_TOOL, resume=True).claim("shard-99999.parquet.tmp")
    (output / "shard-99999.parquet.tmp").write_bytes(b"partial")
    (output / "shard-99998.parquet.tmp").write_bytes(b"the user's")  # not in the manifest: never touched
    (output / "corpus_summary.json").unlink()
    stamp = shards[0].stat().st_mtime_ns
    resumed = build_corpus([mixed_folder], output, shard_size=3, progress=False)
    assert shards[0].stat().st_mtime_ns == stamp  # finished shards were not redone
    assert [path.name for path in output.glob("*.tmp")] == ["shard-99998.parquet.tmp"]
    assert (output / "shard-99998.parquet.tmp").read_bytes() == b"the user's"
    assert resumed["images_by_modality"] == complete["images_by_modality"]
    assert resumed["skipped"] == complete["skipped"]
    rows = load_corpus(output)
    reference = load_corpus(tmp_path / "complete")
    assert rows["source_path"] == reference["source_path"] and rows["frame_index"] == reference["frame_index"]

    with pytest.raises(FileExistsError, match="shard_size"):
        build_corpus([mixed_folder], output, shard_size=5, progress=False)
    # An input file appears before the resume point: resuming would misalign the shards.
    save_png(mixed_folder / "US" / "a_new_frame.png", noise_image(3))
    for sidecar in sorted(output.glob("shard-*.json"))[-1:]:
        sidecar.unlink()
    with pytest.raises(ValueError, match="inputs changed"):
        build_corpus([mixed_folder], output, shard_size=3, progress=False)


def test_worker_processes_give_the_same_corpus(mixed_folder, tmp_path):
    single = build_corpus([mixed_folder], tmp_path / "one", progress=False)
    parallel = build_corpus([mixed_folder], tmp_path / "two", num_workers=2, progress=False)
    assert single["images_by_modality"] == parallel["images_by_modality"]
    one, two = load_corpus(tmp_path / "one"), load_corpus(tmp_path / "two")
    assert one["source_path"] == two["source_path"]
    assert np.array_equal(np.asarray(one[5]["image"]), np.asarray(two[5]["image"]))


def test_modality_hints_and_walk_order(tmp_path):
    save_png(tmp_path / "b" / "scan.png", noise_image(0))
    save_png(tmp_path / "a" / "z.png", noise_image(1))
    save_png(tmp_path / "a" / "sub" / "y.png", noise_image(2))
    (tmp_path / "a" / ".hidden.png").write_bytes(b"")
    files = list(iter_input_files([tmp_path / "a", tmp_path / "b"], modality_hints={tmp_path / "b": "pet"}))
    assert [Path(f.path).relative_to(tmp_path).as_posix() for f in files] == ["a/z.png", "a/sub/y.png", "b/scan.png"]
    assert [f.modality_hint for f in files] == [None, None, "PET"]
    assert modality_from_path(Path("/data/CT_scans/liver/x.nii.gz")) == "CT"
    assert modality_from_path(Path("/data/pt_017/x.png")) is None  # a patient folder, not PET
    summary = build_corpus([tmp_path / "a"], tmp_path / "out", default_modality="MRI", progress=False)
    assert summary["images_by_modality"]["MR"] == 2


def test_linked_sub_folders_are_walked_once_and_what_is_not_walked_is_reported(tmp_path):
    """A linked sub-folder is read like any other; a link back up (a cycle), a second link to a folder already read
    and a broken link are listed as skipped, never silently dropped."""
    save_png(tmp_path / "elsewhere" / "US" / "linked.png", noise_image(0))
    save_png(tmp_path / "export" / "US" / "own.png", noise_image(1))
    (tmp_path / "export" / "b_linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "export" / "c_again").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "export" / "US" / "loop").symlink_to(tmp_path / "export", target_is_directory=True)
    (tmp_path / "export" / "dangling.png").symlink_to(tmp_path / "gone.png")
    files = list(iter_input_files([tmp_path / "export"]))
    read = [Path(f.path).relative_to(tmp_path).as_posix() for f in files if f.not_walked is None]
    assert read == ["export/US/own.png", "export/b_linked/US/linked.png"]
    not_walked = {Path(f.path).name: f.not_walked for f in files if f.not_walked is not None}
    assert set(not_walked) == {"dangling.png", "loop", "c_again"}
    assert not_walked["loop"] == (
        f"folder not walked: it is {tmp_path / 'export'}, already walked under this input (a link cycle, or a second "
        "link to one folder)"
    )
    assert not_walked["dangling.png"] == f"broken link to {tmp_path / 'gone.png'}"

    summary = build_corpus([tmp_path / "export"], tmp_path / "corpus", progress=False)
    assert summary["images_by_modality"]["US"] == 2
    assert summary["skipped_by_category"] == {NOT_WALKED: 3}
    assert {Path(entry["path"]).name for entry in summary["skipped"]} == {"dangling.png", "loop", "c_again"}


def test_ct_without_a_header_window_takes_the_corpus_window():
    """The corpus uses a CT's own header window when the file has one (693_UNCR: W100/L40) and `window` when it has
    none (CT_small): decided from the loaded image's `header_windows`, whatever the window option."""
    import pydicom
    from pydicom.pixels import apply_modality_lut

    small = pydicom.dcmread(_testdata("CT_small.dcm"))
    assert "WindowCenter" not in small
    hounsfield = apply_modality_lut(small.pixel_array, small).astype(np.float64)
    for window, (width, level) in (((400.0, 40.0), (400, 40)), ("lung", (1500, -600))):
        modality, images = read_images(_testdata("CT_small.dcm"), ModalityPreprocessing(window=window))
        assert modality == "CT" and [index for index, _ in images] == [-1]
        expected = np.clip((hounsfield - (level - width / 2)) / width, 0, 1)
        np.testing.assert_allclose(images[0][1], expected, atol=1e-6)

    head = pydicom.dcmread(_testdata("693_UNCR.dcm"))
    head_hounsfield = head.pixel_array.astype(np.float64) - 1024.0
    _, images = read_images(_testdata("693_UNCR.dcm"), ModalityPreprocessing(window="lung"))
    np.testing.assert_allclose(images[0][1], np.clip((head_hounsfield - (40 - 50)) / 100, 0, 1), atol=1e-6)


def test_letterbox_keeps_aspect_ratio():
    image = np.ones((100, 50), np.float32)
    boxed = letterbox(image, 224)
    assert boxed.shape == (224, 224) and boxed.dtype == np.uint8
    columns = np.flatnonzero(boxed[112] > 0)
    assert columns[0] == 56 and columns[-1] == 167  # 112 wide, centred
    assert boxed[:, :50].max() == 0


def test_summary_file_is_valid_json_with_options(mixed_folder, tmp_path):
    build_corpus([mixed_folder / "MRI"], tmp_path / "out", progress=False)
    summary = json.loads((tmp_path / "out" / "corpus_summary.json").read_text())
    assert summary["options"]["preprocessing"]["window"] == "abdomen"
    assert summary["shards"] == ["shard-00000.parquet"]
