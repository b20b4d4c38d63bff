"""`vis-mae hub export`: complete, deterministic repositories, per-variant processors, honest cards, validation."""

import dataclasses
import hashlib
import importlib
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import transformers
from conftest import save_tiny_model, tiny_config_kwargs
from huggingface_hub import ModelCard
from PIL import Image

import vis_mae_hf
from vis_mae_hf import (
    VisMaeConfig,
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeImageProcessor,
    VisMaeModel,
)
from vis_mae_hf.app.cli import main as cli_main
from vis_mae_hf.app.finetuning.arguments import finetuning_training_arguments
from vis_mae_hf.app.finetuning.data import FinetuningData
from vis_mae_hf.app.finetuning.training import FinetuningArguments, finetuning_summary
from vis_mae_hf.hub import (
    VARIANTS,
    CardTemplateError,
    ExportError,
    SummaryError,
    export_repository,
    validate_repository,
)
from vis_mae_hf.hub.card import default_template_path
from vis_mae_hf.hub.push import repository_files
from vis_mae_hf.hub.remote_code import (
    CONFIG_AUTO_MAP,
    IMAGE_PROCESSOR_AUTO_MAP,
    REMOTE_CODE_FILES,
)
from vis_mae_hf.hub.validation import UNFILLED_PLACEHOLDER
from vis_mae_hf.image_processing_vis_mae import apply_window
from vis_mae_hf.metrics import evaluate_segmentation_files
from vis_mae_hf.output_folders import MANIFEST_NAME, OutputFolderError
from vis_mae_hf.recipes import RECIPES, get_recipe
from vis_mae_hf.vocabulary import PRETRAINING
from vis_mae_hf.weights.load_report import LoadReport

IMAGE_SIZE = 64


def training_summary(modality="mr", counts=None, **extra):
    counts = counts if counts is not None else {modality.upper() if modality != "generic" else "CT": 12}
    summary = {
        "modality": modality,
        "dataset": "built-in demo corpus",
        "modality_counts": counts,
        "num_images": sum(counts.values()),
        "global_steps": 6,
        "epochs": 2.0,
        "final_loss": 0.4321,
        "recipe": {"optimizer": "AdamW", "learning_rate": 0.001, "global_batch_size": 4, "mask_ratio": 0.75},
        "package_version": vis_mae_hf.__version__,
    }
    summary.update(extra)
    return summary


def make_run(directory, modality="mr", seed=0, summary=None, processor=True, reconstruction=True):
    """What `run_pretraining` leaves behind, at unit-test size."""
    torch.manual_seed(seed)
    model = VisMaeForPreTraining(VisMaeConfig(**tiny_config_kwargs(image_size=IMAGE_SIZE)))
    model.save_pretrained(directory)
    if processor:
        get_recipe("pretraining").image_processor(IMAGE_SIZE).save_pretrained(directory)
    (directory / "training_summary.json").write_text(json.dumps(summary or training_summary(modality)))
    if reconstruction:
        Image.fromarray(np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8)).save(
            directory / "reconstruction.png"
        )
    return directory


@pytest.fixture
def run_dir(tmp_path):
    return make_run(tmp_path / "run")


def file_digests(directory):
    """The repository's files (what a push uploads) -> sha256."""
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in repository_files(directory)}


# ---------------------------------------------------------------------------------------------------------------------
# What a repository holds
# ---------------------------------------------------------------------------------------------------------------------
def test_export_writes_weights_full_auto_maps_code_and_card(run_dir, tmp_path):
    repo = export_repository(run_dir, "mr", tmp_path / "repo", repo_id="org/vis-mae-mr")
    assert sorted(p.name for p in repo.iterdir()) == sorted(
        ["README.md", "config.json", "model.safetensors", "preprocessor_config.json", "training_summary.json",
         "reconstruction.png", *REMOTE_CODE_FILES, MANIFEST_NAME]
    )
    # the manifest (hidden: never pushed) lists exactly the repository's files, the ones a re-export may replace
    assert sorted(json.loads((repo / MANIFEST_NAME).read_text())["files"]) == repository_files(repo)
    config = json.loads((repo / "config.json").read_text())
    assert config["auto_map"] == CONFIG_AUTO_MAP
    assert config["architectures"] == ["VisMaeForPreTraining"]
    assert config["vis_mae_hf_version"] == vis_mae_hf.__version__
    processor = json.loads((repo / "preprocessor_config.json").read_text())
    assert processor["auto_map"] == IMAGE_PROCESSOR_AUTO_MAP
    # the code files are the installed package's, byte for byte
    package_dir = vis_mae_hf.__file__.rsplit("/", 1)[0]
    for name in REMOTE_CODE_FILES:
        assert (repo / name).read_bytes() == open(f"{package_dir}/{name}", "rb").read(), name
    # the weights are the run's
    exported = VisMaeForPreTraining.from_pretrained(repo).state_dict()
    original = VisMaeForPreTraining.from_pretrained(run_dir).state_dict()
    assert exported.keys() == original.keys() and all(torch.equal(exported[k], original[k]) for k in exported)
    assert validate_repository(repo, "org/vis-mae-mr") == []


def test_auto_map_covers_every_auto_class_the_package_registers():
    registered = {
        name
        for name in dir(transformers)
        if (name.startswith("AutoModel") or name == "AutoBackbone")
        and hasattr(getattr(transformers, name), "_model_mapping")
        and VisMaeConfig in getattr(transformers, name)._model_mapping._extra_content
    }
    assert registered == {name for name in CONFIG_AUTO_MAP if name != "AutoConfig"}
    for reference in CONFIG_AUTO_MAP.values():
        module, class_name = reference.split(".")
        assert hasattr(importlib.import_module(f"vis_mae_hf.{module}"), class_name), reference
    image_processors = transformers.models.auto.image_processing_auto.IMAGE_PROCESSOR_MAPPING[VisMaeConfig]
    assert {backend: cls.__name__ for backend, cls in image_processors.items()} == {
        backend: reference.split(".")[1]
        for backend, reference in IMAGE_PROCESSOR_AUTO_MAP["AutoImageProcessor"].items()
    }


def test_reexport_is_byte_identical(run_dir, tmp_path):
    summary = training_summary("mr")
    first = export_repository(run_dir, "mr", tmp_path / "first", repo_id="org/vis-mae-mr", training_summary=summary)
    second = export_repository(run_dir, "mr", tmp_path / "second", repo_id="org/vis-mae-mr", training_summary=summary)
    digests = file_digests(first)
    assert digests == file_digests(second)
    # overwriting a previous export in place gives the same bytes again
    export_repository(run_dir, "mr", first, repo_id="org/vis-mae-mr", training_summary=summary, overwrite=True)
    assert file_digests(first) == digests


def test_a_different_run_changes_the_weights_not_the_layout(tmp_path):
    first = export_repository(make_run(tmp_path / "a", seed=0), "mr", tmp_path / "ra", repo_id="org/m")
    second = export_repository(make_run(tmp_path / "b", seed=1), "mr", tmp_path / "rb", repo_id="org/m")
    a, b = file_digests(first), file_digests(second)
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == ["model.safetensors"]


# ---------------------------------------------------------------------------------------------------------------------
# Variant processors
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_keeps_the_pretraining_input_and_only_ct_windows(tmp_path, variant):
    counts = {"CT": 5, "MR": 7} if variant == "generic" else {variant.upper(): 12}
    run = make_run(tmp_path / "run", summary=training_summary(variant, counts))
    repo = export_repository(run, variant, tmp_path / "repo", repo_id=f"org/vis-mae-{variant}")
    settings = json.loads((repo / "preprocessor_config.json").read_text())
    assert settings["normalization"] == "pretraining"
    assert settings["size"] == {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    assert settings.get("hounsfield_window") == ("abdomen" if variant == "ct" else None)
    card = (repo / "README.md").read_text()
    assert ("| intensity window | \"abdomen\" (width 400 HU, level 40 HU" in card) == (variant == "ct")


def test_ct_repository_windows_hounsfield_units_and_mr_refuses_them(tmp_path):
    ct_run = make_run(tmp_path / "ct", summary=training_summary("ct"))
    ct = export_repository(ct_run, "ct", tmp_path / "ct-repo", repo_id="o/c")
    mr = export_repository(make_run(tmp_path / "mr"), "mr", tmp_path / "mr-repo", repo_id="o/m")
    hounsfield = np.linspace(-1000, 1000, IMAGE_SIZE * IMAGE_SIZE, dtype=np.float32).reshape(IMAGE_SIZE, IMAGE_SIZE)
    pixels = VisMaeImageProcessor.from_pretrained(ct)(images=hounsfield, return_tensors="pt")["pixel_values"]
    expected = (apply_window(hounsfield, 400, 40) - 0.223) / 0.202
    assert torch.allclose(pixels[0, 0], torch.from_numpy(expected), atol=1e-5)
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        VisMaeImageProcessor.from_pretrained(mr)(images=hounsfield)


def test_explicit_window_overrides_the_variant_default(tmp_path):
    run = make_run(tmp_path / "run", summary=training_summary("ct"))
    repo = export_repository(run, "ct", tmp_path / "repo", repo_id="o/c", hounsfield_window=(400, 75))
    assert json.loads((repo / "preprocessor_config.json").read_text())["hounsfield_window"] == [400.0, 75.0]
    with pytest.raises(ValueError, match="Unknown CT window 'skull'"):
        export_repository(run, "ct", tmp_path / "bad", repo_id="o/c", hounsfield_window="skull")
    assert not (tmp_path / "bad").exists()


def test_a_directory_without_processor_gets_the_published_pretraining_input(tmp_path):
    run = make_run(tmp_path / "run", processor=False)
    repo = export_repository(run, "mr", tmp_path / "repo", repo_id="o/m")
    processor = VisMaeImageProcessor.from_pretrained(repo)
    assert (processor.normalization, processor.num_channels) == ("pretraining", 3)
    assert processor.size == {"height": IMAGE_SIZE, "width": IMAGE_SIZE}


# ---------------------------------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------------------------------
def test_export_refuses_a_variant_its_training_data_contradict(tmp_path, run_dir):
    with pytest.raises(ExportError, match="records pretraining on modality 'mr'.*--variant mr"):
        export_repository(run_dir, "ct", tmp_path / "repo")
    mixed = make_run(tmp_path / "mixed", summary=training_summary("us", {"US": 4, "CT": 2}))
    with pytest.raises(ExportError, match="other modalities \\{'CT': 2\\}"):
        export_repository(mixed, "us", tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize(
    "summary, message",
    [
        ({"modality": "mr", "modality_counts": {"MR": 3}, "num_images": 4}, "add up to 3 images but 'num_images' is 4"),
        ({"modality": "brain", "modality_counts": {}, "num_images": 1}, "'modality' must be one of"),
        ({"modality": "mr", "modality_counts": {"MR": 3}}, "'num_images' must be a positive integer"),
        (
            {"modality": "mr", "modality_counts": {"MR": 3}, "num_images": 3, "final_loss": "low"},
            "'final_loss' must be",
        ),
    ],
)
def test_export_refuses_a_training_summary_that_cannot_describe_the_weights(tmp_path, run_dir, summary, message):
    with pytest.raises(SummaryError, match=message):
        export_repository(run_dir, "mr", tmp_path / "repo", training_summary=summary)


def test_export_needs_to_know_what_the_weights_were_trained_on(tmp_path, run_dir):
    (run_dir / "training_summary.json").unlink()
    with pytest.raises(ExportError, match="has no training_summary.json.*--training-summary"):
        export_repository(run_dir, "mr", tmp_path / "repo")


def test_export_refuses_models_it_cannot_describe_and_incomplete_weights(tmp_path):
    encoder_dir = tmp_path / "encoder"
    VisMaeModel(VisMaeConfig(**tiny_config_kwargs(image_size=IMAGE_SIZE))).save_pretrained(encoder_dir)
    (encoder_dir / "training_summary.json").write_text(json.dumps(training_summary("mr")))
    with pytest.raises(ExportError, match="holds a VisMaeModel model; the exporter publishes pretraining checkpoints"):
        export_repository(encoder_dir, "mr", tmp_path / "repo")
    # a fine-tuned segmenter needs the record of its fine-tuning, not a pretraining summary
    segmenter_dir = tmp_path / "segmenter"
    segmenter = VisMaeForSemanticSegmentation(VisMaeConfig(**tiny_config_kwargs(image_size=IMAGE_SIZE)))
    segmenter.save_pretrained(segmenter_dir)
    (segmenter_dir / "training_summary.json").write_text(json.dumps(training_summary("mr")))
    with pytest.raises(ExportError, match="segmenter has no finetuning_summary.json.*--finetuning-summary"):
        export_repository(segmenter_dir, "mr", tmp_path / "repo")
    with pytest.raises(ExportError, match="--training-summary describes pretraining.*fine-tuned "
                                          "VisMaeForSemanticSegmentation"):
        export_repository(segmenter_dir, None, tmp_path / "repo", training_summary=training_summary("mr"))
    with pytest.raises(ExportError, match="is a pretraining checkpoint, published as one of the variants: pass "
                                          "--variant"):
        export_repository(make_run(tmp_path / "run"), None, tmp_path / "repo")
    # weights that leave part of the pretraining model uninitialised are not a checkpoint to publish
    partial = make_run(tmp_path / "partial")
    from safetensors.torch import load_file, save_file

    state = load_file(partial / "model.safetensors")
    kept = {k: v for k, v in state.items() if not k.startswith("reconstruction_head.")}
    save_file(kept, partial / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ExportError, match="do not load completely.*reconstruction_head.weight"):
        export_repository(partial, "mr", tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_export_never_clobbers_an_unrelated_folder(tmp_path, run_dir):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(OutputFolderError, match=r"is not empty \(holds notes.txt\) and has no .vis-mae-outputs"):
            export_repository(run_dir, "mr", precious, overwrite=overwrite)
    export_repository(run_dir, "mr", tmp_path / "earlier")
    with pytest.raises(OutputFolderError, match="holds an export of `vis-mae hub export` .*; pass --overwrite"):
        export_repository(run_dir, "mr", tmp_path / "earlier")
    assert (precious / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind


# ---------------------------------------------------------------------------------------------------------------------
# The model card
# ---------------------------------------------------------------------------------------------------------------------
def test_card_parses_and_states_data_recipe_limitations_and_version(run_dir, tmp_path):
    repo = export_repository(run_dir, "mr", tmp_path / "repo", repo_id="org/vis-mae-mr", license="cc-by-nc-4.0",
                             base_model="org/vis-mae-generic")
    card = ModelCard.load(repo / "README.md")
    metadata = card.data.to_dict()
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "image-feature-extraction"
    assert metadata["license"] == "cc-by-nc-4.0"
    assert metadata["base_model"] == "org/vis-mae-generic"
    assert {"vis-mae", "medical-imaging", "mri", "demo-weights"} <= set(metadata["tags"])
    assert "model-index" not in metadata and "metrics" not in metadata  # no evaluation given: no results claimed
    text = card.text
    assert UNFILLED_PLACEHOLDER.search(text) is None and "template-note" not in text
    # data, from the training summary
    assert "**12 unlabeled images**" in text and "| MR | 12 |" in text
    # recipe, from the training summary
    assert "6 optimisation steps, 2 epochs, final reconstruction loss 0.4321" in text
    assert "| learning_rate | 0.001 |" in text and "| global_batch_size | 4 |" in text
    # honesty about scale and results
    assert "**Demonstration weights.**" in text and "none of the paper's results apply to them" in text
    assert "No downstream evaluation of these weights was supplied" in text
    # intended use, out of scope, limitations, version, citations
    for section in ("## Intended use", "## Out-of-scope use", "## Limitations and biases", "## Citation"):
        assert section in text
    assert "This is not a medical device" in text
    assert f"Exported with **vis-mae-hf {vis_mae_hf.__version__}**" in text
    for citation in ("arXiv:2402.01034", "10.1016/j.compbiomed.2023.107037", "arXiv:2105.05537"):
        assert citation in text
    # how to use: the documented fine-tuning line and what the no-argument call gives
    assert 'VisMaeForSemanticSegmentation.from_pretrained("org/vis-mae-mr")' in text
    assert "repo, num_labels=K, depths=[2, 2, 6, 2]" in text
    assert "![Masked inputs and their reconstructions" in text
    assert "Pretraining started from the weights of [`org/vis-mae-generic`]" in text


def test_base_model_comes_from_the_training_summary_when_it_is_a_hub_id(tmp_path):
    summary = training_summary("mr", base_model="org/vis-mae-generic")
    repo = export_repository(make_run(tmp_path / "run", summary=summary), "mr", tmp_path / "repo", repo_id="o/m")
    assert ModelCard.load(repo / "README.md").data.base_model == "org/vis-mae-generic"
    local_start = training_summary("mr", base_model=str(tmp_path / "run"))  # continued from a local folder
    repo = export_repository(tmp_path / "run", "mr", tmp_path / "repo2", repo_id="o/m", training_summary=local_start)
    assert ModelCard.load(repo / "README.md").data.base_model is None
    with pytest.raises(ExportError, match="--base-model 'generic' is not a Hub model id"):
        export_repository(tmp_path / "run", "mr", tmp_path / "repo3", base_model="generic")


def test_card_with_an_evaluation_summary_reports_exactly_those_results(run_dir, tmp_path):
    evaluation = {
        "results": [
            {"task": "semantic-segmentation", "dataset": "MNI152 tissue slices", "split": "5-fold cross-validation",
             "label_fraction": 0.25, "metrics": {"dice_mean": 0.612, "precision_mean": 0.7}},
            {"task": "image-classification", "dataset": "Modality from header", "dataset_id": "org/modality",
             "metrics": {"roc_auc": 0.91}},
        ]
    }
    repo = export_repository(run_dir, "mr", tmp_path / "repo", repo_id="org/vis-mae-mr", evaluation=evaluation)
    card = ModelCard.load(repo / "README.md")
    assert card.data.metrics == ["dice_mean", "precision_mean", "roc_auc"]
    assert [(r.dataset_name, r.metric_type, r.metric_value) for r in card.data.eval_results] == [
        ("MNI152 tissue slices", "dice_mean", 0.612), ("MNI152 tissue slices", "precision_mean", 0.7),
        ("Modality from header", "roc_auc", 0.91),
    ]
    assert card.data.eval_results[2].dataset_type == "org/modality"
    row = "| semantic-segmentation | MNI152 tissue slices | 5-fold cross-validation | 25% | dice_mean | 0.612 |"
    assert row in card.text
    assert json.loads((repo / "evaluation_summary.json").read_text()) == evaluation
    assert validate_repository(repo, "org/vis-mae-mr") == []


def test_card_of_real_scale_weights_does_not_call_them_demo(tmp_path):
    summary = training_summary("generic", {"CT": 40000, "MR": 60000}, dataset="/data/corpus")
    repo = export_repository(make_run(tmp_path / "run", summary=summary), "generic", tmp_path / "repo", repo_id="o/g")
    card = ModelCard.load(repo / "README.md")
    assert "demo-weights" not in card.data.tags
    assert "Demonstration" not in card.text
    assert "**Scale.** These weights were pretrained on 100,000 images" in card.text
    assert "| **total** | **100,000** |" in card.text
    assert "**VIS-MAE-Generic** (this repository)" in card.text


def test_template_placeholders_must_match_the_renderer(run_dir, tmp_path):
    template = tmp_path / "MODEL_CARD.md"
    # the template reads the evaluation under a name the renderer does not compute, and never reads `evaluation`
    renamed = re.sub(r"(?<=in |if )evaluation\b", "results_table", default_template_path().read_text())
    template.write_text(renamed)
    with pytest.raises(CardTemplateError, match="unknown placeholders \\['results_table'\\].*lacks \\['evaluation'\\]"):
        export_repository(run_dir, "mr", tmp_path / "repo", card_template=template)
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text.replace("## Out-of-scope use", "## Other uses"), "lacks the section '## Out-of-scope use'"),
        (
            lambda text: text.replace("**This is not a medical device.**", "**Use with care.**"),
            "does not state that the model is not a medical device",
        ),
        (lambda text: text.replace("{{ model.depths }}", "{{ model.colour }}", 1), "cannot be rendered: .*colour"),
        (lambda text: text.replace("{% endif %}", "", 1), "is not valid Jinja2"),
        (lambda text: text.split("\n---\n", 1)[1], "has no YAML metadata block"),
    ],
    ids=["section", "medical-device statement", "missing fact", "syntax", "metadata"],
)
def test_a_template_without_a_required_passage_or_fact_is_refused(run_dir, tmp_path, edit, message):
    template = tmp_path / "MODEL_CARD.md"
    template.write_text(edit(default_template_path().read_text()))
    with pytest.raises(CardTemplateError, match=message):
        export_repository(run_dir, "mr", tmp_path / "repo", card_template=template)
    assert not (tmp_path / "repo").exists()


def test_the_cards_published_numbers_follow_the_recipe_table_and_the_config_defaults(run_dir, tmp_path, monkeypatch):
    published = RECIPES[(PRETRAINING, False)]
    text = (export_repository(run_dir, "mr", tmp_path / "repo", repo_id="o/m") / "README.md").read_text()
    assert (
        f"AdamW (betas {published.adam_beta1}, {published.adam_beta2}, weight decay {published.weight_decay} on every "
        f"parameter),\nlearning rate {published.learning_rate} with {published.warmup_epochs} warm-up epochs"
    ) in text
    architecture = VisMaeConfig()
    assert f"(window {architecture.window_size}, widths {architecture.embed_dim}-{architecture.hidden_size}, " in text
    # a changed recipe table changes every published number the card states, and nothing else is consulted
    changed = dataclasses.replace(published, learning_rate=2e-3, warmup_epochs=5, num_train_epochs=400,
                                  per_device_train_batch_size=320, reference_global_batch=1280,
                                  decay_norms_and_biases=False)
    monkeypatch.setitem(RECIPES, (PRETRAINING, False), changed)
    text = (export_repository(run_dir, "mr", tmp_path / "repo2", repo_id="o/m") / "README.md").read_text()
    assert "weight decay 0.05),\nlearning rate 0.002 with 5 warm-up epochs then half-cycle cosine decay,\n" in text
    assert "400 epochs, batch 320 per GPU on 4 GPUs,\n" in text
    assert "about 1.20 M MR images for 400 epochs." in text and "800 epochs" not in text


def test_the_shipped_template_is_the_repository_root_card():
    root_card = vis_mae_hf.__file__.rsplit("/", 2)[0] + "/MODEL_CARD.md"
    assert default_template_path().read_text() == open(root_card).read()


# ---------------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------------
def test_validation_lists_every_failure(run_dir, tmp_path):
    repo = export_repository(run_dir, "mr", tmp_path / "repo", repo_id="org/vis-mae-mr")
    (repo / "model.safetensors").unlink()
    (repo / "pytorch_model.bin").write_bytes(b"pickle")
    config = json.loads((repo / "config.json").read_text())
    del config["auto_map"]["AutoModelForSemanticSegmentation"]
    (repo / "config.json").write_text(json.dumps(config))
    (repo / "image_processing_vis_mae.py").unlink()
    card = (repo / "README.md").read_text()
    (repo / "README.md").write_text(card.split("\n---\n", 1)[1].replace("## Limitations and biases", "## Caveats"))
    failures = validate_repository(repo, "org/other-name")
    expected = [
        "pickle weight files ['pytorch_model.bin'] must not be published",
        "weights missing: no model.safetensors",
        "config.json auto_map['AutoModelForSemanticSegmentation'] is None",
        "remote code file image_processing_vis_mae.py is missing",
        "README.md has no YAML metadata block",
    ]
    for message in expected:
        assert any(failure.startswith(message) for failure in failures), (message, failures)


def test_validation_checks_card_content(run_dir, tmp_path):
    repo = export_repository(run_dir, "mr", tmp_path / "repo", repo_id="org/vis-mae-mr")
    card = (repo / "README.md").read_text()
    card = card.replace("license: apache-2.0", "license: free-for-all")
    card = card.replace("## Limitations and biases", "## Caveats")
    card = card.replace("This is not a medical device", "This is a fine tool") + "\n{{ forgotten }}\n"
    (repo / "README.md").write_text(card)
    failures = validate_repository(repo, "org/other-name")
    for message in (
        "README.md license 'free-for-all' is not a Hub licence id",
        "README.md lacks the section '## Limitations and biases'",
        "README.md does not state that the model is not a medical device",
        "README.md has unfilled template placeholders ['{{ forgotten }}']",
        "README.md's examples do not load 'org/other-name'",
    ):
        assert any(failure.startswith(message) for failure in failures), (message, failures)


def test_validation_catches_weights_that_do_not_load_cleanly(run_dir, tmp_path):
    repo = export_repository(run_dir, "mr", tmp_path / "repo", repo_id="org/vis-mae-mr")
    from safetensors.torch import load_file, save_file

    state = load_file(repo / "model.safetensors")
    state["vis_mae.embeddings.projection.weight"] = state["vis_mae.embeddings.projection.weight"][:, :1].contiguous()
    save_file(state, repo / "model.safetensors", metadata={"format": "pt"})
    failures = validate_repository(repo)
    pattern = r"(loading VisMaeForPreTraining reports problems|the model does not load)"
    assert any(re.match(pattern, failure) for failure in failures), failures


# ---------------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------------
def test_cli_export_and_validate(run_dir, tmp_path, capsys):
    output = tmp_path / "repo"
    assert cli_main(["hub", "export", "--model", str(run_dir), "--variant", "mr", "--output", str(output),
                     "--repo-id", "org/vis-mae-mr", "--license", "cc-by-4.0"]) == 0
    assert f"wrote {output}" in capsys.readouterr().out
    assert cli_main(["hub", "validate", str(output), "--repo-id", "org/vis-mae-mr"]) == 0
    assert cli_main(["hub", "export", "--model", str(run_dir), "--variant", "ct", "--output", str(tmp_path / "x")]) == 1
    assert "--variant mr" in capsys.readouterr().err
    assert cli_main(["hub", "validate", str(output), "--repo-id", "org/elsewhere"]) == 1
    assert "export again with --repo-id org/elsewhere" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------------
# Published-format checkpoints
# ---------------------------------------------------------------------------------------------------------------------
def test_a_published_format_checkpoint_is_converted_and_exported(tmp_path):
    from conftest import OFFICIAL_VECTORS
    from safetensors.torch import load_file

    checkpoint = OFFICIAL_VECTORS / "pretrain_weights.safetensors"  # state dict under the published key names
    summary = training_summary("ct", {"CT": 5000}, dataset="hospital CT archive", package_version=None)
    repo = export_repository(checkpoint, "ct", tmp_path / "repo", repo_id="org/vis-mae-ct", training_summary=summary)
    assert validate_repository(repo, "org/vis-mae-ct") == []
    card = (repo / "README.md").read_text()
    assert "converted from `pretrain_weights.safetensors`, a checkpoint written by the published" in card
    assert "weights converted from a checkpoint of the published VIS-MAE code" in card
    # the exported weights are the checkpoint's, under our names (the converter's tested mapping)
    published = load_file(checkpoint)
    exported = load_file(repo / "model.safetensors")
    assert torch.equal(exported["vis_mae.embeddings.projection.weight"], published["patch_embed.proj.weight"])
    assert json.loads((repo / "preprocessor_config.json").read_text())["hounsfield_window"] == "abdomen"
    assert not (tmp_path / "repo" / "conversion_report.json").exists()
    with pytest.raises(ExportError, match="has no training_summary.json"):
        export_repository(checkpoint, "ct", tmp_path / "other")


# ---------------------------------------------------------------------------------------------------------------------
# Fine-tuned segmenters and classifiers
# ---------------------------------------------------------------------------------------------------------------------
TISSUES = ["background", "grey matter", "white matter"]
FINDINGS = ["effusion", "nodule", "cardiomegaly"]
DEMO_SEGMENTATION = "demo: MNI152 2009 T1 axial slices, tissue labels (one averaged subject; folds are contiguous slabs)"


def make_finetuned(directory, task="segmentation", labels=TISSUES, dataset=DEMO_SEGMENTATION,
                   init="vismae:org/vis-mae-mr", metrics=None):
    """What `vis-mae finetune` leaves behind, at unit-test size: the model and its processor, `finetuning_summary.json`
    written by training.py's own `finetuning_summary`, and `eval_results.json` as the Trainer's `save_metrics` writes
    it."""
    segmenter = task == "segmentation"
    model_class = VisMaeForSemanticSegmentation if segmenter else VisMaeForImageClassification
    extra = {"problem_type": "multi_label_classification"} if task == "multilabel" else {}
    recipe = "segmentation" if segmenter else "classification"
    save_tiny_model(directory, model_class, recipe, id2label=dict(enumerate(labels)), **extra)
    model = model_class.from_pretrained(directory)
    keys = sorted(model.state_dict())
    fresh = [key for key in keys if key.startswith(("segmentation_head", "classifier", "decoder.skip"))]
    report = LoadReport(source=init, target=model_class.__name__, loaded={k: [k] for k in keys if k not in fresh},
                        fresh=fresh)
    args = FinetuningArguments(init=init).resolved(recipe)
    training_args = finetuning_training_arguments(args, recipe, {"max_steps": 2, "output_dir": str(directory.resolve()),
                                                                 "use_cpu": True})
    data = FinetuningData(task=task, train=[None] * 12, validation=[None] * 4, label_names=labels,
                          description=dataset, fold=1, label_fraction=0.5)
    state = SimpleNamespace(best_model_checkpoint=str(directory.resolve() / "checkpoint-2"), global_step=2)
    if metrics is None:
        metrics = ({"eval_loss": 0.93, "eval_dice_mean": 0.61, "eval_dice/grey matter": 0.7,
                    "eval_dice/white matter": float("nan"), "eval_runtime": 1.2, "epoch": 1.0} if segmenter else
                   {"eval_loss": 0.5, "eval_roc_auc": 0.8, "eval_pr_auc": 0.7, "epoch": 1.0})
    trainer = SimpleNamespace(model=model, state=state, args=training_args)
    summary = finetuning_summary(args, data, report, trainer, metrics, 3.2)
    (directory / "finetuning_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    (directory / "eval_results.json").write_text(json.dumps(metrics, indent=4, sort_keys=True))
    return directory


def test_a_fine_tuned_segmenter_is_published_with_what_it_was_trained_on_and_how_it_scored(tmp_path):
    model_dir = make_finetuned(tmp_path / "outputs" / "liver")
    # scores on held-out masks, as `vis-mae evaluate --output` writes them
    for folder in ("predicted", "reference"):
        (tmp_path / folder).mkdir()
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:10], mask[2:6, 10:14] = 1, 2
    Image.fromarray(mask).save(tmp_path / "reference" / "slice_07.png")
    Image.fromarray(np.roll(mask, 1, axis=0)).save(tmp_path / "predicted" / "slice_07_mask.png")
    report = evaluate_segmentation_files(tmp_path / "predicted", tmp_path / "reference", TISSUES)
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps(report.to_json_dict("MNI152 held-out slab", "test")))

    repo = export_repository(model_dir, "mr", tmp_path / "repo", repo_id="org/tissue-seg", evaluation=scores)

    assert sorted(p.name for p in repo.iterdir()) == sorted(
        ["README.md", "config.json", "model.safetensors", "preprocessor_config.json", "finetuning_summary.json",
         "eval_results.json", "evaluation_summary.json", *REMOTE_CODE_FILES, MANIFEST_NAME]
    )
    assert validate_repository(repo, "org/tissue-seg") == []
    config = json.loads((repo / "config.json").read_text())
    assert config["architectures"] == ["VisMaeForSemanticSegmentation"] and config["auto_map"] == CONFIG_AUTO_MAP
    # the weights and the processor are the fine-tuned model's own
    exported = VisMaeForSemanticSegmentation.from_pretrained(repo).state_dict()
    original = VisMaeForSemanticSegmentation.from_pretrained(model_dir).state_dict()
    assert exported.keys() == original.keys() and all(torch.equal(exported[k], original[k]) for k in exported)
    assert VisMaeImageProcessor.from_pretrained(repo).normalization == "min_max"
    card = ModelCard.load(repo / "README.md")
    metadata = card.data.to_dict()
    assert metadata["pipeline_tag"] == "image-segmentation" and metadata["base_model"] == "org/vis-mae-mr"
    assert {"mri", "demo-weights"} <= set(metadata["tags"])
    assert [(r.dataset_name, r.dataset_split, r.metric_type) for r in card.data.eval_results][:2] == [
        ("MNI152 held-out slab", "test", "dice_mean"), ("MNI152 held-out slab", "test", "precision_mean")
    ]
    text = card.text
    assert UNFILLED_PLACEHOLDER.search(text) is None
    # what it was fine-tuned on: dataset, fold, label fraction, initialisation, schedule
    assert f"Fine-tuned on **{DEMO_SEGMENTATION}**, fold 1 held out for validation,\nwith 50% of the training labels" \
           " (12 training and 4 validation images or slices)" in text
    assert "from `org/vis-mae-mr`" in text and "It was fine-tuned from VIS-MAE-MR weights" in text
    assert "Fine-tuning ran 2 optimisation steps" in text and "| max_steps | 2 |" in text
    assert "| 1 | grey matter |" in text and "AutoModelForSemanticSegmentation.from_pretrained(repo)" in text
    # how it scored: the validation fold (NaN as not scorable) and the held-out evaluation
    assert "| dice_mean | 0.61 |" in text and "| dice/white matter | not scorable |" in text
    dice = report.summary_metrics()["dice_mean"]
    assert f"| semantic-segmentation | MNI152 held-out slab | test | all | dice_mean | {dice:.4g} |" in text
    assert "This is not a medical device" in text and "Copyright (C) 1993-2009 Louis Collins" in text
    # the published records name no folder of the publisher's machine
    published = (repo / "finetuning_summary.json").read_text()
    assert str(tmp_path) not in published and '"output_dir": "liver"' in published
    assert json.loads((repo / "evaluation_summary.json").read_text()).keys() == {"results"}


@pytest.mark.parametrize("task, labels", [("classification", FINDINGS), ("multilabel", FINDINGS)])
def test_a_fine_tuned_classifier_is_published_with_its_task(tmp_path, task, labels):
    model_dir = make_finetuned(tmp_path / "cls", task, labels, dataset="chest films (/home/alice/data/chest)",
                               init="random")

    repo = export_repository(model_dir, None, tmp_path / "repo", repo_id="org/chest")

    assert validate_repository(repo, "org/chest") == []
    card = ModelCard.load(repo / "README.md")
    assert card.data.pipeline_tag == "image-classification" and card.data.base_model is None
    assert "demo-weights" not in card.data.tags and "mri" not in card.data.tags
    text = card.text
    assert "# VIS-MAE classification model\n" in text and "Fine-tuned on **chest films (chest)**" in text
    assert "/home/alice" not in (repo / "README.md").read_text() + (repo / "finetuning_summary.json").read_text()
    assert "No pretrained weights were used" in text and "| roc_auc | 0.8 |" in text
    assert ("several of which may be present at once" in text) == (task == "multilabel")
    assert "No evaluation on data outside the fine-tuning set was supplied." in text
    assert 'pipeline("image-classification", model="org/chest")' in text


def test_a_fine_tuning_summary_of_another_model_is_refused(tmp_path):
    model_dir = make_finetuned(tmp_path / "seg")
    summary = json.loads((model_dir / "finetuning_summary.json").read_text())
    with pytest.raises(ExportError, match=r"names the classes \['background', 'tumour'\] but the model .* has "
                                          r"\['background', 'grey matter', 'white matter'\]"):
        export_repository(model_dir, None, tmp_path / "r1", finetuning_summary={**summary,
                                                                               "label_names": ["background", "tumour"]})
    with pytest.raises(ExportError, match="records classification fine-tuning, but .* holds a "
                                          "VisMaeForSemanticSegmentation"):
        export_repository(model_dir, None, tmp_path / "r2", finetuning_summary={**summary, "task": "classification"})
    with pytest.raises(SummaryError, match="'label_fraction' must be in \\(0, 1\\], got 2"):
        export_repository(model_dir, None, tmp_path / "r3", finetuning_summary={**summary, "label_fraction": 2})
    (model_dir / "preprocessor_config.json").unlink()
    with pytest.raises(ExportError, match="holds no preprocessor_config.json: a fine-tuned model is published with"):
        export_repository(model_dir, None, tmp_path / "r4")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("r")] == []


def test_validation_wants_the_pipeline_tag_of_the_task_and_named_classes(tmp_path):
    repo = export_repository(make_finetuned(tmp_path / "seg"), None, tmp_path / "repo", repo_id="org/seg")
    card = (repo / "README.md").read_text()
    (repo / "README.md").write_text(card.replace("pipeline_tag: image-segmentation",
                                                 "pipeline_tag: image-feature-extraction"))
    config = json.loads((repo / "config.json").read_text())
    config["id2label"] = {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}
    (repo / "config.json").write_text(json.dumps(config))
    failures = validate_repository(repo, "org/seg")
    assert any(f.startswith("README.md pipeline_tag 'image-feature-extraction' is not the task of the "
                            "VisMaeForSemanticSegmentation model ('image-segmentation')") for f in failures), failures
    assert any(f.startswith("config.json id2label names no class") for f in failures), failures


def test_cli_exports_a_fine_tuned_model(tmp_path, capsys):
    model_dir = make_finetuned(tmp_path / "seg")
    output = tmp_path / "repo"
    assert cli_main(["hub", "export", "--model", str(model_dir), "--output", str(output), "--repo-id", "org/seg"]) == 0
    assert f"wrote {output}" in capsys.readouterr().out
    assert cli_main(["hub", "validate", str(output), "--repo-id", "org/seg"]) == 0
    assert cli_main(["hub", "export", "--model", str(make_run(tmp_path / "run")), "--output", str(tmp_path / "x")]) == 1
    assert "pass --variant" in capsys.readouterr().err
