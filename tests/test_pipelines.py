"""transformers pipelines on saved VIS-MAE models and processors: image-segmentation, image-classification and
image-feature-extraction, on grey and RGB PIL images, with the models' label names."""

import logging

import numpy as np
import pytest
import torch
from conftest import save_tiny_model
from PIL import Image
from transformers import pipeline

from vis_mae_hf import (
    VisMaeForImageClassification,
    VisMaeForSemanticSegmentation,
    VisMaeImageProcessor,
    VisMaeModel,
)

SEGMENTATION_LABELS = {0: "background", 1: "grey matter", 2: "white matter"}
CLASSIFICATION_LABELS = {0: "normal", 1: "effusion", 2: "nodule"}


@pytest.fixture(scope="module")
def segmentation_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segmentation")
    return save_tiny_model(folder, VisMaeForSemanticSegmentation, "segmentation", id2label=SEGMENTATION_LABELS)


@pytest.fixture(scope="module")
def classification_model(tmp_path_factory):
    return save_tiny_model(
        tmp_path_factory.mktemp("classification"),
        VisMaeForImageClassification,
        "classification",
        id2label=CLASSIFICATION_LABELS,
    )


def grey_image(height=50, width=70) -> Image.Image:
    """A non-square grey image with structure (a bright disc on a gradient), so predictions are not constant."""
    rows, columns = np.mgrid[0:height, 0:width]
    values = 60 + columns * 1.5 + 120 * (((rows - 20) ** 2 + (columns - 40) ** 2) < 150)
    return Image.fromarray(values.clip(0, 255).astype(np.uint8), mode="L")


class TransformersLogRecords(logging.Handler):
    """Collects what transformers logs (its root logger does not propagate to pytest's caplog)."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def transformers_log():
    handler = TransformersLogRecords()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_segmentation_pipeline_accepts_vis_mae_without_an_error_log(segmentation_model, transformers_log):
    segmenter = pipeline("image-segmentation", model=segmentation_model)
    assert type(segmenter.model).__name__ == "VisMaeForSemanticSegmentation"
    assert not [m for m in transformers_log.messages if "is not supported" in m], transformers_log.messages
    # The capture does see the check's message when a model is not in the list it checks against.
    segmenter.check_model_type(["SegformerForSemanticSegmentation"])
    assert any("'VisMaeForSemanticSegmentation' is not supported" in m for m in transformers_log.messages)


def test_classification_pipeline_accepts_vis_mae_without_an_error_log(classification_model, transformers_log):
    pipeline("image-classification", model=classification_model)
    assert not [m for m in transformers_log.messages if "is not supported" in m], transformers_log.messages


def segments_by_label(results) -> dict[str, np.ndarray]:
    return {segment["label"]: np.asarray(segment["mask"]) > 0 for segment in results}


@pytest.mark.parametrize("num_channels", [3, 1])
def test_segmentation_pipeline_on_grey_and_rgb_images(tmp_path, num_channels):
    model = save_tiny_model(
        tmp_path / "model",
        VisMaeForSemanticSegmentation,
        "segmentation",
        num_channels=num_channels,
        id2label=SEGMENTATION_LABELS,
    )
    segmenter = pipeline("image-segmentation", model=model)
    image = grey_image()

    grey_segments = segments_by_label(segmenter(image))
    rgb_segments = segments_by_label(segmenter(image.convert("RGB")))

    assert grey_segments, "no segment returned"
    assert set(grey_segments) <= set(SEGMENTATION_LABELS.values())
    for mask in grey_segments.values():
        assert mask.shape == (50, 70)  # the original size, (height, width)
    # Semantic segmentation: every pixel belongs to exactly one returned class.
    np.testing.assert_array_equal(np.sum(list(grey_segments.values()), axis=0), np.ones((50, 70)))
    # An RGB copy of a grey image is the same picture: the processor maps both to the model's channels identically.
    assert set(rgb_segments) == set(grey_segments)
    for label, mask in grey_segments.items():
        np.testing.assert_array_equal(rgb_segments[label], mask)


def test_segmentation_pipeline_matches_the_model_and_processor(segmentation_model):
    segmenter = pipeline("image-segmentation", model=segmentation_model)
    image = grey_image()
    processor = VisMaeImageProcessor.from_pretrained(segmentation_model)
    with torch.no_grad():
        logits = segmenter.model(**processor(images=np.asarray(image), return_tensors="pt")).logits
    expected = processor.post_process_semantic_segmentation(logits, target_sizes=[(50, 70)])[0].numpy()
    for label, mask in segments_by_label(segmenter(image)).items():
        index = {name: i for i, name in SEGMENTATION_LABELS.items()}[label]
        np.testing.assert_array_equal(mask, expected == index)


def test_classification_pipeline_on_grey_and_rgb_images(classification_model):
    classifier = pipeline("image-classification", model=classification_model)
    image = grey_image()

    grey_scores = classifier(image, top_k=3)
    rgb_scores = classifier(image.convert("RGB"), top_k=3)

    assert sorted(result["label"] for result in grey_scores) == sorted(CLASSIFICATION_LABELS.values())
    assert sum(result["score"] for result in grey_scores) == pytest.approx(1.0, abs=1e-5)
    assert grey_scores == sorted(grey_scores, key=lambda result: -result["score"])
    by_label = {result["label"]: result["score"] for result in rgb_scores}
    for result in grey_scores:
        assert by_label[result["label"]] == pytest.approx(result["score"], abs=1e-6)


def test_feature_extraction_pipeline_gives_encoder_tokens_and_pooled_features(tmp_path):
    folder = save_tiny_model(tmp_path / "encoder", VisMaeModel, "pretraining")
    extractor = pipeline("image-feature-extraction", model=folder)
    model = extractor.model
    hidden_size = model.config.hidden_size  # 16 * 2**3
    image = grey_image()

    tokens = np.asarray(extractor(image))
    pooled = np.asarray(extractor(image.convert("RGB"), pool=True))

    assert tokens.shape == (1, (64 // 32) ** 2, hidden_size)  # a 2x2 map of the last stage at 64 px
    assert pooled.shape == (1, hidden_size)
    processor = VisMaeImageProcessor.from_pretrained(folder)
    with torch.no_grad():
        outputs = model(**processor(images=np.asarray(image), return_tensors="pt"))
    np.testing.assert_allclose(tokens, outputs.last_hidden_state.numpy(), atol=1e-5)
    np.testing.assert_allclose(pooled, outputs.pooler_output.numpy(), atol=1e-5)
