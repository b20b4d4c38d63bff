"""LGG glioma FLAIR segmentation (Buda et al. 2019, TCGA lower-grade glioma), as published on Kaggle.

Published layout ("lgg-mri-segmentation", CC BY-NC-SA): `kaggle_3m/<PATIENT>_<DATE>/` holds one 256x256 TIFF per
slice, `<PATIENT>_<DATE>_<n>.tif`, and its mask `<PATIENT>_<DATE>_<n>_mask.tif` (0 background, 255 tumour), with
n = 1, 2, ... from the first slice; `kaggle_3m/data.csv` holds genomic clusters (not used). Each image TIFF has
three channels: pre-contrast, FLAIR and post-contrast, the composition chosen by the publishers.
`SOURCE_DIR` may be `kaggle_3m` or any folder above it.

Rows: one per slice; `case_id` is the TCGA patient (`TCGA_CS_4941`), `slice_index` is n - 1. Images are kept as
the published uint8 RGB (no re-windowing: the publishers already scaled each sequence to 8 bits); masks become
0 background / 1 tumour.

Slices: `slices="foreground"` (default) keeps slices whose mask has tumour, which gives the paper's 1,373 slices
of the 3,929; `slices="all"` keeps every slice.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from ...vocabulary import SEGMENTATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import binarize_mask, encode_mask, encode_uint8_image, read_mask_file

_MASK_NAME = re.compile(r"^(?P<stem>.+)_(?P<slice>\d+)_mask\.tif$")


@dataclass
class LGGConverter(SourceConverter):
    slices: str = "foreground"

    name = "lgg"
    task = SEGMENTATION
    homepage = "https://www.kaggle.com/datasets/mateuszbuda/lgg-mri-segmentation"
    license = "CC BY-NC-SA 4.0"
    citation = "Buda M, Saha A, Mazurowski MA. Computers in Biology and Medicine 2019;109:218-225."

    def __post_init__(self):
        if self.slices not in ("foreground", "all"):
            raise ValueError(f"lgg: slices must be 'foreground' or 'all', got {self.slices!r}.")

    def label_names(self, source_dir: Path) -> list[str]:
        return ["background", "tumor"]

    def list_cases(self, source_dir: Path) -> list[Case]:
        by_study: dict[Path, list[tuple[int, str]]] = defaultdict(list)
        for mask_path in sorted(source_dir.rglob("*_mask.tif")):
            match = _MASK_NAME.match(mask_path.name)
            if match is None:
                continue
            image_path = mask_path.with_name(f"{match['stem']}_{match['slice']}.tif")
            if not image_path.is_file():
                self.reject(relative_to_source(mask_path, source_dir), f"a mask without its image {image_path.name}")
                continue
            by_study[mask_path.parent].append((int(match["slice"]), relative_to_source(image_path, source_dir)))
        cases = []
        for study_dir, slices in sorted(by_study.items()):
            # Folder `TCGA_CS_4941_19960909`: the patient is the TCGA id, the date identifies the study.
            parts = study_dir.name.split("_")
            patient = "_".join(parts[:3]) if len(parts) >= 3 else study_dir.name
            for number, image in sorted(slices):
                cases.append(Case(patient_id=patient, files={"image": image}, info={"slice_number": number}))
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        image_path = source_dir / case.files["image"]
        mask_path = image_path.with_name(image_path.stem + "_mask.tif")
        mask = binarize_mask(read_mask_file(mask_path), source=str(mask_path))
        if self.slices == "foreground" and not mask.any():
            return

        with PILImage.open(image_path) as image:
            pixels = np.asarray(image.convert("RGB"))
        if pixels.shape[:2] != mask.shape:
            raise ValueError(f"lgg: {image_path} is {pixels.shape[:2]} but its mask is {mask.shape}.")
        yield {
            "image": encode_uint8_image(pixels),
            "mask": encode_mask(mask, n_labels=2, name=str(mask_path)),
            "slice_index": case.info["slice_number"] - 1,
            "source_file": case.files["image"],
        }
