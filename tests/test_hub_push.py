"""Pushing to the Hub and loading back by repo id, offline.

No PyPI package provides a local upload-capable Hub, so `HfApi.create_commit` (and the calls around it) is replaced by
a fake that writes each commit's files to a local folder; that folder is then laid out as a Hub cache
(`models--org--name/{blobs,refs,snapshots}`) and everything loads by repo id with HF_HUB_OFFLINE=1, exactly as a user's
`from_pretrained("org/vis-mae-mr")` would after a download.
"""

import hashlib
import os

import pytest
import torch
import transformers
from hostile import assert_one_error_line
from huggingface_hub import (
    CommitInfo,
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    constants,
)
from huggingface_hub.errors import RepositoryNotFoundError
from PIL import Image
from test_hub_export import FINDINGS, TISSUES, make_finetuned, make_run

from vis_mae_hf import (
    VisMaeForImageClassification,
    VisMaeForPreTraining,
    VisMaeForSemanticSegmentation,
    VisMaeImageProcessor,
    VisMaeModel,
    __version__,
)
from vis_mae_hf.app.cli import main as cli_main
from vis_mae_hf.app.publishing import publish_run
from vis_mae_hf.hub import (
    ExportError,
    HubPushError,
    RepositoryValidationError,
    export_repository,
    push_repository,
    validate_repository,
)
from vis_mae_hf.hub.remote_loading import (
    auto_class_outputs,
    probe_image,
    remote_code_loading_problems,
)
from vis_mae_hf.output_folders import MANIFEST_NAME

REPO_ID = "org/vis-mae-mr"


class FakeHub:
    """Stands in for the Hub's write API: each commit's files land in `storage/<org>--<name>/<revision>/`."""

    def __init__(self, storage):
        self.storage = storage
        self.commits = []
        self.created = []

    def folder(self, repo_id, revision="main"):
        return self.storage / repo_id.replace("/", "--") / (revision or "main")

    def install(self, monkeypatch):
        hub = self

        def create_repo(api, repo_id, *, private=None, exist_ok=False, repo_type=None, **kwargs):
            hub.created.append((repo_id, private))
            hub.folder(repo_id).mkdir(parents=True, exist_ok=True)
            return f"https://huggingface.co/{repo_id}"

        def create_branch(api, repo_id, *, branch, exist_ok=False, **kwargs):
            source = hub.folder(repo_id)
            target = hub.folder(repo_id, branch)
            if not target.exists():
                target.mkdir(parents=True)
                for path in source.rglob("*"):
                    if path.is_file():
                        (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                        (target / path.relative_to(source)).write_bytes(path.read_bytes())

        def list_repo_files(api, repo_id, *, revision=None, **kwargs):
            folder = hub.folder(repo_id, revision)
            if not folder.exists():
                raise RepositoryNotFoundError(f"{repo_id} not found")
            return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

        def create_commit(api, repo_id, operations, *, commit_message, revision=None, **kwargs):
            folder = hub.folder(repo_id, revision)
            for operation in operations:
                target = folder / operation.path_in_repo
                if isinstance(operation, CommitOperationAdd):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(operation.path_or_fileobj, "rb") as source:
                        target.write_bytes(source.read())
                elif isinstance(operation, CommitOperationDelete):
                    target.unlink()
            digest = hashlib.sha1()
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                digest.update(path.relative_to(folder).as_posix().encode() + hashlib.sha256(path.read_bytes()).digest())
            commit = digest.hexdigest()
            hub.commits.append({"repo_id": repo_id, "revision": revision, "sha": commit, "message": commit_message,
                                "operations": [(type(o).__name__, o.path_in_repo) for o in operations]})
            url = f"https://huggingface.co/{repo_id}/commit/{commit}"
            return CommitInfo(commit_url=url, commit_message=commit_message, commit_description="", oid=commit)

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "create_branch", create_branch)
        monkeypatch.setattr(HfApi, "list_repo_files", list_repo_files)
        monkeypatch.setattr(HfApi, "create_commit", create_commit)
        return self


def lay_out_hub_cache(cache, repo_id, folder, commit, revision="main"):
    """The layout `hf_hub_download` leaves behind: content-addressed blobs, a ref, and a snapshot of links."""
    repo_cache = cache / f"models--{repo_id.replace('/', '--')}"
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = repo_cache / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo_cache / "snapshots" / commit / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_cache / "refs").mkdir(parents=True, exist_ok=True)
    (repo_cache / "refs" / revision).write_text(commit)


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    return FakeHub(tmp_path / "hub-storage").install(monkeypatch)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A private Hub cache: the library reads it at call time, a subprocess through HF_HUB_CACHE."""
    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert constants.HF_HUB_OFFLINE
    return cache


@pytest.fixture
def published(tmp_path, fake_hub, hub_cache):
    """An MR export pushed through the fake Hub and downloadable from the cache by repo id."""
    export = export_repository(make_run(tmp_path / "run"), "mr", tmp_path / "export", repo_id=REPO_ID)
    commit = push_repository(export, REPO_ID, check_remote_code=False)
    lay_out_hub_cache(hub_cache, REPO_ID, fake_hub.folder(REPO_ID), commit.oid)
    return export


def seeded(load):
    torch.manual_seed(0)
    return load().eval()


def test_push_uploads_exactly_the_validated_files_in_one_commit(tmp_path, fake_hub):
    export = export_repository(make_run(tmp_path / "run"), "mr", tmp_path / "export", repo_id=REPO_ID)
    commit = push_repository(export, REPO_ID, private=True, check_remote_code=False)
    assert fake_hub.created == [(REPO_ID, True)]
    assert len(fake_hub.commits) == 1 and commit.oid == fake_hub.commits[0]["sha"]
    assert fake_hub.commits[0]["message"] == f"Publish VIS-MAE-MR (demonstration weights) with vis-mae-hf {__version__}"
    uploaded = fake_hub.folder(REPO_ID)
    # every file but the export's manifest, which is hidden and stays local
    local = sorted(
        p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file() and p.name != MANIFEST_NAME
    )
    assert sorted(p.relative_to(uploaded).as_posix() for p in uploaded.rglob("*") if p.is_file()) == local
    assert all((uploaded / name).read_bytes() == (export / name).read_bytes() for name in local)


def test_republishing_removes_files_the_new_export_no_longer_has(tmp_path, fake_hub):
    run = make_run(tmp_path / "run")
    evaluation = {"results": [{"task": "image-classification", "dataset": "toy", "metrics": {"roc_auc": 0.5}}]}
    export = export_repository(run, "mr", tmp_path / "export", repo_id=REPO_ID, evaluation=evaluation)
    push_repository(export, REPO_ID, check_remote_code=False)
    assert (fake_hub.folder(REPO_ID) / "evaluation_summary.json").is_file()
    export_repository(run, "mr", export, repo_id=REPO_ID, overwrite=True)
    push_repository(export, REPO_ID, revision="main", check_remote_code=False)
    assert ("CommitOperationDelete", "evaluation_summary.json") in fake_hub.commits[-1]["operations"]
    assert not (fake_hub.folder(REPO_ID) / "evaluation_summary.json").exists()


def test_push_to_a_revision_creates_the_branch(tmp_path, fake_hub):
    export = export_repository(make_run(tmp_path / "run"), "mr", tmp_path / "export", repo_id=REPO_ID)
    push_repository(export, REPO_ID, revision="v0.1", check_remote_code=False)
    assert fake_hub.commits[-1]["revision"] == "v0.1"
    assert (fake_hub.folder(REPO_ID, "v0.1") / "model.safetensors").is_file()


def test_push_refuses_an_invalid_repository_and_uploads_nothing(tmp_path, fake_hub):
    export = export_repository(make_run(tmp_path / "run"), "mr", tmp_path / "export", repo_id=REPO_ID)
    (export / "model.safetensors").unlink()
    card = (export / "README.md").read_text()
    (export / "README.md").write_text(card.split("\n---\n", 1)[1])  # card without metadata
    with pytest.raises(RepositoryValidationError) as raised:
        push_repository(export, REPO_ID, check_remote_code=False)
    assert any(f.startswith("weights missing") for f in raised.value.failures)
    assert any(f.startswith("README.md has no YAML metadata") for f in raised.value.failures)
    assert "weights missing" in str(raised.value) and "no YAML metadata" in str(raised.value)
    assert fake_hub.commits == [] and fake_hub.created == []
    # a card exported for another repository is refused too
    good = export_repository(make_run(tmp_path / "run2"), "mr", tmp_path / "good", repo_id="org/other")
    with pytest.raises(RepositoryValidationError, match="export again with --repo-id org/vis-mae-mr"):
        push_repository(good, REPO_ID, check_remote_code=False)
    assert fake_hub.commits == []


def test_publish_run_exports_validates_and_pushes_one_run(tmp_path, fake_hub):
    run = make_run(tmp_path / "run")
    commit = publish_run(run, "mr", REPO_ID, tmp_path / "repo", private=True, check_remote_code=False,
                         export_kwargs={"license": "cc-by-4.0"})
    assert fake_hub.created == [(REPO_ID, True)] and commit.oid == fake_hub.commits[0]["sha"]
    uploaded = fake_hub.folder(REPO_ID)
    assert (uploaded / "README.md").read_bytes() == (tmp_path / "repo" / "README.md").read_bytes()
    assert f'"{REPO_ID}"' in (uploaded / "README.md").read_text() and "license: cc-by-4.0" in (uploaded / "README.md").read_text()
    # publishing again replaces the previous export in place
    publish_run(run, "mr", REPO_ID, tmp_path / "repo", check_remote_code=False)
    assert len(fake_hub.commits) == 2
    # a run its variant contradicts is refused before anything reaches the Hub
    with pytest.raises(ExportError, match="--variant mr"):
        publish_run(run, "ct", "org/vis-mae-ct", tmp_path / "ct-repo", check_remote_code=False)
    assert len(fake_hub.commits) == 2 and not (tmp_path / "ct-repo").exists()


def test_cli_push(tmp_path, fake_hub, capsys):
    export = export_repository(make_run(tmp_path / "run"), "mr", tmp_path / "export", repo_id=REPO_ID)
    assert cli_main(["hub", "push", str(export), "--repo-id", REPO_ID, "--skip-remote-code-check"]) == 0
    assert f"pushed {export} to {REPO_ID}: https://huggingface.co/{REPO_ID}/commit/" in capsys.readouterr().out
    (export / "config.json").unlink()
    assert cli_main(["hub", "push", str(export), "--repo-id", REPO_ID, "--skip-remote-code-check"]) == 1
    assert "refusing to push" in capsys.readouterr().err and len(fake_hub.commits) == 1


def test_published_repository_loads_by_repo_id_offline_with_identical_outputs(published):
    """Acceptance 1: the classes, Auto classes, processor and pipelines users call by repo id, offline."""
    image = probe_image()
    processor = transformers.AutoImageProcessor.from_pretrained(REPO_ID)
    local_processor = VisMaeImageProcessor.from_pretrained(published)
    assert processor.to_dict() == type(processor).from_pretrained(published).to_dict()
    assert processor.normalization == local_processor.normalization == "pretraining"
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
    assert torch.allclose(pixel_values, local_processor(images=image, return_tensors="pt")["pixel_values"], atol=1e-5)

    exported = VisMaeForPreTraining.from_pretrained(published).eval()
    num_mask_units = (pixel_values.shape[-2] // 16) * (pixel_values.shape[-1] // 16)
    noise = torch.rand(1, num_mask_units, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected_reconstruction = exported(pixel_values, noise=noise).logits
        expected_features = exported.vis_mae(pixel_values).last_hidden_state
        by_class = VisMaeForPreTraining.from_pretrained(REPO_ID)
        for model in (by_class, transformers.AutoModelForPreTraining.from_pretrained(REPO_ID)):
            assert type(model) is VisMaeForPreTraining
            assert torch.equal(model.eval()(pixel_values, noise=noise).logits, expected_reconstruction)
        encoder = transformers.AutoModel.from_pretrained(REPO_ID).eval()
        assert type(encoder) is VisMaeModel
        assert torch.equal(encoder(pixel_values).last_hidden_state, expected_features)

        # the line users type: a Swin-Unet whose pretrained part is the exported weights
        segmenter, info = VisMaeForSemanticSegmentation.from_pretrained(REPO_ID, output_loading_info=True)
        assert segmenter.config.num_labels == 2 and segmenter.config.depths == [2, 2, 2, 2]
        assert not info["unexpected_keys"] and not info["mismatched_keys"]
        assert all(k.startswith(("decoder.skip_projections.", "final_patch_expanding.", "segmentation_head."))
                   for k in info["missing_keys"])
        exported_state = exported.state_dict()
        for key, value in segmenter.state_dict().items():
            if key in exported_state and key not in info["missing_keys"]:
                assert torch.equal(value, exported_state[key]), key
        by_id = seeded(lambda: VisMaeForSemanticSegmentation.from_pretrained(REPO_ID))(pixel_values).logits
        by_dir = seeded(lambda: VisMaeForSemanticSegmentation.from_pretrained(published))(pixel_values).logits
        assert by_id.shape == (1, 2, *pixel_values.shape[-2:]) and torch.equal(by_id, by_dir)
        auto_segmenter = seeded(lambda: transformers.AutoModelForSemanticSegmentation.from_pretrained(REPO_ID))
        by_auto = auto_segmenter(pixel_values).logits
        assert torch.equal(by_auto, by_dir)
        classifier = seeded(lambda: VisMaeForImageClassification.from_pretrained(REPO_ID, num_labels=3))
        assert torch.equal(classifier.vis_mae.encoder.state_dict()["stages.0.blocks.0.attention.qkv.weight"],
                           exported_state["vis_mae.encoder.stages.0.blocks.0.attention.qkv.weight"])

    # pipelines by repo id: features identical to the exported encoder's
    extractor = transformers.pipeline("image-feature-extraction", model=REPO_ID)
    features = torch.tensor(extractor(Image.fromarray(image)))
    assert torch.allclose(features, expected_features, atol=1e-6)
    # every Auto class and both pipelines agree between the repo id and the exported folder
    by_id, classes = auto_class_outputs(REPO_ID, trust_remote_code=False)
    by_folder, _ = auto_class_outputs(str(published), trust_remote_code=False)
    assert by_id.keys() == by_folder.keys()
    for name in by_id:
        assert torch.equal(by_id[name], by_folder[name]), name
    assert classes["pipeline:image-segmentation"] == "vis_mae_hf.modeling_vis_mae.VisMaeForSemanticSegmentation"


def test_published_repository_loads_with_remote_code_without_the_package(published):
    """Acceptance 2: in a subprocess where vis_mae_hf cannot be imported, every Auto class and pipeline loads the
    repository's own code by repo id (trust_remote_code=True) and gives the package's outputs."""
    assert remote_code_loading_problems(REPO_ID) == []


def test_remote_code_check_runs_only_the_package_s_own_code(tmp_path):
    """`trust_remote_code=True` executes a repository's Python files: code that is not this package's own, byte for
    byte, is refused before anything runs (here a tampered mean, and a line that would leave a sentinel file)."""
    export = export_repository(make_run(tmp_path / "run"), "mr", tmp_path / "export", repo_id=REPO_ID)
    code = (export / "image_processing_vis_mae.py").read_text()
    assert "PRETRAINING_MEAN = 0.223\n" in code
    sentinel = tmp_path / "CODE_WAS_EXECUTED"
    tampered = code.replace("PRETRAINING_MEAN = 0.223\n", f"PRETRAINING_MEAN = 0.3\nopen({str(sentinel)!r}, 'w')\n")
    (export / "image_processing_vis_mae.py").write_text(tampered)
    problems = remote_code_loading_problems(export)
    assert len(problems) == 1 and "image_processing_vis_mae.py" in problems[0], problems
    assert "are not vis-mae-hf" in problems[0] and "they were not run" in problems[0]
    assert not sentinel.exists()
    assert any("are not vis-mae-hf" in p for p in validate_repository(export, REPO_ID, check_remote_code=True))
    assert not sentinel.exists()



def test_a_refused_token_is_one_line_naming_the_repository_and_the_token(tmp_path, fake_hub, monkeypatch, capsys):
    """The Hub answers 401 to the commit (a read-only or expired token), as `hf_raise_for_status` reports it."""
    import httpx2
    from huggingface_hub.utils import hf_raise_for_status

    def refuse(api, repo_id, *args, **kwargs):
        request = httpx2.Request("POST", f"https://huggingface.co/api/models/{repo_id}/commit/main")
        hf_raise_for_status(httpx2.Response(401, request=request, json={"error": "Invalid credentials"}))

    monkeypatch.setattr(HfApi, "create_commit", refuse)
    export = export_repository(make_run(tmp_path / "run"), "mr", tmp_path / "export", repo_id=REPO_ID)

    with pytest.raises(HubPushError, match=rf"Could not push {export} to the Hub repository {REPO_ID}: .*401"):
        push_repository(export, REPO_ID, check_remote_code=False)
    capsys.readouterr()
    assert cli_main(["hub", "push", str(export), "--repo-id", REPO_ID, "--skip-remote-code-check"]) == 1
    assert_one_error_line(capsys.readouterr().err, "hub push", f"Could not push {export} to the Hub", "HF_TOKEN")
    assert fake_hub.commits == []


@pytest.mark.parametrize("task, labels", [("segmentation", TISSUES), ("classification", FINDINGS)])
def test_a_published_fine_tuned_model_loads_by_repo_id_with_and_without_the_package(
    tmp_path, fake_hub, hub_cache, task, labels
):
    """A fine-tuned segmenter (classifier) pushed and downloaded by repo id: its Auto class gives the fine-tuned
    model's own outputs, its pipeline names the classes, and without vis_mae_hf the repository's code gives the same."""
    repo_id = f"org/vis-mae-{task}"
    model_dir = make_finetuned(tmp_path / "model", task, labels)
    export = export_repository(model_dir, None, tmp_path / "export", repo_id=repo_id)
    commit = push_repository(export, repo_id, check_remote_code=False)
    assert fake_hub.commits[0]["message"] == (
        f"Publish VIS-MAE {task} model (demonstration weights) with vis-mae-hf {__version__}"
    )
    lay_out_hub_cache(hub_cache, repo_id, fake_hub.folder(repo_id), commit.oid)

    image = probe_image()
    pixel_values = transformers.AutoImageProcessor.from_pretrained(repo_id)(images=image, return_tensors="pt")[
        "pixel_values"
    ]
    model_class = VisMaeForSemanticSegmentation if task == "segmentation" else VisMaeForImageClassification
    auto_class = getattr(transformers, "AutoModelForSemanticSegmentation" if task == "segmentation"
                         else "AutoModelForImageClassification")
    loaded = auto_class.from_pretrained(repo_id).eval()
    assert type(loaded) is model_class and loaded.config.id2label == dict(enumerate(labels))
    with torch.no_grad():
        expected = model_class.from_pretrained(model_dir).eval()(pixel_values).logits
        assert torch.equal(loaded(pixel_values).logits, expected)
    pipeline_task = "image-segmentation" if task == "segmentation" else "image-classification"
    result = transformers.pipeline(pipeline_task, model=repo_id)(Image.fromarray(image))
    assert result and {entry["label"] for entry in result} <= set(labels)
    assert remote_code_loading_problems(repo_id) == []
