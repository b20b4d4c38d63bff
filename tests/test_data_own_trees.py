"""Trees in the generic layouts of a user's own data, built in the test from real images shipped in packages: CT
slices from pydicom-data (Hounsfield units), the MNI152 T1 template and its tissue maps from nilearn (MR), pydicom's
single-slice CT and MR DICOMs, and PNGs written with PIL from them. Nothing is downloaded.

(Named test_data_*.py to sit with the data tests; it defines no tests itself.)
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from test_data_support import save_nifti, save_png

from vis_mae_hf.data.demo import mni152_tissue_volumes

MNI_STRIDE = 6  # 1 mm MNI152 -> 6 mm voxels: a 33 x 39 x 32 volume, small enough to convert in a second
TISSUE_LABELS = ["background", "grey matter", "white matter", "other brain"]
CT_FILES = ("CT_small.dcm", "693_UNCR.dcm", "explicit_VR-UN.dcm", "bad_sequence.dcm")
CT_LABELS = ["background", "body", "bone"]


def packaged_dicom(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} ships in pydicom / pydicom-data, which the tests need"
    return Path(path)


# ---------------------------------------------------------------------------------------------- volumes


def mni_case(offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T1 as MR-like intensities, tissue labels 0..3, affine) of the MNI152 template sampled every 6 mm, starting
    `offset` mm in: six offsets give six different real brain volumes."""
    t1, tissue = mni152_tissue_volumes()
    grid = (slice(offset, None, MNI_STRIDE),) * 3
    affine = np.diag([MNI_STRIDE, MNI_STRIDE, MNI_STRIDE, 1.0])
    affine[:3, 3] = offset - 90.0
    return (t1[grid] * 1000.0).astype(np.float32), tissue[grid].astype(np.uint8), affine


def ct_hounsfield(name: str, size: int = 64) -> np.ndarray:
    """A real CT slice of pydicom-data in HU, subsampled to `size` x `size`."""
    dataset = pydicom.dcmread(packaged_dicom(name))
    values = dataset.pixel_array * float(dataset.get("RescaleSlope", 1)) + float(dataset.get("RescaleIntercept", 0))
    step = values.shape[0] // size
    return values[::step, ::step][:size, :size].astype(np.float32)


def ct_case(index: int) -> tuple[np.ndarray, np.ndarray]:
    """(HU volume 64 x 64 x 4, labels body/bone from its own HU) built from real CT slice `index` (mirrored for the
    cases beyond the four files); slice 0 has no labels, so that empty slices can be told apart."""
    hounsfield = ct_hounsfield(CT_FILES[index % len(CT_FILES)])
    if index >= len(CT_FILES):
        hounsfield = hounsfield[:, ::-1]
    volume = np.stack([np.roll(hounsfield, shift, axis=0) for shift in range(4)], axis=-1)
    labels = np.where(volume > 300, 2, np.where(volume > -300, 1, 0)).astype(np.uint8)
    labels[..., 0] = 0
    return volume, labels


def make_msd_mr_tree(root: Path, *, label_values=(0, 1, 2, 3), n_cases: int = 6) -> Path:
    """Medical Segmentation Decathlon layout: dataset.json with "modality" and "labels" value -> name."""
    for offset in range(n_cases):
        t1, tissue, affine = mni_case(offset)
        stored = np.asarray(label_values, dtype=np.uint8)[tissue]
        save_nifti(root / "imagesTr" / f"brain_{offset:03d}.nii.gz", t1, affine)
        save_nifti(root / "labelsTr" / f"brain_{offset:03d}.nii.gz", stored, affine)
        # the macOS copies MSD's archives carry: hidden, never cases
        (root / "imagesTr" / f"._brain_{offset:03d}.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    save_nifti(root / "imagesTs" / "brain_100.nii.gz", mni_case(5)[0])
    description = {
        "name": "MNIBrain",
        "licence": "MNI152 copyright notice",
        "reference": "Fonov et al. 2011",
        "modality": {"0": "MRI"},
        "labels": {str(value): name for value, name in zip(label_values, TISSUE_LABELS)},
        "training": [{"image": f"./imagesTr/brain_{k:03d}.nii.gz", "label": f"./labelsTr/brain_{k:03d}.nii.gz"}
                     for k in range(n_cases)],
    }
    (root / "dataset.json").write_text(json.dumps(description, indent=2))
    return root


def make_nnunet_ct_tree(root: Path, n_cases: int = 6, file_stem: str = "ct") -> Path:
    """nnU-Net v2 layout: `<case>_0000.nii.gz` images, `channel_names`, `labels` as name -> value."""
    affine = np.diag([0.8, 0.8, 5.0, 1.0])
    for index in range(n_cases):
        volume, labels = ct_case(index)
        save_nifti(root / "imagesTr" / f"{file_stem}_{index:03d}_0000.nii.gz", volume.astype(np.int16), affine)
        save_nifti(root / "labelsTr" / f"{file_stem}_{index:03d}.nii.gz", labels, affine)
    description = {
        "channel_names": {"0": "CT"},
        "labels": {name: value for value, name in enumerate(CT_LABELS)},
        "numTraining": n_cases,
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(description, indent=2))
    return root


# ---------------------------------------------------------------------------------------------- 2-D files


def mni_slice(z: int) -> tuple[np.ndarray, np.ndarray]:
    """(8-bit grey axial slice of the MNI152 T1, its brain mask 0/1), 1 mm, 197 x 233."""
    t1, tissue = mni152_tissue_volumes()
    image = np.rint(t1[:, :, z].T[::-1] * 255).astype(np.uint8)
    return image, (tissue[:, :, z].T[::-1] > 0).astype(np.uint8)


def make_pairs_tree(root: Path) -> Path:
    """images/ and masks/: MNI slices as PNG with 0/255 masks (two sites holding a file of the same name) and a
    single-slice CT DICOM with a PNG mask of its body."""
    for site, levels in (("site_a", (60, 70, 80)), ("site_b", (90, 100))):
        for number, z in enumerate(levels, start=1):
            image, brain = mni_slice(z)
            save_png(root / "images" / site / f"case{number}.png", image)
            save_png(root / "masks" / site / f"case{number}.png", brain * 255)
    (root / "images" / "ct").mkdir(parents=True)
    shutil.copy(packaged_dicom("CT_small.dcm"), root / "images" / "ct" / "chest.dcm")
    body = (ct_hounsfield("CT_small.dcm", size=128) > -300).astype(np.uint8) * 255
    save_png(root / "masks" / "ct" / "chest.png", body)
    (root / "images" / "notes.txt").write_text("not an image")
    return root


def make_class_table_tree(root: Path, *, delimiter: str = ",") -> Path:
    """A table of image files (PNG slices in class folders, two of them named alike; two real DICOMs), one label
    column, a patient column."""
    rows = []
    for cls, levels in (("benign", (60, 70, 80, 90)), ("malignant", (100, 110, 120, 130))):
        for number, z in enumerate(levels):
            name = f"{cls}/slice{number}.png"  # slice0.png exists in both class folders
            save_png(root / "images" / name, mni_slice(z)[0])
            rows.append({"path": f"images/{name}", "diagnosis": cls, "patient": f"P{z // 20}"})
    for name, cls, patient in (("CT_small.dcm", "benign", "P10"), ("MR_small.dcm", "malignant", "P11")):
        shutil.copy(packaged_dicom(name), root / "images" / name)
        rows.append({"path": f"images/{name}", "diagnosis": cls, "patient": patient})
    suffix = ".tsv" if delimiter == "\t" else ".csv"
    return write_table(root / f"labels{suffix}", rows, delimiter=delimiter)


def write_table(path: Path, rows: list[dict], *, delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path
