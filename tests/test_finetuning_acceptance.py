"""Issue 14, acceptance 2 (the fine-tuning part): from a Medical Segmentation Decathlon tree of real packaged NIfTI
volumes, a converted dataset, then `vis-mae finetune segmentation` for two steps with `--gradient-accumulation-steps
2`, once with `--tuning lora` and once with `--tuning linear_probe`, then `vis-mae predict` on a held-out volume
writes a mask with the volume's shape and affine.

The tree is converted by `vis-mae data convert decathlon`, which takes the label names from its `dataset.json`.
"""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hostile import vis_mae

from vis_mae_hf import VisMaeConfig, VisMaeForPreTraining
from vis_mae_hf.app.cli import main

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
LABELS = {"0": "background", "1": "tissue"}
TINY_MODEL = json.dumps({"embed_dim": 16, "num_heads": [1, 2, 4, 8], "depths": [2, 2, 2, 2], "drop_path_rate": 0.0})


def real_volumes() -> list[nib.Nifti1Image]:
    """Real scans shipped with nibabel: a T1 (LAS), the same anatomy resampled (RAS), two EPI frames."""
    anatomical = nib.load(NIBABEL_DATA / "anatomical.nii")
    moved = nib.load(NIBABEL_DATA / "reoriented_anat_moved.nii")
    epi = nib.load(NIBABEL_DATA / "example4d.nii.gz")
    frames = [nib.Nifti1Image(np.asarray(epi.dataobj[..., index]), epi.affine) for index in range(2)]
    flipped = nib.Nifti1Image(np.asarray(anatomical.dataobj)[::-1].copy(), anatomical.affine)  # another "patient"
    return [anatomical, moved, *frames, flipped]


def tissue_mask(image: nib.Nifti1Image) -> np.ndarray:
    values = np.asarray(image.dataobj, dtype=np.float32)
    return (values > np.percentile(values, 60)).astype(np.uint8)


def decathlon_tree(root: Path) -> tuple[Path, Path]:
    """`dataset.json`, `imagesTr/`, `labelsTr/` and `imagesTs/` (MSD layout); returns (tree, held-out volume)."""
    for folder in ("imagesTr", "labelsTr", "imagesTs"):
        (root / folder).mkdir(parents=True)
    training = []
    for index, image in enumerate(real_volumes()):
        name = f"case_{index:03d}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(image.dataobj), image.affine), root / "imagesTr" / name)
        nib.save(nib.Nifti1Image(tissue_mask(image), image.affine), root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    held_out = nib.load(NIBABEL_DATA / "example_nifti2.nii.gz")  # not among the training volumes
    held_out_path = root / "imagesTs" / "case_100.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(held_out.dataobj[..., 0]), held_out.affine), held_out_path)
    (root / "dataset.json").write_text(json.dumps({
        "name": "nibabel test volumes", "modality": {"0": "MRI"}, "labels": LABELS, "numTraining": len(training),
        "training": training, "test": ["./imagesTs/case_100.nii.gz"],
    }))
    return root, held_out_path


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("acceptance")
    tree, held_out = decathlon_tree(root / "Task99_Tissue")
    dataset = root / "converted"
    assert main(["data", "convert", "decathlon", str(tree), "--output", str(dataset)]) == 0
    torch.manual_seed(0)
    config = VisMaeConfig(**json.loads(TINY_MODEL), image_size=64)
    VisMaeForPreTraining(config).save_pretrained(root / "pretrained")
    return root, dataset, held_out


@pytest.mark.parametrize("tuning", ["lora", "linear_probe"])
def test_decathlon_volumes_fine_tune_two_accumulated_steps_and_predict_a_held_out_volume(
    converted, tmp_path, capsys, tuning
):
    root, dataset, held_out = converted
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        status, out, err = vis_mae(
            capsys, "finetune", "segmentation", "--dataset", dataset, "--output-dir", tmp_path / "model",
            "--init", f"vismae:{root / 'pretrained'}", "--tuning", tuning,
            "--max-steps", "2", "--gradient-accumulation-steps", "2", "--per-device-train-batch-size", "2",
            "--image-size", "64", "--config-overrides", TINY_MODEL, "--disable-tqdm", "true",
        )
        assert status == 0, err
        assert f"Tuning {tuning}:" in out and "x 2 accumulation = 4 per step" in out
        summary = json.loads((tmp_path / "model" / "finetuning_summary.json").read_text())
        assert summary["global_steps"] == 2 and summary["tuning"]["mode"] == tuning
        assert summary["label_names"] == list(LABELS.values())  # from dataset.json, through the converter
        assert not list((tmp_path / "model").glob("checkpoint-*"))
        status, out, err = vis_mae(capsys, "predict", "--model", tmp_path / "model", held_out, "--output",
                                   tmp_path / "predicted", "--quiet")
    finally:
        torch.set_num_threads(threads)
    assert status == 0, err
    source = nib.load(held_out)
    mask = nib.load(tmp_path / "predicted" / "case_100_mask.nii.gz")
    assert mask.shape == source.shape[:3]
    np.testing.assert_allclose(mask.affine, source.affine, atol=1e-4)
    assert set(np.unique(np.asarray(mask.dataobj)).tolist()) <= {0, 1}
