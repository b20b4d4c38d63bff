"""BTCV (Beyond the Cranial Vault) multi-organ abdominal CT segmentation, MICCAI 2015 challenge.

Published layout (Synapse syn3193805, registration required): `RawData/Training/img/img0001.nii.gz` and
`RawData/Training/label/label0001.nii.gz` (30 labelled portal-venous CTs, 512x512 x 85-198 slices, HU), plus
`RawData/Testing/img/` without labels (not converted). `SOURCE_DIR` may be `RawData`, `Training` or any folder
above them. Label values: 0 background, 1 spleen, 2 right kidney, 3 left kidney, 4 gallbladder, 5 esophagus,
6 liver, 7 stomach, 8 aorta, 9 inferior vena cava, 10 portal and splenic veins, 11 pancreas, 12 right adrenal
gland, 13 left adrenal gland.

Slices: axial (after reorientation to RAS, so image and label stay aligned whatever the stored orientation),
shown in radiological convention. `slices="foreground"` (default) keeps the axial slices with any labelled organ,
as in the TransUNet recipe that the paper's 2-D evaluation follows (training on slices through the organs;
slices above and below the abdomen are nearly all background and only dilute the Dice); `slices="all"` keeps all.

Window: `window="btcv_transunet"` (default) clips HU to [-125, 275] (width 400, level 75), the TransUNet
preprocessing, which spans fat (-100) to contrast-enhanced organs and vessels (~250) and so separates every
labelled organ; `"btcv_unetr"` ([-175, 250]) or any preset/(width, level) of `CT_WINDOW_PRESETS` can be chosen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...image_processing_vis_mae import resolve_window
from ...medical.orientation import AXIAL_AXIS, display_slice
from ...vocabulary import SEGMENTATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import encode_grey_image, encode_mask
from ..volumes import load_image_and_mask, select_slices

BTCV_LABELS = [
    "background",
    "spleen",
    "right kidney",
    "left kidney",
    "gallbladder",
    "esophagus",
    "liver",
    "stomach",
    "aorta",
    "inferior vena cava",
    "portal vein and splenic vein",
    "pancreas",
    "right adrenal gland",
    "left adrenal gland",
]
_IMAGE_NAME = re.compile(r"^img(?P<number>\d+)\.nii(\.gz)?$")


@dataclass
class BTCVConverter(SourceConverter):
    slices: str = "foreground"
    window: str | tuple[float, float] = "btcv_transunet"

    name = "btcv"
    task = SEGMENTATION
    homepage = "https://www.synapse.org/#!Synapse:syn3193805/wiki/217789"
    license = "Synapse terms of use (registration)"
    citation = "Landman B et al. MICCAI multi-atlas labeling beyond the cranial vault workshop and challenge, 2015."

    def __post_init__(self):
        resolve_window(self.window)  # fail now, not after the first volume
        if self.slices not in ("foreground", "all"):
            raise ValueError(f"btcv: slices must be 'foreground' or 'all', got {self.slices!r}.")

    def label_names(self, source_dir: Path) -> list[str]:
        return list(BTCV_LABELS)

    def list_cases(self, source_dir: Path) -> list[Case]:
        cases = []
        for image_path in sorted(source_dir.rglob("img*.nii*")):
            match = _IMAGE_NAME.match(image_path.name)
            if match is None or image_path.parent.name != "img" or "Testing" in image_path.parts:
                continue
            label_dir = image_path.parent.parent / "label"
            suffix = image_path.name[len("img") :]
            label_path = label_dir / f"label{suffix}"
            if not label_path.is_file():
                self.reject(relative_to_source(image_path, source_dir), f"no label volume {label_path.name} in label/")
                continue
            cases.append(
                Case(
                    patient_id=match["number"],
                    files={"image": relative_to_source(image_path, source_dir),
                           "mask": relative_to_source(label_path, source_dir)},
                )
            )
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        image, mask = load_image_and_mask(source_dir / case.files["image"], source_dir / case.files["mask"])
        windowed = image.unit_range(self.window)
        for index in select_slices(mask, AXIAL_AXIS, mask.shape[AXIAL_AXIS], self.slices, name=case.files["mask"]):
            yield {
                "image": encode_grey_image(display_slice(windowed, AXIAL_AXIS, index)),
                "mask": encode_mask(
                    display_slice(mask, AXIAL_AXIS, index), n_labels=len(BTCV_LABELS), name=case.files["mask"]
                ),
                "slice_index": index,
                "source_file": case.files["image"],
            }
