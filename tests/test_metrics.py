"""Tests of vis_mae_hf.metrics: hand-computed cases, conventions, agreement with scikit-learn (and MONAI when
installed), the Trainer glue and the offline `evaluate` wrappers."""

import inspect
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.preprocessing import label_binarize
from transformers import EvalPrediction

from vis_mae_hf.metrics import (
    SegmentationOverlapAccumulator,
    classification_auc,
    classification_compute_metrics,
    segmentation_compute_metrics,
    segmentation_logits_to_label_maps,
    segmentation_overlap,
)

# ----------------------------------------------------------------------------------------------------------------
# Segmentation: hand-computed values


def test_single_image_three_classes_by_hand():
    predictions = np.array([[[0, 1], [1, 2]]])
    references = np.array([[[0, 1], [2, 2]]])
    # class 0: TP 1 (pixel (0,0)), FP 0, FN 0                 -> dice 1, precision 1, recall 1
    # class 1: TP 1 ((0,1)), FP 1 ((1,0) predicted 1, is 2), FN 0 -> dice 2/3, precision 1/2, recall 1
    # class 2: TP 1 ((1,1)), FP 0, FN 1 ((1,0))                -> dice 2/3, precision 1, recall 1/2
    result = segmentation_overlap(predictions, references, num_labels=3, id2label={0: "bg", 1: "liver", 2: "spleen"})
    assert result["dice/bg"] == 1.0
    assert result["dice/liver"] == pytest.approx(2 / 3, abs=1e-15)
    assert result["precision/liver"] == 0.5 and result["recall/liver"] == 1.0
    assert result["precision/spleen"] == 1.0 and result["recall/spleen"] == 0.5
    # means over the foreground classes only (default include_background=False)
    assert result["dice_mean"] == pytest.approx(2 / 3, abs=1e-15)
    assert result["precision_mean"] == 0.75 and result["recall_mean"] == 0.75
    assert result["skipped_classes"] == [] and result["num_units"] == 1

    with_background = segmentation_overlap(predictions, references, num_labels=3, include_background=True)
    assert with_background["dice_mean"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3, abs=1e-15)  # 7/9


def _three_binary_images():
    """4x4 binary masks; images 0 (case "p1"), 1 and 2 (case "p2")."""
    references = np.zeros((3, 4, 4), dtype=np.int64)
    predictions = np.zeros((3, 4, 4), dtype=np.int64)
    references[0, :2, :2] = 1  # 4 pixels, predicted exactly:         TP 4
    predictions[0, :2, :2] = 1
    references[1, 0, 0] = 1  # 1 pixel, predicted one pixel elsewhere: TP 0, FP 1, FN 1
    predictions[1, 3, 3] = 1
    references[2, 1, 1:3] = 1  # 2 pixels, predicted exactly:          TP 2
    predictions[2, 1, 1:3] = 1
    return predictions, references, ["p1", "p2", "p2"]


def test_pooling_per_image_per_volume_global_give_their_own_numbers():
    predictions, references, case_ids = _three_binary_images()
    # per image: dice 1, 0, 1 -> mean 2/3
    per_image = segmentation_overlap(predictions, references, 2, pooling="per_image")
    assert per_image["dice_mean"] == pytest.approx(2 / 3, abs=1e-15)
    assert per_image["num_units"] == 3
    # per volume: p1 -> 1; p2 -> TP 2, FP 1, FN 1 -> 4/6; mean (1 + 2/3) / 2 = 5/6
    per_volume = segmentation_overlap(predictions, references, 2, pooling="per_volume", case_ids=case_ids)
    assert per_volume["dice_mean"] == pytest.approx(5 / 6, abs=1e-15)
    assert per_volume["num_units"] == 2
    # global: TP 6, FP 1, FN 1 -> 12/14
    pooled = segmentation_overlap(predictions, references, 2, pooling="global")
    assert pooled["dice_mean"] == pytest.approx(6 / 7, abs=1e-15)
    assert pooled["precision_mean"] == pytest.approx(6 / 7, abs=1e-15)
    assert pooled["num_units"] == 1
    # Slices of one case need not be contiguous.
    order = [1, 0, 2]
    shuffled = segmentation_overlap(
        predictions[order], references[order], 2, pooling="per_volume", case_ids=[case_ids[i] for i in order]
    )
    assert shuffled["dice_mean"] == per_volume["dice_mean"]


def test_volumes_per_image_equal_their_slices_pooled_per_volume():
    rng = np.random.default_rng(0)
    references = rng.integers(0, 3, size=(2, 5, 6, 6))
    predictions = np.where(rng.random((2, 5, 6, 6)) < 0.7, references, rng.integers(0, 3, size=(2, 5, 6, 6)))
    volumes = segmentation_overlap(predictions, references, 3, pooling="per_image")
    slices = segmentation_overlap(
        predictions.reshape(10, 6, 6),
        references.reshape(10, 6, 6),
        3,
        pooling="per_volume",
        case_ids=[0] * 5 + [1] * 5,
    )
    assert volumes == slices


def _empty_mask_images():
    """K=4. Image 0: class 1 exact, class 2 absent from both. Image 1: class 1 absent from both, class 2 one false
    positive pixel (reference empty). Class 3 never appears anywhere."""
    references = np.zeros((2, 3, 3), dtype=np.int64)
    predictions = np.zeros((2, 3, 3), dtype=np.int64)
    references[0, 0, :2] = 1
    predictions[0, 0, :2] = 1
    predictions[1, 2, 2] = 2
    return predictions, references


def test_empty_mask_skip_leaves_absent_classes_out():
    predictions, references = _empty_mask_images()
    result = segmentation_overlap(predictions, references, 4, empty_mask="skip")
    # class 1: [1, NaN] -> 1 over 1 scored image; class 2: [NaN, 0] -> 0 (a false positive scores 0)
    assert result["dice/1"] == 1.0 and result["scored_units/1"] == 1
    assert result["dice/2"] == 0.0 and result["scored_units/2"] == 1
    assert result["precision/2"] == 0.0
    assert result["recall/2"] == 0.0  # 0/0 with a non-empty prediction -> zero_division (0.0)
    assert math.isnan(result["dice/3"]) and result["scored_units/3"] == 0
    assert result["skipped_classes"] == ["3"]
    assert result["dice_mean"] == 0.5  # classes 1 and 2; class 3 skipped


def test_empty_mask_one_counts_absent_classes_as_perfect():
    predictions, references = _empty_mask_images()
    result = segmentation_overlap(predictions, references, 4, empty_mask="one")
    # class 1: [1, 1]; class 2: [1, 0] -> 0.5; class 3: [1, 1]
    assert result["dice/1"] == 1.0 and result["dice/2"] == 0.5 and result["dice/3"] == 1.0
    assert result["recall/3"] == 1.0 and result["precision/3"] == 1.0
    assert result["skipped_classes"] == []
    assert result["dice_mean"] == pytest.approx(2.5 / 3, abs=1e-15)


def test_zero_division_nan_leaves_undefined_precision_and_recall_out():
    predictions, references = _empty_mask_images()
    predictions[0, 0, :2] = 0  # image 0 now misses class 1 entirely: dice 0, recall 0, precision 0/0
    result = segmentation_overlap(predictions, references, 4, zero_division=float("nan"))
    assert result["dice/1"] == 0.0 and result["recall/1"] == 0.0
    assert math.isnan(result["precision/1"])  # only unit has an empty prediction
    assert math.isnan(result["recall/2"])  # only unit has an empty reference
    assert result["precision/2"] == 0.0
    assert result["precision_mean"] == 0.0  # class 2 only; class 1's NaN is left out
    default = segmentation_overlap(predictions, references, 4)
    assert default["precision/1"] == 0.0 and default["recall/2"] == 0.0


def test_ignore_index_pixels_are_excluded_whatever_is_predicted():
    references = np.array([[[1, 1, 255], [0, 0, 255]]])
    predictions = np.array([[[1, 0, 1], [0, 0, 200]]])  # 200 sits on an ignored pixel: not an error
    result = segmentation_overlap(predictions, references, 2, ignore_index=255)
    # kept pixels: refs [1,1,0,0], preds [1,0,0,0] -> class 1: TP 1, FN 1 -> dice 2/3
    assert result["dice/1"] == pytest.approx(2 / 3, abs=1e-15)
    assert result["precision/1"] == 1.0 and result["recall/1"] == 0.5
    with pytest.raises(ValueError, match=r"`references` holds values 255"):
        segmentation_overlap(predictions, references, 2, ignore_index=None)
    with pytest.raises(ValueError, match="also a class index"):
        segmentation_overlap(predictions, references, 2, ignore_index=1)


def test_accumulator_batches_and_torch_inputs_match_one_call():
    predictions, references, case_ids = _three_binary_images()
    accumulator = SegmentationOverlapAccumulator(2)
    accumulator.update(torch.from_numpy(predictions[:2]), torch.from_numpy(references[:2]), case_ids=case_ids[:2])
    accumulator.update(predictions[2:], references[2:], case_ids=case_ids[2:])
    for pooling in ("per_image", "per_volume", "global"):
        expected = segmentation_overlap(
            predictions, references, 2, pooling=pooling, case_ids=case_ids if pooling == "per_volume" else None
        )
        assert accumulator.compute(pooling=pooling) == expected


def test_images_of_different_sizes_can_be_passed_as_a_list():
    predictions, references, _ = _three_binary_images()
    small_prediction = np.ones((2, 3), dtype=np.int64)
    small_reference = np.ones((2, 3), dtype=np.int64)
    result = segmentation_overlap(
        [*predictions, small_prediction], [*references, small_reference], 2, pooling="per_image"
    )
    assert result["dice_mean"] == pytest.approx(3 / 4, abs=1e-15)  # dice 1, 0, 1, 1


def test_segmentation_input_errors_name_the_problem():
    predictions, references, _ = _three_binary_images()
    with pytest.raises(ValueError, match="integer class indices.*float"):
        segmentation_overlap(predictions.astype(np.float32), references, 2)
    with pytest.raises(ValueError, match="one more axis"):
        segmentation_overlap(np.zeros((3, 2, 4, 4), dtype=np.int64), references, 2)
    with pytest.raises(ValueError, match=r"`predictions` holds values 5"):
        segmentation_overlap(np.full_like(predictions, 5), references, 2)
    with pytest.raises(ValueError, match="per_volume.*case_ids"):
        segmentation_overlap(predictions, references, 2, pooling="per_volume")
    with pytest.raises(ValueError, match="`id2label` names no class for indices \\[1\\]"):
        segmentation_overlap(predictions, references, 2, id2label={0: "background"})
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        segmentation_overlap(predictions, references, 2, pooling="per_patient")
    with pytest.raises(ValueError, match="`empty_mask` must be one of"):
        segmentation_overlap(predictions, references, 2, empty_mask="zero")
    accumulator = SegmentationOverlapAccumulator(2)
    with pytest.raises(ValueError, match="item 1"):
        accumulator.update(predictions[:2], np.stack([references[0], np.full((4, 4), 7)]))
    assert accumulator.num_items == 0  # a rejected batch adds nothing


# ----------------------------------------------------------------------------------------------------------------
# Segmentation: agreement with reference implementations


def test_global_dice_equals_sklearn_f1_and_precision_recall_match():
    rng = np.random.default_rng(1)
    references = rng.integers(0, 4, size=(6, 16, 16))
    predictions = np.where(rng.random(references.shape) < 0.6, references, rng.integers(0, 4, size=references.shape))
    result = segmentation_overlap(predictions, references, 4, pooling="global", include_background=True)
    flat_reference, flat_prediction = references.ravel(), predictions.ravel()
    labels = list(range(4))
    expected_dice = f1_score(flat_reference, flat_prediction, labels=labels, average=None)
    expected_precision = precision_score(flat_reference, flat_prediction, labels=labels, average=None)
    expected_recall = recall_score(flat_reference, flat_prediction, labels=labels, average=None)
    for label in labels:
        assert result[f"dice/{label}"] == pytest.approx(expected_dice[label], abs=1e-12)
        assert result[f"precision/{label}"] == pytest.approx(expected_precision[label], abs=1e-12)
        assert result[f"recall/{label}"] == pytest.approx(expected_recall[label], abs=1e-12)
    assert result["dice_mean"] == pytest.approx(expected_dice.mean(), abs=1e-12)

    # Binary masks, per image: Dice == F1 of each image's flattened mask.
    binary_references = (references == 1).astype(np.int64)
    binary_predictions = (predictions == 1).astype(np.int64)
    per_image = segmentation_overlap(binary_predictions, binary_references, 2)
    expected = np.mean([f1_score(r.ravel(), p.ravel()) for p, r in zip(binary_predictions, binary_references)])
    assert per_image["dice_mean"] == pytest.approx(expected, abs=1e-12)


def test_per_image_dice_matches_monai_when_every_class_is_present():
    monai_metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(2)
    references = rng.integers(0, 3, size=(4, 12, 12))
    predictions = np.where(rng.random(references.shape) < 0.7, references, rng.integers(0, 3, size=references.shape))
    assert all(set(np.unique(image)) == {0, 1, 2} for image in references)  # MONAI gives NaN for empty references
    one_hot = lambda labels: torch.nn.functional.one_hot(torch.from_numpy(labels), 3).permute(0, 3, 1, 2)  # noqa: E731
    dice_metric = monai_metrics.DiceMetric(include_background=False, reduction="mean_batch")
    dice_metric(y_pred=one_hot(predictions), y=one_hot(references))
    per_class = dice_metric.aggregate().numpy()
    result = segmentation_overlap(predictions, references, 3, pooling="per_image")
    assert [result["dice/1"], result["dice/2"]] == pytest.approx(per_class.tolist(), abs=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Classification


def test_binary_auc_by_hand():
    references = np.array([0, 0, 1, 1])
    probabilities = np.array([0.1, 0.4, 0.35, 0.8])
    result = classification_auc(probabilities, references, from_logits=False)
    # ROC: of the 4 (positive, negative) pairs, only (0.35, 0.4) is mis-ordered -> 3/4.
    assert result["roc_auc"] == 0.75
    # PR: thresholds 0.8 (P=1, R=1/2), 0.4 (P=1/2, R=1/2), 0.35 (P=2/3, R=1) -> AP = 1/2*1 + 1/2*2/3 = 5/6.
    assert result["pr_auc"] == pytest.approx(5 / 6, abs=1e-15)
    # Probability > 0.5 predicts class 1: predictions [0, 0, 0, 1] -> 3 of 4 right.
    assert result["accuracy"] == 0.75
    assert result["excluded_classes"] == [] and result["num_samples"] == 4


def test_binary_two_column_logits_rank_by_margin_without_softmax_saturation():
    # Margins l1 - l0 are 40, 50, 1, 0. Margins 40 and 50 both give softmax probability exactly 1.0 in float64, and
    # the class-1 logits alone (50, 50, 3, -3) tie too: either shortcut ties a negative with a positive.
    logits = np.array([[10.0, 50.0], [0.0, 50.0], [2.0, 3.0], [-3.0, -3.0]])
    references = np.array([0, 1, 1, 0])
    probabilities = torch.softmax(torch.from_numpy(logits), dim=1)[:, 1].numpy()
    assert roc_auc_score(references, probabilities) == 0.625  # the tie costs half a pair
    result = classification_auc(logits, references)
    # Pairs (pos, neg): (50, 40) ok, (50, 0) ok, (1, 40) wrong, (1, 0) ok -> 3/4
    assert result["roc_auc"] == 0.75
    # argmax [1, 1, 1, 0] (the tie in the last row goes to class 0) vs [0, 1, 1, 0] -> 3/4
    assert result["accuracy"] == 0.75


def test_multi_class_matches_sklearn_one_vs_rest_macro():
    rng = np.random.default_rng(3)
    references = np.repeat(np.arange(4), 10)
    logits = rng.normal(size=(40, 4)) + 1.5 * np.eye(4)[references]
    probabilities = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    result = classification_auc(torch.from_numpy(logits).float(), references)
    assert result["roc_auc"] == pytest.approx(
        roc_auc_score(references, probabilities, multi_class="ovr", average="macro"), abs=1e-6
    )
    binarized = label_binarize(references, classes=range(4))
    expected_pr_auc = average_precision_score(binarized, probabilities, average="macro")
    assert result["pr_auc"] == pytest.approx(expected_pr_auc, abs=1e-6)
    for label in range(4):
        expected = roc_auc_score(binarized[:, label], probabilities[:, label])
        assert result[f"roc_auc/{label}"] == pytest.approx(expected, abs=1e-6)
    assert result["accuracy"] == np.mean(logits.argmax(1) == references)
    # Probabilities in, same areas out.
    from_probabilities = classification_auc(probabilities, references, from_logits=False)
    assert from_probabilities["roc_auc"] == pytest.approx(result["roc_auc"], abs=1e-6)


def test_multi_class_without_positives_of_a_class_excludes_it_and_says_so():
    rng = np.random.default_rng(4)
    references = np.array([0, 1, 2] * 6)  # class 3 never occurs in this fold
    logits = rng.normal(size=(18, 4))
    names = {0: "normal", 1: "benign", 2: "malignant", 3: "other"}
    result = classification_auc(logits, references, id2label=names)
    assert result["excluded_classes"] == ["other"]
    assert math.isnan(result["roc_auc/other"]) and math.isnan(result["pr_auc/other"])
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = [roc_auc_score(references == c, log_probabilities[:, c]) for c in range(3)]
    assert result["roc_auc"] == pytest.approx(np.mean(expected), abs=1e-12)
    assert result["roc_auc/benign"] == pytest.approx(expected[1], abs=1e-12)


def test_multi_label_matches_sklearn_and_excludes_classes_without_positives_or_negatives():
    rng = np.random.default_rng(5)
    references = (rng.random((30, 5)) < 0.4).astype(np.int64)
    references[:, 3] = 0  # no positives
    references[:, 4] = 1  # no negatives
    logits = rng.normal(size=(30, 5)) + 2.0 * references
    result = classification_auc(logits, references, problem_type="multi_label_classification")
    assert result["excluded_classes"] == ["3", "4"]
    expected_roc_auc = roc_auc_score(references[:, :3], logits[:, :3], average="macro")
    assert result["roc_auc"] == pytest.approx(expected_roc_auc, abs=1e-12)
    assert result["pr_auc"] == pytest.approx(
        average_precision_score(references[:, :3], logits[:, :3], average="macro"), abs=1e-12
    )
    assert "accuracy" not in result
    # Sigmoid probabilities rank exactly as the logits.
    probabilities = 1 / (1 + np.exp(-logits))
    same = classification_auc(probabilities, references, problem_type="multi_label_classification", from_logits=False)
    assert same["roc_auc"] == pytest.approx(result["roc_auc"], abs=1e-12)


def test_binary_fold_with_one_class_gives_nan_and_names_it():
    result = classification_auc(np.array([0.2, 0.9, 0.4]), np.array([0, 0, 0]), id2label={0: "healthy", 1: "tear"})
    assert math.isnan(result["roc_auc"]) and math.isnan(result["pr_auc"])
    assert result["excluded_classes"] == ["tear"]


def test_classification_input_errors_name_the_problem():
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        classification_auc(np.array([[2.0, -1.0], [0.5, 0.5]]), np.array([0, 1]), from_logits=False)
    with pytest.raises(ValueError, match="rows must sum to 1"):
        classification_auc(np.array([[0.2, 0.2, 0.2], [0.5, 0.3, 0.2]]), np.array([0, 1]), from_logits=False)
    with pytest.raises(ValueError, match="outside 0..2"):
        classification_auc(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="must be 0 or 1"):
        classification_auc(np.zeros((2, 2)), np.array([[0.5, 1], [0, 1]]), problem_type="multi_label_classification")
    with pytest.raises(ValueError, match="NaN or infinite"):
        classification_auc(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="`problem_type` must be one of"):
        classification_auc(np.zeros(2), np.array([0, 1]), problem_type="regression")


# ----------------------------------------------------------------------------------------------------------------
# Trainer glue


def test_logits_are_resized_to_label_size_before_argmax():
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1, :, 1] = 4.0  # class 1 wins in the right column
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    label_maps = segmentation_logits_to_label_maps((logits, "hidden states"), labels)
    assert label_maps.shape == (1, 4, 4) and label_maps.dtype == torch.int8  # gathered by NCCL and gloo alike
    expected = torch.nn.functional.interpolate(logits, size=(4, 4), mode="bilinear", align_corners=False).argmax(1)
    assert torch.equal(label_maps.long(), expected)
    assert label_maps[0, :, 3].eq(1).all() and label_maps[0, :, 0].eq(0).all()
    volume_logits = torch.randn(2, 3, 2, 3, 3)
    assert segmentation_logits_to_label_maps(volume_logits, torch.zeros(2, 4, 6, 6)).shape == (2, 4, 6, 6)
    many_classes = torch.zeros(1, 200, 2, 2)
    many_classes[0, 150] = 1.0
    assert segmentation_logits_to_label_maps(many_classes).eq(150).all()  # beyond int8: int32


def test_segmentation_compute_metrics_full_set_and_batched_agree_and_are_floats():
    predictions, references, case_ids = _three_binary_images()
    compute_metrics = segmentation_compute_metrics(
        2, {0: "background", 1: "lesion"}, pooling="per_volume", case_ids=case_ids
    )
    assert "compute_result" in inspect.signature(compute_metrics).parameters  # Trainer's batch_eval_metrics check
    full = compute_metrics(EvalPrediction(predictions=predictions, label_ids=references))
    assert full["dice_mean"] == pytest.approx(5 / 6, abs=1e-15)
    assert full["num_skipped_classes"] == 0.0
    assert all(isinstance(value, float) for value in full.values())
    assert "skipped_classes" not in full and "scored_units/lesion" not in full
    # batch_eval_metrics mode: Trainer passes tensors per batch, then compute_result=True on the last one
    first_batch = EvalPrediction(
        predictions=torch.from_numpy(predictions[:2]), label_ids=torch.from_numpy(references[:2])
    )
    last_batch = EvalPrediction(predictions=predictions[2:], label_ids=references[2:])
    batched = [compute_metrics(first_batch, compute_result=False), compute_metrics(last_batch, compute_result=True)]
    assert batched == [{}, full]
    # State was reset: a second evaluation gives the same numbers.
    assert compute_metrics(EvalPrediction(predictions=predictions, label_ids=references)) == full


def test_segmentation_compute_metrics_ignores_trainer_padding_and_takes_logits():
    _, references, _ = _three_binary_images()
    logits = torch.nn.functional.one_hot(torch.from_numpy(references), 2).permute(0, 3, 1, 2).float().numpy()
    padded_references = np.concatenate([references, np.full((3, 2, 4), -100)], axis=1)  # Trainer pads dim 1
    padded_logits = np.concatenate([logits, np.zeros((3, 2, 2, 4))], axis=2)
    result = segmentation_compute_metrics(2)(EvalPrediction(predictions=padded_logits, label_ids=padded_references))
    assert result["dice_mean"] == 1.0


def test_segmentation_compute_metrics_case_ids_must_cover_the_evaluation():
    predictions, references, case_ids = _three_binary_images()
    with pytest.raises(ValueError, match="required"):
        segmentation_compute_metrics(2, pooling="per_volume")
    compute_metrics = segmentation_compute_metrics(2, pooling="per_volume", case_ids=case_ids[:2])
    with pytest.raises(ValueError, match="`case_ids` has 2 entries"):
        compute_metrics(EvalPrediction(predictions=predictions, label_ids=references))


def test_classification_compute_metrics_batched_equals_full_set():
    rng = np.random.default_rng(6)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    logits = rng.normal(size=(8, 3)).astype(np.float32)
    compute_metrics = classification_compute_metrics("single_label_classification", {0: "a", 1: "b", 2: "c"})
    full = compute_metrics(EvalPrediction(predictions=(logits, np.zeros((8, 5))), label_ids=labels))
    assert set(full) == {"accuracy", "roc_auc", "pr_auc", "num_excluded_classes"} | {
        f"{area}/{name}" for area in ("roc_auc", "pr_auc") for name in "abc"
    }
    assert full["roc_auc"] == pytest.approx(classification_auc(logits, labels)["roc_auc"], abs=1e-15)
    first_batch = EvalPrediction(predictions=torch.from_numpy(logits[:5]), label_ids=torch.from_numpy(labels[:5]))
    assert compute_metrics(first_batch, compute_result=False) == {}
    assert compute_metrics(EvalPrediction(predictions=logits[5:], label_ids=labels[5:]), compute_result=True) == full


def test_trainer_evaluate_logs_the_metrics(tmp_path):
    """A real Trainer evaluation, in both metric modes, with a decoder predicting at half resolution."""
    from transformers import Trainer, TrainingArguments

    class HalfResolutionSegmenter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier = torch.nn.Conv2d(1, 2, kernel_size=2, stride=2)
            with torch.no_grad():  # class 1 where the pixel value is high: a perfect segmenter of the data below
                self.classifier.weight.copy_(torch.stack([-torch.ones(1, 2, 2), torch.ones(1, 2, 2)]))
                self.classifier.bias.copy_(torch.tensor([2.0, -2.0]))

        def forward(self, pixel_values, labels=None):
            logits = self.classifier(pixel_values)
            upsampled = torch.nn.functional.interpolate(logits, size=labels.shape[-2:], mode="bilinear")
            return {"loss": torch.nn.functional.cross_entropy(upsampled, labels), "logits": logits}

    masks = torch.zeros(4, 8, 8, dtype=torch.long)
    masks[0, :4, :4] = 1
    masks[1, 4:, 2:6] = 1
    masks[3, 2:6, 2:6] = 1  # image 2 has no lesion at all
    dataset = [{"pixel_values": mask[None].float(), "labels": mask} for mask in masks]
    results = []
    for batch_eval_metrics in (False, True):
        arguments = TrainingArguments(
            output_dir=str(tmp_path / str(batch_eval_metrics)),
            per_device_eval_batch_size=3,
            report_to="none",
            use_cpu=True,
            batch_eval_metrics=batch_eval_metrics,
        )
        trainer = Trainer(
            model=HalfResolutionSegmenter(),
            args=arguments,
            eval_dataset=dataset,
            compute_metrics=segmentation_compute_metrics(2, {0: "background", 1: "lesion"}),
            preprocess_logits_for_metrics=segmentation_logits_to_label_maps,
        )
        results.append(trainer.evaluate())
    for metrics in results:
        assert metrics["eval_dice_mean"] == 1.0
        assert metrics["eval_dice/lesion"] == 1.0
        assert metrics["eval_num_skipped_classes"] == 0.0
    assert results[0]["eval_dice_mean"] == results[1]["eval_dice_mean"]


# ----------------------------------------------------------------------------------------------------------------
# evaluate wrappers (offline: instantiated directly, never evaluate.load)


def test_segmentation_overlap_evaluate_metric_matches_the_function(tmp_path):
    from vis_mae_hf.metrics import SegmentationOverlap

    predictions, references, case_ids = _three_binary_images()
    metric = SegmentationOverlap(cache_dir=str(tmp_path))
    metric.add_batch(predictions=predictions[:2], references=references[:2])
    metric.add_batch(predictions=torch.from_numpy(predictions[2:]), references=torch.from_numpy(references[2:]))
    result = metric.compute(num_labels=2, pooling="per_volume", case_ids=case_ids, id2label={0: "bg", 1: "lesion"})
    expected = segmentation_overlap(
        predictions, references, 2, pooling="per_volume", case_ids=case_ids, id2label={0: "bg", 1: "lesion"}
    )
    assert result == expected

    volumes = SegmentationOverlap(keep_in_memory=True)
    volume_result = volumes.compute(predictions=predictions[None], references=references[None], num_labels=2)
    assert volume_result["dice_mean"] == pytest.approx(6 / 7, abs=1e-15)  # one volume = the global counts

    with pytest.raises(ValueError, match="integer class indices"):
        SegmentationOverlap(keep_in_memory=True).add_batch(predictions=predictions * 0.5, references=references)
    with pytest.raises(ValueError, match="num_labels"):
        SegmentationOverlap(keep_in_memory=True).compute(predictions=predictions, references=references)


def test_classification_auc_evaluate_metric_matches_the_function():
    from vis_mae_hf.metrics import ClassificationAUC

    rng = np.random.default_rng(7)
    binary_scores, binary_labels = rng.random(12), np.array([0, 1] * 6)
    multi_logits, multi_labels = rng.normal(size=(12, 3)), np.array([0, 1, 2] * 4)
    multi_label_targets = (rng.random((12, 3)) < 0.5).astype(np.int64)
    cases = [
        (binary_scores, binary_labels, {"from_logits": False}),
        (multi_logits, multi_labels, {}),
        (multi_logits, multi_label_targets, {"problem_type": "multi_label_classification"}),
    ]
    for scores, labels, options in cases:
        metric = ClassificationAUC(keep_in_memory=True)
        metric.add_batch(predictions=scores[:7], references=labels[:7])
        metric.add_batch(predictions=scores[7:], references=labels[7:])
        assert metric.compute(**options) == classification_auc(scores, labels, **options)
