"""`vis-mae hub release` (`examples/publish_all.py`): six variants pretrained from one corpus, exported, validated, pushed.

The built-in demo corpus has real CT, MR, X-ray and ultrasound images and a synthetic PET series (no real PET DICOM
ships in any package), so a release from it has all six variants. A corpus lacking a modality releases the others
and says why the missing one is skipped.
"""

import json

import pytest
from huggingface_hub import ModelCard
from test_hub_push import FakeHub

from vis_mae_hf.app.cli import main as vis_mae
from vis_mae_hf.app.release import (
    ReleaseError,
    corpus_modality_counts,
    plan_release,
    plan_release_from_runs,
    release_variants,
)
from vis_mae_hf.hub import VARIANTS, validate_repository

TINY_TRAINING = ["--max-steps", "1", "--per-device-train-batch-size", "2", "--image-size", "64",
                 "--config-overrides", '{"embed_dim": 16, "num_heads": [1, 2, 4, 8], "drop_path_rate": 0.0}']


def publish_all(argv):
    """`python examples/publish_all.py ARGV...`, in this process so that the Hub can be faked: the script is
    `vis-mae hub release ARGV...` (tests/test_cli.py checks that)."""
    return vis_mae(["hub", "release", *argv])


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    directory = tmp_path_factory.mktemp("vis-mae-cache")
    patch.setenv("VIS_MAE_HF_CACHE", str(directory))
    yield directory
    patch.undo()


@pytest.fixture(scope="module")
def release(tmp_path_factory, demo_cache):
    """`publish_all.py` on the built-in demo corpus (no --corpus), with a tiny model and one step per variant."""
    output = tmp_path_factory.mktemp("release")
    code = publish_all(["--output-dir", str(output), "--namespace", "org", *TINY_TRAINING])
    assert code == 0
    return output


@pytest.mark.slow
def test_publish_all_on_the_demo_corpus_produces_six_valid_repositories(release):
    counts = corpus_modality_counts(None)
    assert all(counts.get(modality) for modality in ("CT", "MR", "PET", "XRAY", "US"))
    for variant in VARIANTS.values():
        repo = release / "repos" / variant.default_repo_name
        repo_id = f"org/{variant.default_repo_name}"
        assert validate_repository(repo, repo_id) == [], variant.name
        summary = json.loads((repo / "training_summary.json").read_text())
        assert summary["modality"] == variant.name
        # Generic from all modalities, each other variant from its own modality only
        expected = counts if variant.name == "generic" else {variant.name.upper(): counts[variant.name.upper()]}
        assert summary["modality_counts"] == expected
        card = ModelCard.load(repo / "README.md")
        assert f"Pretraining used **{sum(expected.values()):,} unlabeled images**" in card.text
        assert f'"{repo_id}"' in card.text
        assert set(variant.modality_tags) <= set(card.data.tags)


def test_demo_mr_weights_carry_the_mni152_notice(tmp_path, demo_cache):
    # the built-in demo corpus: the card calls the weights demo weights and keeps the notices of its images
    from test_hub_export import make_run, training_summary

    from vis_mae_hf.hub import export_repository

    run = make_run(tmp_path / "run", summary=training_summary("mr", dataset="built-in demo corpus"))
    card = (export_repository(run, "mr", tmp_path / "repo", repo_id="org/m") / "README.md").read_text()
    assert "McConnell Brain Imaging Centre" in card and "pydicom-data (MIT licence" in card
    ct_run = make_run(tmp_path / "ct", summary=training_summary("ct", dataset="built-in demo corpus"))
    ct_card = (export_repository(ct_run, "ct", tmp_path / "ct-repo", repo_id="org/c") / "README.md").read_text()
    assert "McConnell" not in ct_card and "pydicom-data (MIT licence" in ct_card
    # the demo PET is simulated from the MNI152 maps, so its card keeps that notice too
    pet_run = make_run(tmp_path / "pet", summary=training_summary("pet", dataset="built-in demo corpus"))
    pet_card = (export_repository(pet_run, "pet", tmp_path / "pet-repo", repo_id="org/p") / "README.md").read_text()
    assert "McConnell Brain Imaging Centre" in pet_card


def test_a_corpus_without_pet_releases_five_variants_and_names_the_missing_one(demo_cache):
    counts = {modality: n for modality, n in corpus_modality_counts(None).items() if modality != "PET"}
    variants, skipped = plan_release(counts)
    assert [v.name for v in variants] == ["generic", "ct", "mr", "xray", "us"]
    assert skipped == {"pet": "the corpus has no PET images"}
    with pytest.raises(ReleaseError, match="Cannot pretrain VIS-MAE-PET: the corpus has no PET images"):
        plan_release(counts, ["mr", "pet"])


@pytest.mark.slow
def test_finished_runs_are_exported_and_pushed_without_training(release, tmp_path, monkeypatch, capsys):
    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    output = tmp_path / "second"
    code = publish_all(["--runs-dir", str(release / "runs"), "--output-dir", str(output), "--namespace", "org",
                        "--push", "--skip-remote-code-check", "--variants", "mr", "pet"])
    assert code == 0
    assert not (output / "runs").exists()  # nothing was trained
    assert [commit["repo_id"] for commit in hub.commits] == ["org/vis-mae-mr", "org/vis-mae-pet"]
    for name in ("mr", "pet"):
        first, second = release / "repos" / f"vis-mae-{name}", output / "repos" / f"vis-mae-{name}"
        assert {p.name: p.read_bytes() for p in first.iterdir()} == {p.name: p.read_bytes() for p in second.iterdir()}
    out = capsys.readouterr().out
    printed = json.loads(out[out.index('{\n "released"'):])
    assert printed["released"]["pet"]["commit"].startswith("https://huggingface.co/org/vis-mae-pet/commit/")
    assert printed["skipped"] == {}


@pytest.mark.slow
def test_release_pushes_nothing_unless_every_repository_validates(release, tmp_path, monkeypatch):
    hub = FakeHub(tmp_path / "hub").install(monkeypatch)
    runs = tmp_path / "runs"
    for name in ("ct", "mr"):
        source = release / "runs" / name
        (runs / name).mkdir(parents=True)
        for path in source.iterdir():
            if path.is_file():
                (runs / name / path.name).write_bytes(path.read_bytes())
    variants, skipped = plan_release_from_runs(runs)
    assert [v.name for v in variants] == ["ct", "mr"] and set(skipped) == {"generic", "pet", "xray", "us"}
    template = tmp_path / "card.md"
    from vis_mae_hf.hub.card import default_template_path

    # a template declaring a library the repositories are not for makes every card invalid (a template without a
    # required section is refused before any export: test_hub_export)
    text = default_template_path().read_text()
    template.write_text(text.replace("library_name: transformers", "library_name: timm"))
    with pytest.raises(ReleaseError, match="Nothing was pushed: 2 repositories fail validation"):
        release_variants(variants, tmp_path / "out", runs_dir=runs, namespace="org", push=True, check_remote_code=False,
                         export_kwargs={"card_template": template}, log=lambda message: None)
    assert hub.commits == [] and hub.created == []
    with pytest.raises(ReleaseError, match="needs a Hub namespace"):
        release_variants(variants, tmp_path / "out", runs_dir=runs, push=True)
    with pytest.raises(ReleaseError, match="holds no finished run"):
        plan_release_from_runs(runs, ["us"])
