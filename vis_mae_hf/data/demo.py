"""Built-in demo data from real medical images shipped inside PyPI packages: nothing is downloaded.

- `load_demo_corpus()`: a small real multi-modality pretraining corpus (`datasets.Dataset`, 224x224 grey `image`,
  `modality`, ...), built with the same code as `vis-mae data corpus` from the distinct clinical images of pydicom's
  and pydicom-data's test files (CT, MR, computed radiography, ultrasound; up to 8 frames of each multi-frame
  file), 8 axial slices of the MNI152 T1 template shipped in nilearn (MR), and 8 slices of a *synthetic* FDG-PET
  series simulated from the MNI152 tissue maps (`synthetic_pet`): no real PET DICOM ships in any package, and the
  files say they are synthetic.
- `load_demo_segmentation()`: a real 2-D segmentation set (`DatasetDict` with a `train` split) of the 155 axial
  slices of the MNI152 2009 T1 template that contain brain, with tissue masks 0 background, 1 grey matter,
  2 white matter, 3 other brain (CSF, deep structures the maps give to neither), the argmax of the grey-matter,
  white-matter and "other" (1 - GM - WM) probabilities inside the template's brain mask (T1 > 0.2 of its
  maximum, nilearn's threshold). It is one averaged subject, so folds are five contiguous slabs of slices and
  label ranks are over slices.

Both are built on first use (a few seconds) and cached under `$VIS_MAE_HF_CACHE/demo/<version>` (default
`~/.cache/vis_mae_hf/demo/<version>`); later calls load the cache. Anything derived from MNI152 keeps the McConnell
Brain Imaging Centre copyright notice, in the dataset metadata and in a NOTICE file next to the cache.
Needs the `demo` extra: `pip install "vis-mae-hf[demo]"` (pydicom-data, nilearn, JPEG codecs).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.data import get_testdata_file

from ..medical import load_medical_volume
from ..medical.orientation import AXIAL_AXIS, display_slice
from ..vocabulary import MR, SEGMENTATION
from .conversion import Case, SourceConverter, convert_source, load_converted
from .corpus import CORPUS_SUMMARY_FILE, InputFile, build_corpus, load_corpus
from .features import encode_grey_image, encode_mask
from .folds import FoldAssignment, contiguous_slab_folds
from .modality_preprocessing import ModalityPreprocessing
from .synthetic_pet import VOXEL_MM, synthetic_fdg_activity, write_pet_series

# Bumped whenever the demo content, its preprocessing or the conversion format (`CONVERSION_FORMAT_VERSION`) changes,
# so an old cache is neither reused nor refused as another conversion.
DEMO_VERSION = "v3"
CACHE_ENV_VARIABLE = "VIS_MAE_HF_CACHE"

MNI152_NOTICE = """\
The MNI152 (ICBM 2009a nonlinear symmetric) template and its grey/white-matter probability maps are:
Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological Institute,
McGill University. Permission to use, copy, modify, and distribute this software and its documentation for any
purpose and without fee is hereby granted, provided that the above copyright notice appear in all copies. The
authors and McGill University make no representations about the suitability of this software for any purpose.
It is provided "as is" without express or implied warranty. The authors are not responsible for any data loss,
equipment damage, property loss, or injury to subjects or patients resulting from the use or misuse of this
software package.
References: Fonov et al., NeuroImage 47 (2009) S102 and NeuroImage 54 (2011) 313-327; Collins et al. 1999.
Shipped in nilearn (nilearn/datasets/data/mni_icbm152_*_tal_nlin_sym_09a_converted.nii.gz).
"""

PYDICOM_NOTICE = """\
DICOM test images from pydicom (MIT licence) and pydicom-data (MIT licence, pydicom contributors); see each
package for the provenance of the individual files.
"""

# Distinct clinical images among pydicom's and pydicom-data's test files (the other files re-encode these same
# pixels in other transfer syntaxes, or hold no imaging modality: SEG, SR, RT, OT, NM).
DEMO_DICOM_FILES = (
    "CT_small.dcm",  # CT 128x128, rescale to HU, no window in the header
    "693_UNCR.dcm",  # head CT 512x512 (CQ500), header window 40/100
    "explicit_VR-UN.dcm",  # pancreas CT 512x512
    "bad_sequence.dcm",  # neck CT, two header windows
    "eCT_Supplemental.dcm",  # Enhanced CT, 2 frames, rescale in the functional groups
    "MR_small.dcm",  # MR 64x64
    "MR2_UNCR.dcm",  # MR 1024x1024
    "MR-SIEMENS-DICOM-WithOverlays.dcm",  # MR 484x484
    "examples_overlay.dcm",  # abdominal MR 300x484
    "emri_small.dcm",  # Enhanced MR, 10 frames
    "RG1_UNCR.dcm",  # chest CR 1955x1841, MONOCHROME1
    "RG3_UNCR.dcm",  # extremity CR 1760x1760, MONOCHROME1
    "US1_UNCR.dcm",  # ultrasound RGB 480x640
    "OBXXXX1A.dcm",  # obstetric ultrasound, palette colour
    "gdcm-US-ALOKA-16.dcm",  # ultrasound, 16-bit palette
    "JPGLosslessP14SV1_1s_1f_8b.dcm",  # grey ultrasound 768x1024, JPEG lossless
    "color-pl.dcm",  # ultrasound RGB 120x256
    "color3d_jpeg_baseline.dcm",  # echocardiography cine, 120 frames, JPEG baseline YBR
)
DEMO_FRAMES_PER_FILE = 8
MNI152_CASE_ID = "MNI152NLin2009aSym"
TISSUE_LABELS = ["background", "grey matter", "white matter", "other brain"]


def demo_cache_dir() -> Path:
    """`$VIS_MAE_HF_CACHE/demo/<version>`, default `~/.cache/vis_mae_hf/demo/<version>`."""
    base = os.environ.get(CACHE_ENV_VARIABLE) or Path.home() / ".cache" / "vis_mae_hf"
    return Path(base).expanduser() / "demo" / DEMO_VERSION


def _nilearn_data_dir() -> Path:
    # Located, not imported: importing nilearn costs seconds and only its data files are needed.
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise ImportError(
            'The demo data need nilearn (MNI152 template) and pydicom-data: pip install "vis-mae-hf[demo]".'
        )
    return Path(spec.origin).parent / "datasets" / "data"


def mni152_file(kind: str) -> Path:
    """Path of nilearn's shipped MNI152 file: kind "t1", "gm" or "wm"."""
    path = _nilearn_data_dir() / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"
    if not path.is_file():
        raise FileNotFoundError(f"nilearn no longer ships {path.name} at {path.parent}; the demo data cannot be built.")
    return path


def _write_notice(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "NOTICE").write_text(MNI152_NOTICE + "\n" + PYDICOM_NOTICE)


def synthetic_pet_files(directory: Path) -> list[Path]:
    """The demo's synthetic FDG-PET slices (see `synthetic_pet`), written once into `directory`."""

    existing = sorted(directory.glob("pet_*.dcm"))
    if len(existing) == DEMO_FRAMES_PER_FILE:
        return existing
    t1 = load_medical_volume(mni152_file("t1"))
    grey = load_medical_volume(mni152_file("gm")).values
    white = load_medical_volume(mni152_file("wm")).values
    activity = synthetic_fdg_activity(grey / 255.0, white / 255.0, t1.values > 0.2 * t1.values.max())
    # axial levels that hold a real cross-section of brain, not the last wisps at the vertex
    per_slice = activity.reshape(-1, activity.shape[2]).sum(axis=0)
    slices_with_brain = np.flatnonzero(per_slice > 0.2 * per_slice.max())
    chosen = np.linspace(slices_with_brain[0], slices_with_brain[-1], DEMO_FRAMES_PER_FILE + 2)[1:-1].round().astype(int)
    origin = t1.affine[:3, 3] + (VOXEL_MM - 1) / 2  # centre of the first 2x2x2 block of 1 mm voxels
    return write_pet_series(activity, directory, chosen.tolist(), origin)


def demo_corpus_files() -> list:
    """The demo corpus inputs, in order: the DICOM test files, the MNI152 T1 volume (as MR), then the synthetic
    PET series (no real PET ships in any package; see `synthetic_pet`)."""


    files = []
    missing = []
    for name in DEMO_DICOM_FILES:
        path = get_testdata_file(name, download=False)  # None when pydicom-data is not installed
        if path is None:
            missing.append(name)
        else:
            files.append(InputFile(str(Path(path).resolve()), None))
    if missing:
        raise ImportError(
            f"The demo corpus needs pydicom's and pydicom-data's test files; not found: {', '.join(missing)}. "
            'Install them with: pip install "vis-mae-hf[demo]".'
        )
    files.append(InputFile(str(mni152_file("t1")), MR))
    files.extend(InputFile(str(path), None) for path in synthetic_pet_files(demo_cache_dir() / "synthetic_pet"))
    return files


def demo_corpus_sources(source_paths: list[str]) -> list[dict]:
    """Where demo-corpus images come from (for training summaries and model cards), counted from their paths."""
    groups = {
        "pydicom and pydicom-data DICOM test files": dict(license="MIT", attribution=PYDICOM_NOTICE.strip()),
        "MNI152 2009a T1 template (nilearn)": dict(
            license="MNI152 copyright notice (see NOTICE)", attribution="Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre"
        ),
        "synthetic FDG-PET simulated from MNI152 tissue maps": dict(
            license="MNI152 copyright notice (derived data)", attribution="Synthetic, not a patient scan: no real PET ships in any package"
        ),
    }
    counts = dict.fromkeys(groups, 0)
    for path in source_paths:
        if "synthetic_pet" in path:
            counts["synthetic FDG-PET simulated from MNI152 tissue maps"] += 1
        elif "mni_icbm152" in path:
            counts["MNI152 2009a T1 template (nilearn)"] += 1
        else:
            counts["pydicom and pydicom-data DICOM test files"] += 1
    return [{"name": name, "images": count, **groups[name]} for name, count in counts.items() if count]


def load_demo_corpus(*, streaming: bool = False, progress: bool = False):
    """The demo pretraining corpus (built on first call, then loaded from the cache). See the module docstring."""

    _nilearn_data_dir()
    directory = demo_cache_dir() / "corpus"
    if not (directory / CORPUS_SUMMARY_FILE).is_file():
        files = demo_corpus_files()
        _write_notice(directory.parent)
        build_corpus(
            [file.path for file in files],
            directory,
            input_files=files,
            num_workers=1,  # ~40 images: a worker pool would cost more to start than it saves
            preprocessing=ModalityPreprocessing(max_images_per_file=DEMO_FRAMES_PER_FILE),
            progress=progress,
        )
    return load_corpus(directory, streaming=streaming)


@functools.lru_cache(maxsize=1)
def mni152_tissue_volumes() -> tuple[np.ndarray, np.ndarray]:
    """(T1 in [0, 1], tissue labels 0..3), both (X, Y, Z) in RAS, from the MNI152 files shipped with nilearn."""

    t1 = load_medical_volume(mni152_file("t1")).values
    grey = load_medical_volume(mni152_file("gm")).values
    white = load_medical_volume(mni152_file("wm")).values
    t1 = t1 / t1.max()
    grey, white = grey / 255.0, white / 255.0  # shipped as uint8 probabilities
    other = np.clip(1.0 - grey - white, 0.0, 1.0)
    tissue = np.argmax(np.stack([grey, white, other]), axis=0).astype(np.int16) + 1
    brain = t1 > 0.2  # nilearn's load_mni152_brain_mask threshold
    return t1.astype(np.float32), np.where(brain, tissue, 0).astype(np.int16)


@dataclass
class MNI152TissueConverter(SourceConverter):
    """The demo segmentation set as a converter, so it shares folds, writing and caching with the real sets."""

    name = "mni152_tissue"
    task = SEGMENTATION
    homepage = "http://www.bic.mni.mcgill.ca/ServicesAtlases/ICBM152NLin2009"
    license = MNI152_NOTICE
    citation = "Fonov V et al. NeuroImage 2011;54(1):313-327. Collins DL et al. 1999."

    def description(self) -> str:
        return __doc__

    def label_names(self, source_dir: Path) -> list[str]:
        return list(TISSUE_LABELS)

    def list_cases(self, source_dir: Path) -> list[Case]:
        _, tissue = mni152_tissue_volumes()
        slices = np.flatnonzero(np.any(tissue > 0, axis=(0, 1)))
        return [
            Case(
                patient_id=MNI152_CASE_ID,
                fold_unit=f"axial{index:03d}",
                files={"t1": mni152_file("t1").name},
                info={"slice_index": int(index)},
            )
            for index in slices
        ]

    def assign_folds(self, train_cases: list[Case], *, n_folds: int, seed: int) -> FoldAssignment:
        ordered = sorted(train_cases, key=lambda case: case.info["slice_index"])
        return contiguous_slab_folds([case.fold_unit for case in ordered], n_folds=n_folds, seed=seed)

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        t1, tissue = mni152_tissue_volumes()
        index = case.info["slice_index"]
        yield {
            "image": encode_grey_image(display_slice(t1, AXIAL_AXIS, index)),
            "mask": encode_mask(display_slice(tissue, AXIAL_AXIS, index), n_labels=len(TISSUE_LABELS)),
            "slice_index": index,
            "source_file": case.files["t1"],
        }


def load_demo_segmentation(*, progress: bool = False):
    """The demo segmentation `DatasetDict` (built on first call, then loaded from the cache)."""
    _nilearn_data_dir()
    directory = demo_cache_dir() / "segmentation"
    _write_notice(directory.parent)
    convert_source(
        MNI152TissueConverter(),
        mni152_file("t1").parent,
        directory,
        seed=0,
        n_folds=5,
        progress=progress,
    )
    return load_converted(directory)
