"""`vis-mae evaluate`: predictions scored against references with `vis_mae_hf.metrics` (the one implementation),
on masks and tables built here; every bad input is one error line naming the file, and nothing is written."""

import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import save_tiny_model
from hostile import assert_one_error_line, file_hashes, vis_mae
from PIL import Image

from vis_mae_hf import VisMaeForSemanticSegmentation
from vis_mae_hf.hub import load_evaluation_summary
from vis_mae_hf.inference.outputs import write_classification_tables, write_labels_json
from vis_mae_hf.metrics import (
    EvaluationInputError,
    classification_auc,
    evaluate_classification_files,
    evaluate_segmentation_files,
    segmentation_overlap,
)
from vis_mae_hf.metrics.files import case_name

LABELS = ["background", "liver", "spleen"]
ID2LABEL = dict(enumerate(LABELS))


def label_maps(seed: int, shape=(24, 32)) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, reference): a reference of three classes and a prediction that misses part of it."""
    rng = np.random.default_rng(seed)
    reference = np.zeros(shape, dtype=np.uint8)
    reference[4:14, 5:20] = 1
    reference[12:20, 18:30] = 2
    prediction = reference.copy()
    prediction[4:8] = 0  # misses rows of class 1
    prediction[rng.random(shape) < 0.05] = 2  # and adds scattered class 2
    return prediction, reference


@pytest.fixture
def png_folders(tmp_path):
    """What `vis-mae predict` writes for three 2-D inputs (masks, overlays, labels.json), and reference masks."""
    predictions, references = tmp_path / "predictions", tmp_path / "references"
    predictions.mkdir()
    references.mkdir()
    arrays = {}
    for seed, case in enumerate(["case_a", "case_b", "case_c"]):
        prediction, reference = label_maps(seed)
        Image.fromarray(prediction).save(predictions / f"{case}_mask.png")
        Image.fromarray(np.zeros((*prediction.shape, 3), np.uint8)).save(predictions / f"{case}_overlay.png")
        Image.fromarray(reference).save(references / f"{case}.png")
        arrays[case] = (prediction, reference)
    write_labels_json(LABELS, predictions)
    return predictions, references, arrays


def test_case_names_pair_predict_outputs_with_references():
    assert case_name("scan_mask.png") == case_name("scan.png") == case_name("scan_mask.nii.gz") == "scan"
    assert case_name("/data/case_01.nii.gz") == case_name("case_01_mask.nii") == "case_01"
    assert case_name("_mask.png") == "_mask"


# ------------------------------------------------------------------------------------------------ segmentation


def test_two_dimensional_masks_are_scored_per_case_and_pooled_with_the_metrics(png_folders, tmp_path, capsys):
    predictions, references, arrays = png_folders
    output = tmp_path / "scores.json"

    status, out, err = vis_mae(capsys, "evaluate", "segmentation", "--predictions", predictions,
                               "--references", references, "--output", output, "--dataset-name", "toy abdomen",
                               "--split", "test")

    assert status == 0, err
    report = json.loads(output.read_text())
    cases = sorted(arrays)
    items = [arrays[case] for case in cases]
    per_image = segmentation_overlap([p for p, _ in items], [r for _, r in items], 3, ignore_index=None,
                                     id2label=ID2LABEL)
    pooled = segmentation_overlap([p for p, _ in items], [r for _, r in items], 3, ignore_index=None,
                                  pooling="global", id2label=ID2LABEL)
    assert report["pooled"]["per_image"]["dice_mean"] == pytest.approx(per_image["dice_mean"])
    assert report["pooled"]["global"]["dice/liver"] == pytest.approx(pooled["dice/liver"])
    assert [case["case"] for case in report["cases"]] == cases
    for case, (prediction, reference) in zip(report["cases"], items):
        alone = segmentation_overlap(prediction[None], reference[None], 3, ignore_index=None, id2label=ID2LABEL)
        assert case["scores"]["dice/spleen"] == pytest.approx(alone["dice/spleen"])
    # by hand, case_a's liver: 150 reference pixels, the first 4 of 10 rows missed, scattered spleen on the rest
    prediction, reference = arrays["case_a"]
    true_positives = int(((prediction == 1) & (reference == 1)).sum())
    expected = 2 * true_positives / ((prediction == 1).sum() + (reference == 1).sum())
    assert report["cases"][0]["scores"]["dice/liver"] == pytest.approx(expected)
    # the table names the classes, the poolings and the cases; the overlays were seen and left out, not hidden
    assert "per_image" in out and "global" in out and "liver" in out and "case_b" in out
    assert "not read (4 files or folders that are not label maps): case_a_overlay.png" in out
    assert report["conventions"] == {"include_background": False, "empty_mask": "skip", "zero_division": 0.0,
                                     "ignore_index": None}
    # its `results` are an evaluation summary for `vis-mae hub export --evaluation`
    summary = load_evaluation_summary(output)
    (result,) = summary["results"]
    assert (result["task"], result["dataset"], result["split"]) == ("semantic-segmentation", "toy abdomen", "test")
    assert result["metrics"]["dice_mean"] == pytest.approx(per_image["dice_mean"])


def nifti(path, data, affine):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.uint8), affine), path)
    return path


AFFINE = np.array([[0.8, 0, 0, -12.0], [0, 0.8, 0, 7.0], [0, 0, 2.5, -30.0], [0, 0, 0, 1]])


def test_volumes_on_one_grid_are_scored_per_volume_whatever_their_voxel_order(tmp_path):
    """The reference is stored RAS, the prediction with its first axis flipped (LAS), as NIfTI files often are: the
    same voxels in space, so the same scores as the aligned arrays."""
    predictions, references = tmp_path / "pred", tmp_path / "ref"
    predictions.mkdir()
    references.mkdir()
    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = 9  # voxel i of the flipped file is voxel 9 - i of the reference: the same points in space
    volumes = []
    for seed, case in enumerate(["p1", "p2"]):
        prediction, reference = label_maps(seed, shape=(10, 8, 6))
        nifti(references / f"{case}.nii.gz", reference, AFFINE)
        nifti(predictions / f"{case}_mask.nii.gz", prediction[::-1], AFFINE @ flip)
        volumes.append((prediction, reference))

    report = evaluate_segmentation_files(predictions, references, "background,liver,spleen")

    expected = segmentation_overlap([p for p, _ in volumes], [r for _, r in volumes], 3, ignore_index=None,
                                    id2label=ID2LABEL)
    assert report.kind == "volume" and report.primary == "per_volume"
    assert report.pooled["per_volume"]["dice_mean"] == pytest.approx(expected["dice_mean"])
    assert report.pooled["per_volume"]["recall/liver"] == pytest.approx(expected["recall/liver"])
    assert "2 volumes scored" in report.format_table()


def two_volumes(tmp_path, reference_affine=AFFINE, reference_shape=(10, 8, 6)):
    prediction, _ = label_maps(0, shape=(10, 8, 6))
    _, reference = label_maps(0, shape=reference_shape)
    return nifti(tmp_path / "p_mask.nii.gz", prediction, AFFINE), nifti(tmp_path / "p.nii.gz", reference,
                                                                         reference_affine)


def test_volumes_on_different_grids_are_refused_naming_both_files(tmp_path, capsys):
    shifted = AFFINE.copy()
    shifted[0, 3] += 0.8  # one voxel to the side
    prediction, reference = two_volumes(tmp_path, reference_affine=shifted)
    status, _, err = vis_mae(capsys, "evaluate", "segmentation", "--predictions", prediction, "--references",
                             reference, "--labels", "background,liver,spleen", "--output", tmp_path / "s.json")
    assert status == 1
    assert_one_error_line(err, "evaluate segmentation", prediction, reference, "different affines", "0.8 mm")
    prediction, reference = two_volumes(tmp_path, reference_shape=(10, 8, 7))
    status, _, err = vis_mae(capsys, "evaluate", "segmentation", "--predictions", prediction, "--references",
                             reference, "--labels", "background,liver,spleen", "--output", tmp_path / "s.json")
    assert status == 1
    assert_one_error_line(err, "evaluate segmentation", prediction, "(10, 8, 6)", reference, "(10, 8, 7)")
    assert not (tmp_path / "s.json").exists()


def test_what_vis_mae_predict_writes_is_scored_against_references_on_the_inputs_grid(tmp_path, capsys):
    """predict -> evaluate: a real LAS-stored NIfTI segmented by a tiny model; the reference is drawn on the input's
    own voxels, so the scores are those of the arrays as the files store them."""
    source = Path(nib.__file__).parent / "tests" / "data" / "anatomical.nii"
    model = save_tiny_model(tmp_path / "model", VisMaeForSemanticSegmentation, "segmentation", id2label=ID2LABEL)
    status, _, err = vis_mae(capsys, "predict", "--model", model, source, "--output", tmp_path / "predicted",
                             "--quiet")
    assert status == 0, err
    image = nib.load(source)
    reference = np.zeros(image.shape[:3], dtype=np.uint8)
    reference[5:20, 10:30, 8:16] = 1
    reference[20:28, 5:15, 3:9] = 2
    (tmp_path / "references").mkdir()
    nifti(tmp_path / "references" / "anatomical.nii.gz", reference, image.affine)

    report = evaluate_segmentation_files(tmp_path / "predicted", tmp_path / "references")

    predicted = np.asarray(nib.load(tmp_path / "predicted" / "anatomical_mask.nii.gz").dataobj)
    expected = segmentation_overlap(predicted[None], reference[None], 3, ignore_index=None, id2label=ID2LABEL)
    assert report.label_names == LABELS  # from the labels.json predict wrote
    assert report.pooled["per_volume"]["dice/liver"] == pytest.approx(expected["dice/liver"], nan_ok=True)
    assert report.pooled["global"]["recall/spleen"] == pytest.approx(expected["recall/spleen"], nan_ok=True)


def replace_file(path, array):
    path.unlink()
    Image.fromarray(array).save(path)


def save_array(path, array):
    Image.fromarray(array).save(path)


@pytest.mark.parametrize(
    "spoil, fragments",
    [
        (lambda p, r: save_array(p / "extra_mask.png", np.zeros((24, 32), np.uint8)),
         ["extra_mask.png", "no reference in"]),
        (lambda p, r: (r / "case_b.png").unlink(), ["case_b_mask.png", "no reference in"]),
        (lambda p, r: save_array(r / "case_d.png", np.zeros((24, 32), np.uint8)),
         ["case_d.png", "no prediction in", "case_d_mask.png"]),
        (lambda p, r: replace_file(r / "case_a.png", np.zeros((25, 32), np.uint8)),
         ["case_a_mask.png is 32 x 24 pixels", "case_a.png is 32 x 25"]),
        (lambda p, r: replace_file(r / "case_a.png", np.full((24, 32), 7, np.uint8)),
         ["case_a.png holds label values 7 outside the declared labels (0 background, 1 liver, 2 spleen)"]),
        (lambda p, r: replace_file(p / "case_c_mask.png", np.full((24, 32), 3, np.uint8)),
         ["case_c_mask.png holds label values 3 outside"]),
        (lambda p, r: replace_file(r / "case_a.png", np.where(label_maps(0)[1] > 0, 255, 0).astype(np.uint8)),
         ["case_a.png holds label values 255", "mapped to 0/1", "--ignore-index 255"]),
        (lambda p, r: replace_file(r / "case_a.png", np.zeros((24, 32, 3), np.uint8)),
         ["case_a.png is an image with several channels (mode RGB)"]),
        (lambda p, r: save_array(r / "case_a.jpg", np.zeros((24, 32), np.uint8)),
         ["case_a.jpg: a JPEG cannot hold a label map"]),
        (lambda p, r: save_array(r / "case_a_mask.png", np.zeros((24, 32), np.uint8)),
         ["case_a.png and", "case_a_mask.png are both the reference of case 'case_a'"]),
        (lambda p, r: (p / "labels.json").unlink(), ["No labels declared and no labels.json in", "--labels"]),
        (lambda p, r: (r / "case_a.png").write_bytes(b"not a png"), ["case_a.png is not a readable label map"]),
        (lambda p, r: (nifti(p / "case_d_mask.nii.gz", np.zeros((4, 4, 4)), AFFINE),
                       nifti(r / "case_d.nii.gz", np.zeros((4, 4, 4)), AFFINE)),
         ["mix 2-D label maps", "and NIfTI volumes", "case_d_mask.nii.gz"]),
    ],
    ids=["prediction-without-reference", "reference-removed", "reference-without-prediction", "size",
         "reference-label", "prediction-label", "binary-255", "colour", "jpeg", "two-references-of-a-case",
         "no-labels", "damaged-file", "mixed-kinds"],
)
def test_bad_segmentation_input_is_one_line_naming_the_file_and_writes_nothing(png_folders, tmp_path, capsys, spoil,
                                                                              fragments):
    predictions, references, _ = png_folders
    spoil(predictions, references)
    output = tmp_path / "scores.json"
    status, out, err = vis_mae(capsys, "evaluate", "segmentation", "--predictions", predictions, "--references",
                               references, "--output", output)
    assert status == 1 and out == ""
    assert_one_error_line(err, "evaluate segmentation", *fragments)
    assert not output.exists()


def test_an_ignore_index_leaves_unlabelled_reference_pixels_out(png_folders):
    predictions, references, arrays = png_folders
    prediction, reference = arrays["case_a"]
    unlabelled = reference.copy()
    unlabelled[:, :3] = 255
    replace_file(references / "case_a.png", unlabelled)

    report = evaluate_segmentation_files(predictions, references, ignore_index=255)

    kept = unlabelled != 255
    expected = segmentation_overlap(prediction[kept][None, None], reference[kept][None, None], 3, ignore_index=None,
                                    id2label=ID2LABEL)
    assert report.cases[0]["scores"]["dice/liver"] == pytest.approx(expected["dice/liver"])
    with pytest.raises(EvaluationInputError, match="values 255 outside"):
        evaluate_segmentation_files(predictions, references)


def test_conventions_are_the_metrics_own_and_recorded(png_folders):
    predictions, references, arrays = png_folders
    (references / "case_c.png").unlink()
    (predictions / "case_c_mask.png").unlink()
    replace_file(references / "case_b.png", np.zeros((24, 32), np.uint8))  # no spleen, no liver in the reference
    replace_file(predictions / "case_b_mask.png", np.zeros((24, 32), np.uint8))  # nor in the prediction

    skipped = evaluate_segmentation_files(predictions, references)
    counted = evaluate_segmentation_files(predictions, references, empty_mask="one", include_background=True)

    assert math.isnan(skipped.cases[1]["scores"]["dice/liver"]) and skipped.pooled["per_image"]["scored_units/liver"] == 1
    assert counted.cases[1]["scores"]["dice/liver"] == 1.0
    prediction, reference = arrays["case_a"]
    expected = segmentation_overlap([prediction, np.zeros_like(prediction)], [reference, np.zeros_like(reference)], 3,
                                    ignore_index=None, empty_mask="one", include_background=True)
    assert counted.pooled["per_image"]["dice_mean"] == pytest.approx(expected["dice_mean"])
    assert counted.conventions["empty_mask"] == "one" and "scored 1" in counted.describe()


def test_output_is_refused_when_it_exists_or_is_no_json_file(png_folders, tmp_path, capsys):
    predictions, references, _ = png_folders
    existing = tmp_path / "scores.json"
    existing.write_text("keep me")
    arguments = ["evaluate", "segmentation", "--predictions", predictions, "--references", references]
    status, _, err = vis_mae(capsys, *arguments, "--output", existing)
    assert status == 1
    assert_one_error_line(err, "evaluate segmentation", "scores.json exists", "--overwrite")
    assert existing.read_text() == "keep me"
    status, _, err = vis_mae(capsys, *arguments, "--output", tmp_path / "scores.png")
    assert status == 1
    assert_one_error_line(err, "evaluate segmentation", "scores.png", "name the file *.json")
    assert vis_mae(capsys, *arguments, "--output", existing, "--overwrite")[0] == 0
    assert json.loads(existing.read_text())["task"] == "segmentation"


@pytest.mark.parametrize("kind", ["png", "nifti"])
def test_files_over_the_size_limit_are_refused_before_decoding_and_inputs_stay_untouched(tmp_path, capsys,
                                                                                         monkeypatch, kind):
    predictions, references = tmp_path / "pred", tmp_path / "ref"
    predictions.mkdir()
    references.mkdir()
    prediction, reference = label_maps(0, shape=(10, 8, 6) if kind == "nifti" else (24, 32))
    if kind == "nifti":
        nifti(predictions / "a_mask.nii.gz", prediction, AFFINE)
        nifti(references / "a.nii.gz", reference, AFFINE)
    else:
        save_array(predictions / "a_mask.png", prediction)
        save_array(references / "a.png", reference)
    before = file_hashes(tmp_path)
    monkeypatch.setenv("VIS_MAE_MAX_VOXELS", "100")

    status, _, err = vis_mae(capsys, "evaluate", "segmentation", "--predictions", predictions, "--references",
                             references, "--labels", "background,liver,spleen")

    assert status == 1
    assert_one_error_line(err, "evaluate segmentation", "a_mask.", "more than the limit of 100", "VIS_MAE_MAX_VOXELS")
    assert file_hashes(tmp_path) == before


# ------------------------------------------------------------------------------------------------ classification


FINDINGS = ["normal", "effusion", "nodule"]


def classification_files(tmp_path, multi_label=False):
    """A predictions.csv written by `vis-mae predict`'s own writer, and a references CSV naming the same images
    by another path, with class names and an index."""
    rng = np.random.default_rng(4)
    files = [f"/scans/patient_{index}.dcm" for index in range(8)]
    if multi_label:
        probabilities = rng.random((8, 3))
        truth = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 1, 1], [1, 0, 1], [0, 0, 1]]
        labels = [";".join(name for name, present in zip(FINDINGS, row) if present) for row in truth]
    else:
        logits = rng.normal(size=(8, 3))
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        truth = [0, 1, 2, 0, 1, 2, 0, 1]
        labels = [FINDINGS[index] for index in truth]
        labels[3] = "0"  # a class index is a label too
    write_classification_tables(files, probabilities, FINDINGS, tmp_path / "out", multi_label=multi_label)
    with (tmp_path / "labels.csv").open("w") as handle:
        handle.write("path,label\n")
        for index, label in reversed(list(enumerate(labels))):
            handle.write(f"/archive/patient_{index}.png,{label}\n")
    rounded = np.round(probabilities, 6)  # what the CSV holds
    return tmp_path / "out" / "predictions.csv", tmp_path / "labels.csv", rounded, np.asarray(truth)


@pytest.mark.parametrize("multi_label", [False, True], ids=["single-label", "multi-label"])
def test_a_predictions_csv_is_scored_against_a_labels_csv(tmp_path, capsys, multi_label):
    predictions, references, probabilities, truth = classification_files(tmp_path, multi_label)
    output = tmp_path / "scores.json"

    status, out, err = vis_mae(capsys, "evaluate", "classification", "--predictions", predictions, "--references",
                               references, "--output", output)

    assert status == 0, err
    problem = "multi_label_classification" if multi_label else "single_label_classification"
    expected = classification_auc(probabilities, truth, problem_type=problem, from_logits=False,
                                  id2label=dict(enumerate(FINDINGS)))
    report = json.loads(output.read_text())
    assert report["task"] == ("multilabel" if multi_label else "classification")
    assert report["pooled"]["all"]["roc_auc"] == pytest.approx(expected["roc_auc"])
    assert report["pooled"]["all"]["pr_auc"] == pytest.approx(expected["pr_auc"])
    assert [case["case"] for case in report["cases"]] == [f"patient_{index}" for index in range(8)]
    if not multi_label:
        assert report["pooled"]["all"]["accuracy"] == pytest.approx(expected["accuracy"])
        assert report["cases"][3]["reference"] == "normal"
    assert "roc_auc" in out and "patient_7" in out
    assert load_evaluation_summary(output)["results"][0]["task"] == "image-classification"


def write_text(path, text):
    path.write_text(text)


@pytest.mark.parametrize(
    "spoil, fragments",
    [
        (lambda p, r: write_text(r, r.read_text().replace("/archive/patient_5.png,nodule\n", "")),
         ["labels.csv has no row for the predicted case(s) patient_5"]),
        (lambda p, r: write_text(r, r.read_text() + "/archive/patient_9.png,normal\n"),
         ["labels.csv lists case(s) patient_9", "no prediction for"]),
        (lambda p, r: write_text(r, r.read_text().replace("patient_2.png,nodule", "patient_2.png,pneumonia")),
         ["labels.csv line", "label 'pneumonia' is not one of the classes normal, effusion, nodule"]),
        (lambda p, r: write_text(r, r.read_text().replace("path,label", "path,diagnosis")),
         ["labels.csv has the columns ['path', 'diagnosis']", "label or labels"]),
        (lambda p, r: write_text(r, r.read_text() + "/other/patient_1.png,normal\n"),
         ["case 'patient_1' (/other/patient_1.png) is listed twice"]),
        (lambda p, r: write_text(p, p.read_text().replace("prob_normal", "score_normal")),
         ["predictions.csv has the columns", "prob_<class>"]),
        (lambda p, r: write_text(p, p.read_text().replace(",0.", ",1.", 1)),
         ["predictions.csv: every probability must be a number in [0, 1]"]),
    ],
    ids=["missing-reference", "extra-reference", "unknown-label", "no-label-column", "duplicate", "not-predict-csv",
         "probability-over-one"],
)
def test_bad_classification_input_is_one_line_naming_the_file(tmp_path, capsys, spoil, fragments):
    predictions, references, _, _ = classification_files(tmp_path)
    spoil(predictions, references)
    status, out, err = vis_mae(capsys, "evaluate", "classification", "--predictions", predictions, "--references",
                               references, "--output", tmp_path / "scores.json")
    assert status == 1 and out == ""
    assert_one_error_line(err, "evaluate classification", *fragments)
    assert not (tmp_path / "scores.json").exists()


def test_multi_label_is_read_from_predictions_json_or_asked_for(tmp_path):
    predictions, references, probabilities, truth = classification_files(tmp_path, multi_label=True)
    assert evaluate_classification_files(predictions, references).task == "multilabel"
    predictions.with_name("predictions.json").unlink()
    with pytest.raises(EvaluationInputError, match="pass --multi-label"):
        evaluate_classification_files(predictions, references)
    assert evaluate_classification_files(predictions, references, multi_label=True).task == "multilabel"
