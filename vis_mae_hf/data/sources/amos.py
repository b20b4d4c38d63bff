"""AMOS 2022: abdominal multi-organ segmentation in CT and MR (Ji et al. 2022). The paper uses the MR part.

Published layout (Zenodo 7155725, CC BY 4.0), `amos22/`:
    dataset.json                      "labels": {"0": "background", "1": "spleen", ..., "15": "prostate/uterus"}
    imagesTr/amos_0001.nii.gz, labelsTr/amos_0001.nii.gz     training volumes and labels
    imagesVa/..., labelsVa/...                                validation volumes and labels
    imagesTs/...                                              test volumes without labels (not converted)
AMOS numbers its scans: ids 1-500 are CT, 501-600 (`amos_0507`) MR. That rule is AMOS's own, so this converter
reads AMOS's tree only (a CT by number whose values are not Hounsfield units is refused, naming the file); convert
another nnU-Net or Decathlon set with `decathlon`, which reads the modality from its dataset.json.
`SOURCE_DIR` may be `amos22` or a folder above it.
Label names are read from `dataset.json` (15 organs: spleen, kidneys, gallbladder, esophagus, liver, stomach,
aorta, postcava, pancreas, adrenal glands, duodenum, bladder, prostate/uterus).

Rows: `modalities=("MR",)` (default) converts the MR scans (the paper's 2,476 slices); `("MR", "CT")` adds CT.
`imagesTr` is the cross-validation pool and `imagesVa` the `validation` split; `modality` is a column.
Slices: axial in RAS, radiological display; `slices="foreground"` (default) keeps slices showing any organ, like
the BTCV recipe (AMOS MR volumes reach far beyond the labelled abdomen), `"all"` keeps every slice.
Intensity: MR per-volume [0.5, 99.5] percentile -> [0, 1] (no physical scale; percentiles resist the bright
outliers of fat and vessels); CT the `window` (default `btcv_transunet`, [-125, 275] HU, as for BTCV).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...medical.orientation import AXIAL_AXIS, display_slice
from ...vocabulary import CT, MR, SEGMENTATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import encode_grey_image, encode_mask
from ..volumes import (
    check_hounsfield,
    load_image_and_mask,
    percentile_unit_range,
    select_slices,
)

FIRST_MR_ID = 501
_IMAGE_NAME = re.compile(r"^amos_(?P<number>\d+)\.nii(\.gz)?$")
_PUBLISHED_SPLITS = {"Tr": "train", "Va": "validation"}


def modality_of_amos_id(number: int) -> str:
    return MR if number >= FIRST_MR_ID else CT


def _find_root(source_dir: Path) -> Path:
    for candidate in [source_dir, *sorted(path.parent for path in source_dir.rglob("dataset.json"))]:
        if (candidate / "imagesTr").is_dir():
            return candidate
    raise FileNotFoundError(f"amos: no AMOS tree (dataset.json, imagesTr/) under {source_dir}.")


@dataclass
class AMOSConverter(SourceConverter):
    modalities: tuple[str, ...] = (MR,)
    slices: str = "foreground"
    window: str | tuple[float, float] = "btcv_transunet"
    mr_percentiles: tuple[float, float] = (0.5, 99.5)

    name = "amos"
    task = SEGMENTATION
    homepage = "https://zenodo.org/records/7155725"
    license = "CC BY 4.0"
    citation = "Ji Y et al. AMOS: a large-scale abdominal multi-organ benchmark. NeurIPS Datasets and Benchmarks 2022."

    def __post_init__(self):
        self.modalities = tuple(self.modalities)
        self.mr_percentiles = tuple(self.mr_percentiles)
        if not self.modalities or not set(self.modalities) <= {MR, CT}:
            raise ValueError(f"amos: modalities must be a non-empty subset of ('MR', 'CT'), got {self.modalities!r}.")
        if self.slices not in ("foreground", "all"):
            raise ValueError(f"amos: slices must be 'foreground' or 'all', got {self.slices!r}.")

    def label_names(self, source_dir: Path) -> list[str]:
        dataset_json = _find_root(source_dir) / "dataset.json"
        if not dataset_json.is_file():
            raise FileNotFoundError(f"amos: {dataset_json} is missing; it names the label values.")
        labels = json.loads(dataset_json.read_text()).get("labels")
        if not isinstance(labels, dict) or not labels:
            raise ValueError(f"amos: {dataset_json} has no `labels` mapping.")
        values = sorted(int(key) for key in labels)
        if values != list(range(len(values))):
            raise ValueError(f"amos: {dataset_json} label values {values} are not 0..K.")
        return [str(labels[str(value)]) for value in values]

    def extra_columns(self) -> dict:
        from datasets import Value

        return {"modality": Value("string")}

    def list_cases(self, source_dir: Path) -> list[Case]:
        root = _find_root(source_dir)
        cases = []
        for published, split in _PUBLISHED_SPLITS.items():
            image_dir = root / f"images{published}"
            if not image_dir.is_dir():
                continue
            for image_path in sorted(image_dir.iterdir()):
                match = _IMAGE_NAME.match(image_path.name)
                if match is None:
                    continue
                modality = modality_of_amos_id(int(match["number"]))
                if modality not in self.modalities:
                    continue
                label_path = root / f"labels{published}" / image_path.name
                if not label_path.is_file():
                    self.reject(
                        relative_to_source(image_path, source_dir), f"no labels {label_path.name} in labels{published}/"
                    )
                    continue
                cases.append(
                    Case(
                        patient_id=f"amos_{match['number']}",
                        split=split,
                        files={"image": relative_to_source(image_path, source_dir),
                               "mask": relative_to_source(label_path, source_dir)},
                        info={"modality": modality},
                    )
                )
        return cases

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        image, mask = load_image_and_mask(source_dir / case.files["image"], source_dir / case.files["mask"])
        modality = case.info["modality"]
        if modality == MR:
            scaled = percentile_unit_range(image.values, *self.mr_percentiles)
        else:
            check_hounsfield(image.values, name=case.files["image"], declared_by="AMOS's numbering (ids 1-500)")
            scaled = image.unit_range(self.window)
        n_labels = len(self.label_names(source_dir))
        for index in select_slices(mask, AXIAL_AXIS, mask.shape[AXIAL_AXIS], self.slices, name=case.files["mask"]):
            yield {
                "image": encode_grey_image(display_slice(scaled, AXIAL_AXIS, index)),
                "mask": encode_mask(
                    display_slice(mask, AXIAL_AXIS, index), n_labels=n_labels, name=case.files["mask"]
                ),
                "slice_index": index,
                "source_file": case.files["image"],
                "modality": modality,
            }
