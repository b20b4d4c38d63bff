"""Fine-tuning with Trainer on small synthetic sets: data selection, initialisations, end-to-end runs, the loss."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from finetuning_sets import (
    SEGMENTATION_NAMES,
    TINY_OVERRIDES,
    synthetic_set,
    tiny_finetune,
    tiny_pretraining_checkpoint,
    tiny_run,
)

from vis_mae_hf.app.finetuning.arguments import (
    FinetuningArguments,
    finetuning_training_arguments,
)
from vis_mae_hf.app.finetuning.data import prepare_finetuning_data
from vis_mae_hf.app.finetuning.initialization import (
    Initialization,
    build_finetuning_model,
)
from vis_mae_hf.app.finetuning.training import (
    build_trainer,
    format_metrics_table,
    run_finetuning,
)
from vis_mae_hf.recipes import get_recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------------- data selection
def test_validation_is_the_held_out_fold_and_label_fractions_are_nested(tmp_path):
    directory = synthetic_set(tmp_path / "seg", "segmentation")
    def select(fraction):
        return prepare_finetuning_data(
            str(directory), "segmentation", fold=1, label_fraction=fraction, label_names=SEGMENTATION_NAMES
        )

    half, quarter, full = select(0.5), select(0.25), select(1.0)
    assert set(half.validation["fold"]) == {1}
    assert 1 not in set(full.train["fold"])
    assert len(full.train) + len(full.validation) == 20
    # prefixes of one patient permutation: 25 % of patients inside 50 % inside 100 %, and whole patients only
    assert set(quarter.train["slice_index"]) < set(half.train["slice_index"]) < set(full.train["slice_index"])
    assert len(half.train) % 2 == 0 and len(quarter.train) % 2 == 0
    assert half.id2label == dict(enumerate(SEGMENTATION_NAMES)) and half.problem_type is None


def test_segmentation_set_without_class_names_is_refused_with_the_fix(tmp_path):
    directory = synthetic_set(tmp_path / "seg", "segmentation")
    with pytest.raises(ValueError, match="--class-names"):
        prepare_finetuning_data(str(directory), "segmentation")


def test_classification_sets_take_names_from_their_class_labels_and_multilabel_is_recognised(tmp_path):
    single = prepare_finetuning_data(str(synthetic_set(tmp_path / "cls", "classification")), "classification")
    assert single.task == "classification" and single.label_names == ["negative", "positive"]
    assert single.problem_type == "single_label_classification"
    multi = prepare_finetuning_data(str(synthetic_set(tmp_path / "multi", "multilabel")), "classification")
    assert multi.task == "multilabel" and multi.problem_type == "multi_label_classification"
    with pytest.raises(ValueError, match="`mask` columns"):
        prepare_finetuning_data(str(tmp_path / "cls"), "segmentation")


def test_a_set_without_folds_uses_its_validation_split_and_says_the_subset_is_not_patient_grouped(tmp_path):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image

    features = Features({"image": Image(), "label": ClassLabel(names=["a", "b"])})
    pixels = [np.full((32, 32), value, dtype=np.uint8) for value in range(0, 200, 10)]
    rows = [{"image": pixel, "label": index % 2} for index, pixel in enumerate(pixels)]
    splits = {"train": rows[:16], "validation": rows[16:]}
    DatasetDict({name: Dataset.from_list(part, features=features) for name, part in splits.items()}).save_to_disk(
        str(tmp_path / "plain")
    )
    data = prepare_finetuning_data(str(tmp_path / "plain"), "classification", label_fraction=0.5)
    assert len(data.train) == 8 and len(data.validation) == 4 and data.fold is None
    assert any("not grouped by patient" in note for note in data.notes)


def test_a_missing_dataset_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        prepare_finetuning_data(str(tmp_path / "nowhere"), "segmentation")


# ---------------------------------------------------------------------------------------------------- initialisations
def test_initialization_strings_parse_and_bad_ones_list_the_choices():
    assert Initialization.parse("vismae:outputs/x") == Initialization("vismae", "outputs/x")
    assert Initialization.parse("random") == Initialization("random")
    swin = "swin:microsoft/swin-tiny-patch4-window7-224"
    assert str(Initialization.parse(swin)) == swin
    for bad in ("vismae", "imagenet", "random:x", ""):
        with pytest.raises(ValueError, match="expected 'vismae:"):
            Initialization.parse(bad)


def test_vismae_initialization_builds_the_published_segmenter_and_reports_what_starts_fresh(tmp_path):
    checkpoint = tiny_pretraining_checkpoint(tmp_path / "pretrained")
    model, report = build_finetuning_model(
        "segmentation", f"vismae:{checkpoint}", label_names=SEGMENTATION_NAMES, image_size=64,
        config_overrides={"drop_path_rate": 0.0},
    )
    assert model.config.depths == [2, 2, 6, 2] and model.config.id2label[2] == "brightest"
    assert "segmentation_head.weight" in report.fresh
    assert any(key.startswith("vis_mae.encoder.stages.2.blocks.4.") for key in report.fresh)
    assert not any(key.startswith("vis_mae.encoder.stages.0.") for key in report.fresh)
    assert "skip_projections" in report.format()
    assert report.source == f"vismae:{checkpoint}" and report.target == "VisMaeForSemanticSegmentation" and report.ok
    assert report.loaded["decoder.stages.0.blocks.1.mlp.fc2.weight"] == ["decoder.stages.0.blocks.1.mlp.fc2.weight"]
    assert set(report.loaded).isdisjoint(report.fresh)
    assert set(report.loaded) | set(report.fresh) == set(model.state_dict())
    # a shape that differs is refused, naming the fields asked for, tensors that differ and what to change
    with pytest.raises(
        ValueError, match=r"requested \{'embed_dim': 32.*decoder\.layernorm\.bias \(16,\) != \(32,\).*Shape fields"
    ):
        build_finetuning_model(
            "segmentation", f"vismae:{checkpoint}", label_names=SEGMENTATION_NAMES, image_size=64,
            config_overrides={"embed_dim": 32, "num_heads": [1, 2, 4, 8]},
        )
    with pytest.raises(OSError, match="cannot load a VIS-MAE checkpoint"):
        build_finetuning_model(
            "classification", f"vismae:{tmp_path / 'missing'}", label_names=["a", "b"], image_size=64
        )


def test_swin_initialization_converts_into_the_published_classifier(tmp_path):
    from transformers import SwinConfig, SwinModel

    SwinModel(SwinConfig(image_size=64, embed_dim=16, depths=[2, 2, 6, 2], num_heads=[1, 2, 4, 8])).save_pretrained(
        tmp_path / "swin"
    )
    model, report = build_finetuning_model(
        "classification", f"swin:{tmp_path / 'swin'}", label_names=["a", "b"], image_size=64,
        problem_type="single_label_classification",
    )
    assert model.config.depths == [2, 2, 2, 2]  # the published classifier layout, whatever Swin's depths
    assert sorted(report.fresh) == ["classifier.bias", "classifier.weight"]
    assert any(key.startswith("encoder.layers.2.blocks.5.") for key in report.unused)  # a SwinModel: no prefix
    assert report.source == f"swin:{tmp_path / 'swin'}" and report.notes  # the initialisation, and Swin's caveats


def test_random_initialization_reports_every_tensor_fresh():
    model, report = build_finetuning_model(
        "segmentation", "random", label_names=SEGMENTATION_NAMES, image_size=64,
        config_overrides={"embed_dim": 16, "num_heads": [1, 2, 4, 8]},
    )
    assert model.config.depths == [2, 2, 6, 2]
    assert report.source == "random" and not report.loaded and report.fresh == sorted(model.state_dict())
    assert "Every tensor keeps its fresh initialisation." in report.format()


# ---------------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def segmentation_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("segmentation_run")
    dataset = synthetic_set(root / "data", "segmentation")
    checkpoint = tiny_pretraining_checkpoint(root / "pretrained")
    arguments, training_options = tiny_run(
        dataset, root / "out", init=f"vismae:{checkpoint}", config_overrides=json.dumps({"drop_path_rate": 0.0}),
        class_names=",".join(SEGMENTATION_NAMES),
    )
    return run_finetuning(arguments, "segmentation", training_options, verbose=False)


def test_segmentation_from_a_pretraining_checkpoint_runs_end_to_end_and_saves_a_reloadable_model(segmentation_run):
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    output_dir = segmentation_run.output_dir
    results = json.loads((output_dir / "eval_results.json").read_text())
    for key in ("eval_loss", "eval_dice_mean", "eval_precision_mean", "eval_recall_mean", "eval_dice/bright"):
        assert key in results
    summary = json.loads((output_dir / "finetuning_summary.json").read_text())
    assert summary["initialization"]["source"].startswith("vismae:") and summary["initialization"]["loaded"]
    assert summary["global_steps"] == 2 and summary["label_fraction"] == 1.0
    assert not list(output_dir.glob("checkpoint-*"))  # removed at the end by default (keep_checkpoints=False)
    model = AutoModelForSemanticSegmentation.from_pretrained(output_dir)
    processor = AutoImageProcessor.from_pretrained(output_dir)
    assert model.config.id2label[1] == "bright"
    assert processor.normalization == "min_max" and processor.size["height"] == 64


def test_the_loss_the_trainer_reports_is_point_four_cross_entropy_plus_point_six_dice(segmentation_run):
    from transformers import default_data_collator

    trainer = segmentation_run.trainer
    dataset = trainer.eval_dataset
    batch = default_data_collator([dataset[index] for index in range(len(dataset))])
    model = trainer.model.eval()
    with torch.no_grad():
        logits = model(pixel_values=batch["pixel_values"]).logits.float()
    labels = batch["labels"]
    cross_entropy = F.cross_entropy(logits, labels)
    probabilities = logits.softmax(dim=1)
    dices = []
    for class_index in range(1, logits.shape[1]):  # background is left out of the Dice term
        target = (labels == class_index).float()
        predicted = probabilities[:, class_index]
        dices.append((2 * (predicted * target).sum() + 1e-5) / (predicted.pow(2).sum() + target.pow(2).sum() + 1e-5))
    expected = 0.4 * cross_entropy + 0.6 * (1 - torch.stack(dices).mean())
    reported = segmentation_run.metrics["eval_loss"]
    assert len(dataset) <= trainer.args.per_device_eval_batch_size  # one batch: the reported loss is this loss
    assert reported == pytest.approx(expected.item(), rel=1e-4)
    assert abs(reported - cross_entropy.item()) > 1e-3  # not cross-entropy alone


def parameter_names_by_weight_decay(trainer) -> dict[float, set[str]]:
    names = {id(parameter): name for name, parameter in trainer.model.named_parameters()}
    return {
        group["weight_decay"]: {names[id(parameter)] for parameter in group["params"]}
        for group in trainer.optimizer.param_groups
        if group["params"]
    }


def test_the_trainer_decays_every_parameter_as_published(segmentation_run):
    trainer = segmentation_run.trainer
    trainable = {name for name, parameter in trainer.model.named_parameters() if parameter.requires_grad}
    assert parameter_names_by_weight_decay(trainer) == {0.05: trainable}
    assert trainer.optimizer.defaults["betas"] == (0.9, 0.95)
    summary = json.loads((segmentation_run.output_dir / "finetuning_summary.json").read_text())
    assert summary["recipe"]["lr_scheduler_type"] == "cosine" and summary["recipe"]["depths"] == [2, 2, 6, 2]
    assert summary["arguments"]["decay_norms_and_biases"] is True  # recorded as resolved from the recipe


def test_the_trainer_exempts_what_the_model_names_when_asked(tmp_path):
    dataset = synthetic_set(tmp_path / "cls", "classification")
    data = prepare_finetuning_data(str(dataset), "classification")
    model, _ = build_finetuning_model(
        "classification", "random", label_names=data.label_names, image_size=64,
        problem_type=data.problem_type, config_overrides=json.loads(TINY_OVERRIDES),
    )
    arguments, training_options = tiny_run(dataset, tmp_path / "out", decay_norms_and_biases=False)
    training_args = finetuning_training_arguments(arguments, "classification", training_options)
    trainer = build_trainer(arguments, data, model, get_recipe("classification").image_processor(64), training_args)
    trainer.create_optimizer()
    groups = parameter_names_by_weight_decay(trainer)
    exempt = model.no_weight_decay()
    assert groups[0.0] == exempt and groups[0.05] == {name for name, _ in model.named_parameters()} - exempt
    # the model's rule, not Trainer's name patterns: position bias tables are exempt, which Trainer would decay
    assert any(name.endswith("relative_position_bias_table") for name in groups[0.0])


def test_training_arguments_come_from_the_recipe_unless_given(tmp_path):
    published = finetuning_training_arguments(FinetuningArguments(dataset="data/btcv"), "segmentation")
    assert (published.num_train_epochs, published.per_device_train_batch_size, published.learning_rate) == (150, 32, 1e-3)
    assert (published.weight_decay, published.adam_beta1, published.adam_beta2) == (0.05, 0.9, 0.95)
    assert published.lr_scheduler_type == "cosine" and published.warmup_steps == pytest.approx(40 / 150)
    assert published.per_device_eval_batch_size == 32 and published.output_dir == "outputs/vis-mae-finetune-segmentation"
    assert FinetuningArguments(dataset="data/btcv").resolved("segmentation").image_size == 320
    demo = finetuning_training_arguments(FinetuningArguments(), "classification")
    assert (demo.num_train_epochs, demo.per_device_train_batch_size, demo.learning_rate) == (10, 8, 1e-4)
    given = finetuning_training_arguments(
        FinetuningArguments(), "classification", {"learning_rate": 5e-4, "weight_decay": 0.0}
    )
    assert (given.learning_rate, given.weight_decay) == (5e-4, 0.0)  # what the user says wins
    # a given value equal to Transformers' own default still wins: "given" is what was set, not what differs
    assert finetuning_training_arguments(FinetuningArguments(), "classification", {"learning_rate": 5e-5}).learning_rate == 5e-5


def test_single_and_multi_label_classification_run_end_to_end_with_auc_metrics(tmp_path):
    from transformers import AutoModelForImageClassification

    single_set = synthetic_set(tmp_path / "cls", "classification")
    single = tiny_finetune(single_set, tmp_path / "out_cls", "classification")
    assert {"eval_roc_auc", "eval_pr_auc", "eval_accuracy"} <= set(single.metrics)
    assert 0.0 <= single.metrics["eval_roc_auc"] <= 1.0
    model = AutoModelForImageClassification.from_pretrained(single.output_dir)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    multi_set = synthetic_set(tmp_path / "multi", "multilabel")
    multi = tiny_finetune(multi_set, tmp_path / "out_multi", "classification")
    assert multi.trainer.model.config.problem_type == "multi_label_classification"
    assert "eval_roc_auc" in multi.metrics and "eval_roc_auc/other" in multi.metrics


def test_bad_config_overrides_and_init_fail_before_any_training(tmp_path):
    dataset = synthetic_set(tmp_path / "cls", "classification")
    with pytest.raises(ValueError, match="JSON object"):
        tiny_finetune(dataset, tmp_path / "o", "classification", config_overrides="[1, 2]")
    with pytest.raises(ValueError, match="Unknown initialisation"):
        tiny_finetune(dataset, tmp_path / "o", "classification", init="imagenet")


def test_metrics_table_groups_per_class_values():
    table = format_metrics_table(
        {"eval_loss": 0.5, "eval_dice_mean": 0.7, "eval_dice/wm": 0.8, "eval_recall/wm": 0.9, "eval_runtime": 3.0}
    )
    assert "dice_mean" in table and "runtime" not in table
    assert table.splitlines()[-1].split() == ["wm", "0.8000", "0.9000"]
