"""Tuning modes: `--tuning linear_probe` trains the head on a frozen encoder, `--tuning lora` trains PEFT adapters on
the encoder's attention and MLP projections with the head whole; the adapter is saved, reloads onto the run's base,
and merges into a plain checkpoint that `from_pretrained` and the predictor load cleanly. The label-efficiency sweep
takes the tuning mode as one more axis."""

import csv
import json

import pytest
import torch
from finetuning_sets import (
    SEGMENTATION_NAMES,
    TINY_OVERRIDES,
    synthetic_set,
    tiny_finetune,
    tiny_pretraining_checkpoint,
)

from vis_mae_hf import VisMaeForSemanticSegmentation
from vis_mae_hf.app.finetuning.arguments import FinetuningArguments
from vis_mae_hf.app.finetuning.training import ADAPTER_DIR, load_lora_run
from vis_mae_hf.app.finetuning.tuning import (
    LoraSettings,
    adapted_module_names,
    apply_tuning,
    frozen_fresh_note,
    merge_lora,
    trainable_counts,
)
from vis_mae_hf.app.sweep import (
    LabelEfficiencyArguments,
    read_results,
    run_label_efficiency,
    summarize_results,
)
from vis_mae_hf.inference import VisMaePredictor

CLASS_NAMES = ",".join(SEGMENTATION_NAMES)
TINY = json.loads(TINY_OVERRIDES)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuning")
    return synthetic_set(root / "seg", "segmentation"), synthetic_set(root / "cls", "classification"), root


def tiny_segmenter(depths=(2, 2, 2, 2)):
    from vis_mae_hf import VisMaeConfig

    torch.manual_seed(0)
    config = VisMaeConfig(**TINY, depths=list(depths), image_size=64, num_labels=3)
    return VisMaeForSemanticSegmentation(config)


# ------------------------------------------------------------------------------------------------------ linear probe


def test_a_linear_probe_trains_the_segmentation_decoder_and_head_on_a_frozen_encoder(data, tmp_path):
    segmentation, _, root = data
    checkpoint = tiny_pretraining_checkpoint(root / "pretrained-probe")
    result = tiny_finetune(segmentation, tmp_path / "out", "segmentation", init=f"vismae:{checkpoint}",
                           tuning="linear_probe", class_names=CLASS_NAMES,
                           config_overrides=json.dumps({"depths": [2, 2, 2, 2]}))
    trained = result.trainer.model
    assert not any(parameter.requires_grad for name, parameter in trained.named_parameters() if name.startswith("vis_mae."))
    assert all(parameter.requires_grad for name, parameter in trained.named_parameters() if not name.startswith("vis_mae."))
    assert trained.config.drop_path_rate == 0.0  # a frozen encoder's features do not change from step to step
    # the saved encoder is the checkpoint's, untouched by two steps; the decoder (loaded from the MAE decoder) moved
    saved = VisMaeForSemanticSegmentation.from_pretrained(result.output_dir).state_dict()
    start = VisMaeForSemanticSegmentation.from_pretrained(checkpoint, num_labels=3, depths=[2, 2, 2, 2]).state_dict()
    encoder = [name for name in saved if name.startswith("vis_mae.")]
    assert encoder and all(torch.equal(saved[name], start[name]) for name in encoder)
    assert not torch.equal(saved["decoder.stages.0.blocks.0.mlp.fc1.weight"], start["decoder.stages.0.blocks.0.mlp.fc1.weight"])
    summary = json.loads((result.output_dir / "finetuning_summary.json").read_text())
    assert summary["tuning"]["mode"] == "linear_probe" and 0 < summary["tuning"]["trainable_parameters"]


def test_a_classification_linear_probe_trains_only_the_pooling_norm_and_the_classifier(data, tmp_path):
    _, classification, _ = data
    result = tiny_finetune(classification, tmp_path / "out", "classification", tuning="linear_probe")
    trainable = sorted(name for name, parameter in result.trainer.model.named_parameters() if parameter.requires_grad)
    assert trainable == ["classifier.bias", "classifier.weight", "vis_mae.layernorm.bias", "vis_mae.layernorm.weight"]
    assert 0.0 <= result.metrics["eval_roc_auc"] <= 1.0


def test_freezing_blocks_a_checkpoint_did_not_provide_is_said():
    fresh = ["vis_mae.encoder.stages.2.blocks.4.mlp.fc1.weight", "segmentation_head.weight"]
    note = frozen_fresh_note(fresh, "linear_probe", "segmentation", "vismae:outputs/vis-mae-pretrain")
    assert "freezes 1 encoder tensors" in note and "vis_mae.encoder.stages.2.blocks.4" in note and "depths" in note
    assert frozen_fresh_note(fresh, "full", "segmentation", "vismae:x") is None
    assert frozen_fresh_note(fresh, "lora", "segmentation", "random") is None  # all fresh on purpose


# -------------------------------------------------------------------------------------------------------------- LoRA


def test_lora_adapts_only_the_encoders_block_projections_and_trains_the_head_whole():
    model = apply_tuning(tiny_segmenter(), "lora", "segmentation", LoraSettings(rank=2, alpha=4.0))
    adapted = adapted_module_names(model)
    assert len(adapted) == 8 * 4  # 8 encoder blocks x (qkv, projection, fc1, fc2)
    assert all(name.startswith("vis_mae.encoder.stages.") for name in adapted)  # not the decoder's twins
    assert not any("embeddings" in name or "reduction" in name for name in adapted)
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert any(".modules_to_save.default." in name and "decoder." in name for name in trainable)
    assert any("segmentation_head.modules_to_save" in name for name in trainable)
    assert not any(".base_layer." in name for name in trainable)  # the encoder's own weights are frozen
    lora_a = model.get_parameter(next(name for name in trainable if name.endswith("qkv.lora_A.default.weight")))
    assert lora_a.shape[0] == 2
    only_qkv = apply_tuning(tiny_segmenter(), "lora", "segmentation", LoraSettings.parse(4, 8, 0.0, "qkv"))
    assert {name.rsplit(".", 1)[1] for name in adapted_module_names(only_qkv)} == {"qkv"}
    trainable_count, total = trainable_counts(only_qkv)
    assert 0 < trainable_count < total


@pytest.fixture(scope="module")
def lora_run(data, tmp_path_factory):
    segmentation, _, root = data
    checkpoint = tiny_pretraining_checkpoint(root / "pretrained-lora")
    return tiny_finetune(
        segmentation, tmp_path_factory.mktemp("lora") / "out", "segmentation", init=f"vismae:{checkpoint}",
        tuning="lora", lora_rank=4, lora_alpha=8.0, class_names=CLASS_NAMES, gradient_checkpointing=True,
        learning_rate=0.01,
    )


def test_lora_trains_adapters_under_activation_checkpointing_and_saves_the_adapter(lora_run):
    model = lora_run.trainer.model
    lora_b = [parameter for name, parameter in model.named_parameters() if ".lora_B." in name]
    assert lora_b and any(parameter.abs().sum() > 0 for parameter in lora_b)  # B starts at zero: it was trained
    adapter = lora_run.output_dir / ADAPTER_DIR
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8.0
    assert set(config["modules_to_save"]) == {"decoder", "final_patch_expanding", "segmentation_head"}
    summary = json.loads((lora_run.output_dir / "finetuning_summary.json").read_text())
    assert summary["tuning"]["lora"]["rank"] == 4 and summary["tuning"]["mode"] == "lora"
    assert summary["tuning"]["trainable_parameters"] < summary["tuning"]["parameters"]


def test_the_adapter_reloads_and_merges_into_the_plain_checkpoint_the_run_saved(lora_run):
    pixel_values = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    merged = merge_lora(load_lora_run(lora_run.output_dir)).eval()
    saved, info = VisMaeForSemanticSegmentation.from_pretrained(lora_run.output_dir, output_loading_info=True)
    assert all(not keys for keys in info.values()), info  # a plain checkpoint: nothing missing, nothing extra
    assert type(merged) is VisMaeForSemanticSegmentation and not any("lora" in key for key in saved.state_dict())
    with torch.no_grad():
        assert torch.allclose(merged(pixel_values).logits, saved.eval()(pixel_values).logits, atol=1e-5)
    predictor = VisMaePredictor.from_pretrained(lora_run.output_dir)  # refuses any load report that is not empty
    assert predictor.label_names == SEGMENTATION_NAMES


def test_a_run_that_was_not_lora_has_no_adapter_to_reload(data, tmp_path):
    segmentation, _, _ = data
    result = tiny_finetune(segmentation, tmp_path / "out", "segmentation", class_names=CLASS_NAMES)
    with pytest.raises(FileNotFoundError, match="not the output of a --tuning lora run"):
        load_lora_run(result.output_dir)


def test_lora_follows_the_weight_decay_rule_of_the_wrapped_model(data, tmp_path):
    _, classification, _ = data
    result = tiny_finetune(classification, tmp_path / "out", "classification", tuning="lora",
                           decay_norms_and_biases=False)
    trainer = result.trainer
    decayed = set(trainer.get_decay_parameter_names(trainer.model))
    trainable = {name for name, parameter in trainer.model.named_parameters() if parameter.requires_grad}
    assert any("lora_A" in name for name in decayed) and any(name.endswith("classifier.modules_to_save.default.weight")
                                                            for name in decayed)
    exempt = trainable - decayed
    assert exempt and all(name.endswith("bias") or "layernorm" in name for name in exempt)


def test_without_peft_lora_is_one_error_naming_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_peft(name, *args, **kwargs):
        if name == "peft":
            raise ImportError("No module named 'peft'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peft)
    with pytest.raises(ImportError, match=r'pip install "vis-mae-hf\[lora\]"'):
        apply_tuning(tiny_segmenter(), "lora", "segmentation")


# --------------------------------------------------------------------------------------------------- the sweep axis


def test_the_sweep_takes_the_tuning_mode_as_one_more_axis_and_reads_csvs_without_it(data, tmp_path):
    segmentation, _, _ = data
    grid = LabelEfficiencyArguments(
        task="segmentation", inits="random", tunings="full,linear_probe,lora", folds="0", label_fractions="1.0",
        results_dir=str(tmp_path / "sweep"),
    )
    template = FinetuningArguments(
        dataset=str(segmentation), class_names=CLASS_NAMES, image_size=64, config_overrides=TINY_OVERRIDES
    )
    options = {"max_steps": 1, "per_device_train_batch_size": 4, "disable_tqdm": True}
    run_label_efficiency(grid, template, options, verbose=False)
    rows = read_results(tmp_path / "sweep" / "results.csv")
    assert sorted(row["tuning"] for row in rows) == ["full", "linear_probe", "lora"]
    assert set(summarize_results(rows)) == {"random", "random (linear_probe)", "random (lora)"}
    assert len({row["run_dir"] for row in rows}) == 3

    # A CSV of the earlier version (no tuning column) holds full runs; appending rewrites it with the column.
    old = tmp_path / "old" / "results.csv"
    old.parent.mkdir()
    with (tmp_path / "sweep" / "results.csv").open(newline="") as handle:
        full_rows = [row for row in csv.DictReader(handle) if row["tuning"] == "full"]
    with old.open("w", newline="") as handle:
        columns = [column for column in full_rows[0] if column != "tuning"]
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(full_rows)
    assert [row["tuning"] for row in read_results(old)] == ["full"]
    resumed = LabelEfficiencyArguments(
        task="segmentation", inits="random", tunings="full,linear_probe", folds="0", label_fractions="1.0",
        results_dir=str(old.parent),
    )
    run_label_efficiency(resumed, template, options, verbose=False)  # only the linear probe is missing
    rows = read_results(old)
    assert [row["tuning"] for row in rows] == ["full", "linear_probe"]
    assert old.read_text().splitlines()[0].split(",")[3] == "tuning"
    with pytest.raises(ValueError, match="--tunings: \\['adapter'\\] are not tuning modes"):
        LabelEfficiencyArguments(tunings="full,adapter").parsed_tunings()
