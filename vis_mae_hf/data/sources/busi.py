"""BUSI, the Breast Ultrasound Images dataset (Al-Dhabyani et al. 2020): segmentation and classification.

Published layout (Cairo University; Kaggle "breast-ultrasound-images-dataset"): `Dataset_BUSI_with_GT/` with one
folder per class, `benign/`, `malignant/`, `normal/`, holding `benign (1).png` and its mask `benign (1)_mask.png`;
images with several lesions have extra masks `benign (1)_mask_1.png`, `_mask_2.png`, which are OR-ed into one.
Masks are 0 / 255. There are no patient ids (the 780 images come from 600 women).
`SOURCE_DIR` may be `Dataset_BUSI_with_GT` or a folder above it.

Duplicates: about 19 % of BUSI images are copies or near-copies of others. Before folding, images whose
decoded pixels are identical are collapsed to one (if copies disagree on the class, all copies are dropped), and
near-copies (256-bit difference hashes of their 16x16 thumbnails at most 16 bits apart, e.g. a re-saved or
rescaled copy) share one `case_id`, so they always fall in the same fold. Both go to the conversion notes.

Images are stored as 8-bit grey (the published PNGs are grey ultrasound saved as RGB); `case_id` is the image's
name (`benign (12)`) or, for a near-copy group, the name of its first member.

- `busi_segmentation`: benign and malignant images with their lesion mask (0 background, 1 lesion): the paper's
  647 images; `include_normal=True` adds the normal images with empty masks. Column `diagnosis` keeps the class.
- `busi_classification`: every image with its class (`label`: benign, malignant, normal), the paper's 780.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from ...vocabulary import CLASSIFICATION, SEGMENTATION
from ..conversion import Case, SourceConverter, relative_to_source
from ..features import binarize_mask, encode_mask, encode_uint8_image, read_mask_file

BUSI_CLASSES = ["benign", "malignant", "normal"]
_IMAGE_NAME = re.compile(r"^(?P<cls>benign|malignant|normal) \((?P<number>\d+)\)\.png$")


def _grey_pixels(path: Path) -> np.ndarray:
    with PILImage.open(path) as image:
        return np.asarray(image.convert("L"))


def difference_hash(pixels: np.ndarray, size: int = 16) -> bytes:
    """256-bit difference hash: signs of horizontal gradients of a (size, size + 1) thumbnail."""
    thumbnail = np.asarray(
        PILImage.fromarray(pixels).resize((size + 1, size), PILImage.Resampling.LANCZOS), dtype=np.int16
    )
    return np.packbits(thumbnail[:, 1:] > thumbnail[:, :-1]).tobytes()


# Hashes at most this many bits apart (of 256) are near-copies: a re-saved or rescaled copy differs by a few bits,
# unrelated ultrasound images by about half of them.
NEAR_COPY_MAX_BITS = 16


def near_copy_groups(hashes: list[bytes], names: list[str]) -> dict[str, str]:
    """name -> name of the first member of its near-copy group (single linkage over hash distances)."""
    if not hashes:
        return {}
    bits = np.unpackbits(np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), -1), axis=1)
    signs = bits.astype(np.int32) * 2 - 1
    # Hamming distance from the dot product of +-1 codes: n_bits - 2 * distance = a . b
    distances = (bits.shape[1] - signs @ signs.T) // 2
    parent = list(range(len(names)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for first, second in zip(*np.nonzero(np.triu(distances <= NEAR_COPY_MAX_BITS, k=1))):
        low, high = sorted((root(int(first)), root(int(second))))
        parent[high] = low  # the earlier image names the group
    return {name: names[root(index)] for index, name in enumerate(names)}


@dataclass
class _BUSIImage:
    name: str
    cls: int
    image: str
    masks: list[str]


class _BUSIConverter(SourceConverter):
    homepage = "https://scholar.cu.edu.eg/?q=afahmy/pages/dataset"
    license = "CC0 1.0 (as stated by the authors)"
    citation = "Al-Dhabyani W, Gomaa M, Khaled H, Fahmy A. Data in Brief 2020;28:104863."

    def _find_images(self, source_dir: Path) -> list[_BUSIImage]:
        images = []
        for path in sorted(source_dir.rglob("*.png")):
            match = _IMAGE_NAME.match(path.name)
            if match is None or path.parent.name != match["cls"]:
                continue
            masks = sorted(path.parent.glob(f"{path.stem}_mask*.png"))
            if not masks:
                self.reject(relative_to_source(path, source_dir), f"no mask `{path.stem}_mask.png` beside it")
                continue
            images.append(
                _BUSIImage(
                    name=path.stem,
                    cls=BUSI_CLASSES.index(match["cls"]),
                    image=relative_to_source(path, source_dir),
                    masks=[relative_to_source(mask, source_dir) for mask in masks],
                )
            )
        images.sort(key=lambda item: (item.cls, int(item.name.rsplit("(", 1)[1].rstrip(")"))))
        return images

    def _deduplicated_cases(self, source_dir: Path, keep_classes: set[int]) -> list[Case]:
        images = self._find_images(source_dir)
        by_content: dict[str, list[_BUSIImage]] = {}
        near_hash: dict[str, bytes] = {}
        for item in images:
            pixels = _grey_pixels(source_dir / item.image)
            digest = hashlib.sha256(pixels.tobytes() + str(pixels.shape).encode()).hexdigest()
            by_content.setdefault(digest, []).append(item)
            near_hash.setdefault(digest, difference_hash(pixels))
        kept: list[tuple[str, _BUSIImage]] = []
        for digest, copies in by_content.items():
            classes = {copy.cls for copy in copies}
            if len(classes) > 1:
                self.note(
                    f"dropped identical images with conflicting classes: {[copy.image for copy in copies]}"
                )
                continue
            if len(copies) > 1:
                self.note(f"kept {copies[0].image}, dropped identical {[c.image for c in copies[1:]]}")
            kept.append((digest, copies[0]))
        group_of = near_copy_groups([near_hash[digest] for digest, _ in kept], [item.name for _, item in kept])
        cases = []
        for digest, item in kept:
            group = group_of[item.name]
            if group != item.name:
                self.note(f"{item.image} is a near-copy of `{group}`: same case_id")
            if item.cls not in keep_classes:
                continue
            cases.append(
                Case(
                    patient_id=group,
                    stratum=item.cls,
                    files={"image": item.image},
                    info={"masks": item.masks, "cls": item.cls},
                )
            )
        return cases


@dataclass
class BUSISegmentationConverter(_BUSIConverter):
    include_normal: bool = False

    name = "busi_segmentation"
    task = SEGMENTATION

    def label_names(self, source_dir: Path) -> list[str]:
        return ["background", "lesion"]

    def extra_columns(self) -> dict:
        from datasets import ClassLabel

        return {"diagnosis": ClassLabel(names=BUSI_CLASSES)}

    def list_cases(self, source_dir: Path) -> list[Case]:
        keep = {0, 1, 2} if self.include_normal else {0, 1}
        return self._deduplicated_cases(source_dir, keep)

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        pixels = _grey_pixels(source_dir / case.files["image"])
        mask = np.zeros(pixels.shape, dtype=np.uint8)
        for mask_file in case.info["masks"]:
            lesion = binarize_mask(read_mask_file(source_dir / mask_file), source=mask_file)
            if lesion.shape != mask.shape:
                raise ValueError(f"busi: {mask_file} is {lesion.shape}, its image is {mask.shape}.")
            mask |= lesion
        yield {
            "image": encode_uint8_image(pixels),
            "mask": encode_mask(mask, n_labels=2, name=case.info["masks"][0]),
            "slice_index": -1,
            "source_file": case.files["image"],
            "diagnosis": case.info["cls"],
        }


@dataclass
class BUSIClassificationConverter(_BUSIConverter):
    name = "busi_classification"
    task = CLASSIFICATION

    def label_names(self, source_dir: Path) -> list[str]:
        return list(BUSI_CLASSES)

    def list_cases(self, source_dir: Path) -> list[Case]:
        return self._deduplicated_cases(source_dir, {0, 1, 2})

    def iter_rows(self, case: Case, source_dir: Path) -> Iterator[dict]:
        yield {
            "image": encode_uint8_image(_grey_pixels(source_dir / case.files["image"])),
            "label": case.info["cls"],
            "slice_index": -1,
            "source_file": case.files["image"],
        }
