"""The 2-D published sources (PNG/JPEG/TIFF/NPY/HDF5) convert from synthetic trees in their publishers' layouts."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from test_data_support import check_converted, noise_image, save_png, square_mask

from vis_mae_hf.data import convert, load_converted, read_conversion_metadata


def _convert(name, source, tmp_path, **options):
    result = convert(name, source, tmp_path / f"{name}-out", progress=False, **options)
    return load_converted(result.output_dir), result


# ---------------------------------------------------------------- LGG (Kaggle kaggle_3m TIFF slices + _mask.tif)


def make_lgg_tree(root):
    studies = ["TCGA_CS_4941_19960909", "TCGA_CS_4942_19970222", "TCGA_DU_5849_19950405", "TCGA_FG_6688_20020215",
               "TCGA_HT_7473_19970826"]
    for index, study in enumerate(studies):
        folder = root / "lgg-mri-segmentation" / "kaggle_3m" / study
        for number in (1, 2, 3):
            save_png(folder / f"{study}_{number}.tif", noise_image(10 * index + number, channels=3))
            # tumour on slices 2 and 3 only: slice 1 is empty, as most slices of the published set are
            mask = square_mask(value=255) if number > 1 else np.zeros((32, 32), np.uint8)
            save_png(folder / f"{study}_{number}_mask.tif", mask)
    (root / "lgg-mri-segmentation" / "kaggle_3m" / "data.csv").write_text("Patient,RNASeqCluster\nTCGA_CS_4941,2\n")
    return root, ["_".join(study.split("_")[:3]) for study in studies]


def test_lgg_keeps_tumour_slices_with_binary_masks(tmp_path):
    source, patients = make_lgg_tree(tmp_path / "src")
    dataset, _ = _convert("lgg", source, tmp_path)
    check_converted(dataset, task="segmentation", label_names=["background", "tumor"], rows={"train": 10},
                    case_ids={"train": set(patients)}, mask_values={0, 1})
    train = dataset["train"]
    assert sorted(set(train["slice_index"])) == [1, 2]  # slice numbers 2, 3 -> 0-based indices
    assert train[0]["image"].mode == "RGB"  # the published three sequences are kept
    all_slices, _ = _convert("lgg", source, tmp_path / "all", slices="all")
    assert len(all_slices["train"]) == 15


# ---------------------------------------------------------------- BUSI (class folders, `name (n).png`, `_mask*.png`)


def make_busi_tree(root):
    base = root / "Dataset_BUSI_with_GT"
    for cls, count, seed in (("benign", 5, 0), ("malignant", 5, 100), ("normal", 5, 200)):
        for number in range(1, count + 1):
            save_png(base / cls / f"{cls} ({number}).png", noise_image(seed + number, shape=(30, 40), channels=3))
            mask = square_mask((30, 40)) if cls != "normal" else np.zeros((30, 40), np.uint8)
            save_png(base / cls / f"{cls} ({number})_mask.png", mask)
    # a second lesion of malignant (1) in its own mask file
    save_png(base / "malignant" / "malignant (1)_mask_1.png", square_mask((30, 40), top=20, left=25, size=5))
    # benign (6) is a byte-identical copy of benign (1): must be dropped before folding
    shutil.copy(base / "benign" / "benign (1).png", base / "benign" / "benign (6).png")
    shutil.copy(base / "benign" / "benign (1)_mask.png", base / "benign" / "benign (6)_mask.png")
    # benign (7) is benign (2) re-saved at another size: a near-copy, grouped into benign (2)'s case
    from PIL import Image

    with Image.open(base / "benign" / "benign (2).png") as original:
        original.resize((80, 60), Image.Resampling.BICUBIC).save(base / "benign" / "benign (7).png")
    save_png(base / "benign" / "benign (7)_mask.png", square_mask((60, 80), size=16))
    return root


def test_busi_segmentation_merges_masks_and_removes_duplicates(tmp_path):
    source = make_busi_tree(tmp_path / "src")
    dataset, result = _convert("busi_segmentation", source, tmp_path)
    benign = {f"benign ({n})" for n in (1, 2, 3, 4, 5)}
    malignant = {f"malignant ({n})" for n in range(1, 6)}
    # 5 + 1 near-copy benign (the exact copy is gone) and 5 malignant; normal images are left out
    check_converted(dataset, task="segmentation", label_names=["background", "lesion"], rows={"train": 11},
                    case_ids={"train": benign | malignant}, mask_values={0, 1})
    train = dataset["train"]
    assert "benign (6)" not in {name.split("/")[-1][:-4] for name in train["source_file"]}
    near_copy = train.filter(lambda row: row["source_file"].endswith("benign (7).png"))
    assert near_copy["case_id"] == ["benign (2)"]
    two_lesions = train.filter(lambda row: row["source_file"].endswith("malignant (1).png"))[0]
    mask = np.asarray(two_lesions["mask"])
    assert mask[6, 6] == 1 and mask[22, 27] == 1  # both mask files OR-ed
    assert train.features["diagnosis"].names == ["benign", "malignant", "normal"]
    notes = read_conversion_metadata(result.output_dir)["source_notes"]
    assert any("benign (6).png" in note and "dropped identical" in note for note in notes)


def test_busi_classification_has_three_classes(tmp_path):
    source = make_busi_tree(tmp_path / "src")
    dataset, result = _convert("busi_classification", source, tmp_path)
    names = ["benign", "malignant", "normal"]
    cases = {f"{cls} ({n})" for cls in names for n in range(1, 6)}
    check_converted(dataset, task="classification", label_names=names, rows={"train": 16}, case_ids={"train": cases})
    assert result.summary["splits"]["train"]["class_balance"] == {"benign": 6, "malignant": 5, "normal": 5}
    assert dataset["train"][0]["image"].mode == "L"


# ---------------------------------------------------------------- ISIC 2017 (Training/Validation/Test folders)


def make_isic_tree(root):
    ids = {"Training": range(0, 6), "Validation": range(100, 102), "Test_v2": range(200, 202)}
    for split, numbers in ids.items():
        rows = []
        for number in numbers:
            image_id = f"ISIC_{number:07d}"
            from PIL import Image

            Image.fromarray(noise_image(number, shape=(24, 36), channels=3)).save(
                (root / f"ISIC-2017_{split}_Data").mkdir(parents=True, exist_ok=True)
                or root / f"ISIC-2017_{split}_Data" / f"{image_id}.jpg",
                quality=90,
            )
            save_png(root / f"ISIC-2017_{split}_Data" / f"{image_id}_superpixels.png", noise_image(1, (24, 36), 3))
            save_png(root / f"ISIC-2017_{split}_Part1_GroundTruth" / f"{image_id}_segmentation.png",
                     square_mask((24, 36)))
            rows.append((image_id, float(number % 3 == 0), float(number % 3 == 1)))
        with open(root / f"ISIC-2017_{split}_Part3_GroundTruth.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image_id", "melanoma", "seborrheic_keratosis"])
            writer.writerows(rows)
    return root


def test_isic2017_keeps_official_splits_and_jpeg_bytes(tmp_path):
    source = make_isic_tree(tmp_path / "src")
    dataset, _ = _convert("isic2017", source, tmp_path)
    check_converted(
        dataset, task="segmentation", label_names=["background", "lesion"],
        rows={"train": 6, "validation": 2, "test": 2},
        case_ids={"train": {f"ISIC_{n:07d}" for n in range(6)}, "validation": {"ISIC_0000100", "ISIC_0000101"},
                  "test": {"ISIC_0000200", "ISIC_0000201"}},
        mask_values={0, 1},
    )
    row = dataset["train"].cast_column("image", __import__("datasets").Image(decode=False))[0]
    published = (source / "ISIC-2017_Training_Data" / "ISIC_0000000.jpg").read_bytes()
    assert row["image"]["bytes"] == published  # no second JPEG compression
    assert dataset["train"].features["diagnosis"].int2str(dataset["train"][0]["diagnosis"]) == "melanoma"


# ---------------------------------------------------------------- COVID-CT (UCSD-AI4H: Images-processed/CT_*)


def make_covid_tree(root):
    base = root / "COVID-CT-master"
    covid = ["2020.02.10.20021584-p6-52%1.png", "2020.02.10.20021584-p6-52%4.png", "kjr-21-e24-p5-29.png",
             "kjr-21-e24-p5-31.png", "covid-19-pneumonia-15.jpg", "nejmoa2001191_f1-PA.png"]
    non_covid = ["71%0.jpg", "71%1.jpg", "12%0.jpg", "3.jpg", "858%2.png"]
    for index, name in enumerate(covid):
        save_png(base / "Images-processed" / "CT_COVID" / name, noise_image(index, channels=3))
    for index, name in enumerate(non_covid):
        save_png(base / "Images-processed" / "CT_NonCOVID" / name, noise_image(50 + index, channels=3))
    split_dir = base / "Data-split"
    (split_dir / "COVID").mkdir(parents=True)
    (split_dir / "NonCOVID").mkdir(parents=True)
    (split_dir / "COVID" / "testCT_COVID.txt").write_text("kjr-21-e24-p5-29.png\n")
    (split_dir / "NonCOVID" / "trainCT_NonCOVID.txt").write_text("71%0.jpg\n71%1.jpg\n")
    return root


def test_covid_ct_groups_slices_of_one_source(tmp_path):
    source = make_covid_tree(tmp_path / "src")
    dataset, _ = _convert("covid_ct", source, tmp_path)
    cases = {"covid/2020.02.10.20021584", "covid/kjr-21-e24", "covid/covid-19-pneumonia", "covid/nejmoa2001191_f1-PA",
             "non_covid/71", "non_covid/12", "non_covid/3", "non_covid/858"}
    check_converted(dataset, task="classification", label_names=["non_covid", "covid"], rows={"train": 11},
                    case_ids={"train": cases})
    train = dataset["train"]
    by_file = {name.split("/")[-1]: row for name, row in zip(train["source_file"], train)}
    assert by_file["kjr-21-e24-p5-29.png"]["official_split"] == "test"
    assert by_file["71%1.jpg"]["official_split"] == "train"
    assert by_file["3.jpg"]["label"] == 0 and by_file["kjr-21-e24-p5-31.png"]["label"] == 1
    assert by_file["3.jpg"]["image"].mode == "L"


# ---------------------------------------------------------------- Knee OA (kneeKL224/{train,val,test}/{0..4})


def make_knee_tree(root):
    base = root / "KneeXrayData" / "ClsKLData" / "kneeKL224"
    people = ["9000099", "9000296", "9000622", "9001104", "9001400", "9001695"]
    for index, person in enumerate(people):
        for side_index, side in enumerate("LR"):
            grade = (index + side_index) % 5
            save_png(base / "train" / str(grade) / f"{person}{side}.png", noise_image(index * 2 + side_index))
    save_png(base / "val" / "3" / "9002116L.png", noise_image(90))
    save_png(base / "test" / "4" / "9002411R.png", noise_image(91))
    save_png(base / "auto_test" / "4" / "9002411R.png", noise_image(92))
    return root, set(people) | {"9002116"}


def test_knee_oa_groups_both_knees_and_keeps_test(tmp_path):
    source, people = make_knee_tree(tmp_path / "src")
    dataset, _ = _convert("knee_oa", source, tmp_path)
    check_converted(dataset, task="classification", label_names=["KL0", "KL1", "KL2", "KL3", "KL4"],
                    rows={"train": 13, "test": 1}, case_ids={"train": people, "test": {"9002411"}})
    train = dataset["train"]
    assert set(train["side"]) == {"L", "R"}
    assert set(train["official_split"]) == {"train", "val"}
    assert dataset["test"][0]["label"] == 4


# ---------------------------------------------------------------- NIH ChestX-ray14 (Data_Entry_2017.csv + lists)


def make_chestxray_tree(root):
    header = ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender",
              "View Position", "OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]", ""]
    findings = ["No Finding", "Effusion|Mass", "Atelectasis", "No Finding", "Cardiomegaly|Effusion", "Hernia",
                "No Finding", "Pneumothorax"]
    rows, train_val, test = [], [], []
    for patient in range(1, 8):
        for follow_up in range(2 if patient <= 2 else 1):
            name = f"{patient:08d}_{follow_up:03d}.png"
            finding = findings[(patient + follow_up) % len(findings)]
            rows.append([name, finding, follow_up, patient, 40 + patient, "M" if patient % 2 else "F", "PA",
                         1024, 1024, 0.143, 0.143, ""])
            (test if patient == 7 else train_val).append(name)
            folder = root / ("images_001/images" if patient <= 3 else "images")
            save_png(folder / name, noise_image(patient * 10 + follow_up))
    with open(root / "Data_Entry_2017.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    (root / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    return root


def test_chestxray14_is_multilabel_with_official_split(tmp_path):
    source = make_chestxray_tree(tmp_path / "src")
    from vis_mae_hf.data.sources.chestxray14 import FINDINGS

    dataset, result = _convert("chestxray14", source, tmp_path)
    check_converted(dataset, task="multilabel", label_names=FINDINGS, rows={"train": 8, "test": 1},
                    case_ids={"train": {f"{p:08d}" for p in range(1, 7)}, "test": {"00000007"}})
    by_name = {name.split("/")[-1]: row for name, row in zip(dataset["train"]["source_file"], dataset["train"])}
    assert by_name["00000001_000.png"]["labels"] == [FINDINGS.index("Effusion"), FINDINGS.index("Mass")]
    assert by_name["00000002_001.png"]["labels"] == []  # "No Finding"
    assert by_name["00000001_001.png"]["follow_up"] == 1
    assert result.summary["splits"]["train"]["class_balance"]["(no label)"] == 3


def test_chestxray14_stops_on_missing_images_unless_asked(tmp_path):
    source = make_chestxray_tree(tmp_path / "src")
    (source / "images" / "00000005_000.png").unlink()
    with pytest.raises(ValueError, match="00000005_000.png: listed in Data_Entry_2017.csv but not .*--on-error skip"):
        _convert("chestxray14", source, tmp_path)
    assert not (tmp_path / "chestxray14-out").exists()
    dataset, result = _convert("chestxray14", source, tmp_path / "skip", on_error="skip")
    assert len(dataset["train"]) == 7
    skipped = read_conversion_metadata(result.output_dir)["summary"]["skipped"]
    assert [entry["file"] for entry in skipped] == ["00000005_000.png"]


# ---------------------------------------------------------------- MRNet (train/{plane}/0000.npy + train-acl.csv)


def make_mrnet_tree(root):
    base = root / "MRNet-v1.0"
    exams = {"train": range(0, 6), "valid": range(1130, 1132)}
    for split, numbers in exams.items():
        lines = []
        for number in numbers:
            for plane_index, plane in enumerate(("axial", "coronal", "sagittal")):
                (base / split / plane).mkdir(parents=True, exist_ok=True)
                n_slices = 3 + plane_index
                volume = np.stack([noise_image(number * 10 + plane_index * 3 + s) for s in range(n_slices)])
                np.save(base / split / plane / f"{number:04d}.npy", volume)
            lines.append(f"{number:04d},{number % 2}")
        (base / f"{split}-acl.csv").write_text("\n".join(lines) + "\n")
        (base / f"{split}-abnormal.csv").write_text("\n".join(line[:-1] + "1" for line in lines) + "\n")
    return root


def test_mrnet_rows_are_slices_of_exams(tmp_path):
    source = make_mrnet_tree(tmp_path / "src")
    dataset, _ = _convert("mrnet", source, tmp_path)
    check_converted(dataset, task="classification", label_names=["no_tear", "tear"],
                    rows={"train": 6 * 12, "validation": 2 * 12},
                    case_ids={"train": {f"{n:04d}" for n in range(6)}, "validation": {"1130", "1131"}})
    train = dataset["train"]
    exam_1 = train.filter(lambda row: row["exam_id"] == "0001")
    assert set(exam_1["label"]) == {1}
    assert sorted(exam_1.filter(lambda row: row["plane"] == 2)["slice_index"]) == [0, 1, 2, 3, 4]
    stored = np.load(source / "MRNet-v1.0" / "train" / "coronal" / "0001.npy")[2]
    row = exam_1.filter(lambda row: row["plane"] == 1 and row["slice_index"] == 2)[0]
    np.testing.assert_array_equal(np.asarray(row["image"]), stored)
    axial_only, _ = _convert("mrnet", source, tmp_path / "axial", planes=["axial"], finding="abnormal")
    assert len(axial_only["train"]) == 18 and set(axial_only["train"]["label"]) == {1}


# ---------------------------------------------------------------- TUCC (dataset.hdf5 + metadata.csv)


def make_tucc_tree(root):
    h5py = pytest.importorskip("h5py")
    root.mkdir(parents=True)
    annot_ids, frames, images, masks = [], [], [], []
    clips = {"1_": 3, "2_": 2, "3_": 2, "4_": 2, "5_": 2, "5_2": 2, "6_": 1}
    for clip_index, (annot_id, n_frames) in enumerate(clips.items()):
        for frame in range(n_frames):
            annot_ids.append(annot_id.encode())
            frames.append(str(frame).encode())
            images.append(noise_image(clip_index * 10 + frame))
            masks.append(square_mask(value=255))
    with h5py.File(root / "dataset.hdf5", "w") as handle:
        handle["image"] = np.stack(images)
        handle["mask"] = np.stack(masks)
        handle["annot_id"] = np.array(annot_ids)
        handle["frame_num"] = np.array(frames)
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["annot_id", "age", "sex", "location", "size_x", "size_y", "size_z", "ti-rads_level",
                         "histopath_diagnosis"])
        for index, annot_id in enumerate(clips):
            writer.writerow([annot_id, 50, "F", "left", 1.0, 1.0, 1.0, 3 + index % 3, index % 2])
    return root


def test_tucc_groups_nodules_by_patient(tmp_path):
    source = make_tucc_tree(tmp_path / "src")
    dataset, _ = _convert("tucc", source, tmp_path)
    check_converted(dataset, task="segmentation", label_names=["background", "nodule"], rows={"train": 14},
                    case_ids={"train": {"1", "2", "3", "4", "5", "6"}}, mask_values={0, 1})
    train = dataset["train"]
    patient_5 = train.filter(lambda row: row["case_id"] == "5")
    assert set(patient_5["annot_id"]) == {"5_", "5_2"}
    assert set(train["histopath_diagnosis"]) == {0, 1}
    every_other, _ = _convert("tucc", source, tmp_path / "step", frame_step=2)
    assert len(every_other["train"]) == 2 + 1 + 1 + 1 + 1 + 1 + 1


# ---------------------------------------------------------------- conversion behaviour shared by all sources


def test_conversion_is_idempotent_and_refuses_other_options(tmp_path):
    source, _ = make_lgg_tree(tmp_path / "src")
    first = convert("lgg", source, tmp_path / "out", progress=False)
    marker = tmp_path / "out" / "vis_mae_conversion.json"
    stamp = marker.stat().st_mtime_ns
    again = convert("lgg", source, tmp_path / "out", progress=False)
    assert again.reused and not first.reused and marker.stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="seed"):
        convert("lgg", source, tmp_path / "out", seed=1, progress=False)
    replaced = convert("lgg", source, tmp_path / "out", seed=1, overwrite=True, progress=False)
    assert not replaced.reused and json.loads(marker.read_text())["seed"] == 1


def test_parquet_output_and_worker_processes_give_the_same_rows(tmp_path):
    source = make_busi_tree(tmp_path / "src")
    arrow = convert("busi_classification", source, tmp_path / "arrow", progress=False).load()
    parquet = convert("busi_classification", source, tmp_path / "parquet", output_format="parquet", num_proc=2,
                      progress=False).load()
    assert sorted(parquet["train"]["source_file"]) == sorted(arrow["train"]["source_file"])
    fold_of = dict(zip(arrow["train"]["source_file"], arrow["train"]["fold"]))
    assert all(fold_of[name] == fold for name, fold in zip(parquet["train"]["source_file"], parquet["train"]["fold"]))
    assert list((tmp_path / "parquet" / "data").glob("train-00000-of-*.parquet"))


def test_folds_depend_on_the_seed_only(tmp_path):
    source = make_busi_tree(tmp_path / "src")
    one = convert("busi_classification", source, tmp_path / "a", seed=3, progress=False).load()["train"]
    two = convert("busi_classification", source, tmp_path / "b", seed=3, progress=False).load()["train"]
    other = convert("busi_classification", source, tmp_path / "c", seed=4, progress=False).load()["train"]
    assert one["fold"] == two["fold"] and one["label_rank"] == two["label_rank"]
    assert one["label_rank"] != other["label_rank"]
    folds_json = json.loads((tmp_path / "a" / "folds.json").read_text())
    assert folds_json["seed"] == 3 and folds_json["method"] == "StratifiedGroupKFold"
    assert sum(folds_json["patients_per_fold"]) == 15


def test_unknown_source_option_and_missing_tree_are_clear_errors(tmp_path):
    with pytest.raises(TypeError, match="no option"):
        convert("lgg", tmp_path, tmp_path / "out", slice="all")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        convert("lgg", tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No lgg cases"):
        convert("lgg", tmp_path / "empty", tmp_path / "out", progress=False)
    with pytest.raises(KeyError, match="Unknown source"):
        convert("btcv2", tmp_path, tmp_path / "out")
