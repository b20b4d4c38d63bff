"""The built-in demo data: real images from PyPI packages, built once, then loaded from the cache in seconds."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    pytest.importorskip("nilearn")
    pytest.importorskip("data_store", reason="pydicom-data provides most demo DICOMs")
    directory = tmp_path_factory.mktemp("vis_mae_cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("VIS_MAE_HF_CACHE", str(directory))
    yield directory
    patch.undo()


def test_demo_corpus_is_multi_modality_and_cached(demo_cache):
    from vis_mae_hf.data import load_demo_corpus
    from vis_mae_hf.data.demo import DEMO_VERSION

    corpus = load_demo_corpus()
    counts = Counter(corpus["modality"])
    assert set(counts) == {"CT", "MR", "XRAY", "US", "PET"}  # all five modality variants can be trained
    assert counts["MR"] >= 8 and counts["CT"] >= 5 and counts["XRAY"] == 2 and counts["PET"] == 8
    image = corpus[0]["image"]
    assert image.size == (224, 224) and image.mode == "L"
    assert any(path.endswith("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz") for path in corpus["source_path"])
    # the PET slices are synthetic and say so in their headers
    import pydicom

    pet_files = [p for p in corpus["source_path"] if "synthetic_pet" in p]
    assert len(pet_files) == 8
    header = pydicom.dcmread(pet_files[0], stop_before_pixels=True)
    assert header.Modality == "PT" and header.Units == "BQML" and "SYNTHETIC" in header.SeriesDescription
    notice = (demo_cache / "demo" / DEMO_VERSION / "NOTICE").read_text()
    assert "McConnell Brain Imaging Centre" in notice
    summary = demo_cache / "demo" / DEMO_VERSION / "corpus" / "corpus_summary.json"
    stamp = summary.stat().st_mtime_ns
    started = time.perf_counter()
    again = load_demo_corpus()
    assert time.perf_counter() - started < 5.0
    assert summary.stat().st_mtime_ns == stamp and len(again) == len(corpus)
    assert next(iter(load_demo_corpus(streaming=True)))["modality"] == corpus[0]["modality"]


def test_demo_segmentation_has_tissue_masks_and_slab_folds(demo_cache):
    from vis_mae_hf.data import load_demo_segmentation, read_conversion_metadata
    from vis_mae_hf.data.demo import DEMO_VERSION

    segmentation = load_demo_segmentation()
    train = segmentation["train"]
    assert len(train) > 140
    assert set(train["case_id"]) == {"MNI152NLin2009aSym"}
    order = np.argsort(train["slice_index"])
    folds = np.asarray(train["fold"])[order]
    assert (np.diff(folds) >= 0).all() and set(folds.tolist()) == set(range(5))  # contiguous slabs
    middle = train[int(order[len(order) // 2])]
    mask = np.asarray(middle["mask"])
    assert set(np.unique(mask).tolist()) == {0, 1, 2, 3}
    assert mask.shape == (233, 197)  # axial 197 x 233 mm at 1 mm, shown anterior up
    image = np.asarray(middle["image"])
    assert image[mask == 0].mean() < image[mask == 2].mean()  # white matter is bright on T1, outside is black
    metadata = read_conversion_metadata(demo_cache / "demo" / DEMO_VERSION / "segmentation")
    assert metadata["label_names"] == ["background", "grey matter", "white matter", "other brain"]
    assert "McConnell" in metadata["license"]
    started = time.perf_counter()
    load_demo_segmentation()
    assert time.perf_counter() - started < 5.0
