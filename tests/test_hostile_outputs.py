"""Hostile inputs, output folders: no command removes or writes over a file it did not write (issue 13, "User files
lost"), and `vis-mae data corpus` never silently skips a linked sub-folder.

Each case builds the user's folder in the test, runs the `vis-mae` command a user would run, and asserts with
`file_hashes` that none of the user's files changed or disappeared, the exact error line and exit status, and that
`--overwrite` of a command's own earlier output still works (replacing only the files its manifest lists).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import OFFICIAL_VECTORS
from hostile import assert_one_error_line, file_hashes, vis_mae
from test_data_sources_2d import make_knee_tree
from test_data_support import noise_image, save_png
from test_hub_export import make_run

from vis_mae_hf.output_folders import MANIFEST_NAME

CHECKPOINT = OFFICIAL_VECTORS / "pretrain_weights.safetensors"  # a state dict under the published key names
NOT_OURS = (
    "and has no .vis-mae-outputs.json, so `{tool}` cannot tell its own files from yours and writes nothing there; an "
    "output of an earlier version, which wrote no manifest, is refused the same way. Choose another output folder, or "
    "remove this one yourself if nothing in it is needed."
)


def refused_folder(command: str, folder, listing: str) -> str:
    """The exact line of a command refusing a non-empty folder it did not make."""
    return f"vis-mae {command}: error: The output folder {folder} is not empty (holds {listing}) " + NOT_OURS.format(
        tool=f"vis-mae {command}"
    )


def earlier_output(command: str, folder, what: str, count: int) -> str:
    return (
        f"vis-mae {command}: error: The output folder {folder} holds {what} of `vis-mae {command}` ({count} files); "
        "pass --overwrite (overwrite=True) to replace those files (nothing else in the folder is touched), or choose "
        "another output folder."
    )


def without(hashes: dict, folder) -> dict:
    """`hashes` less the files the manifest of `folder` lists (and the manifest): what belongs to the user."""
    listed = set(json.loads((folder / MANIFEST_NAME).read_text())["files"]) | {MANIFEST_NAME}
    return {name: digest for name, digest in hashes.items() if name not in listed}


def git(folder, *arguments) -> str:
    identity = ["-c", "user.name=Radiologist", "-c", "user.email=r@example.org", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", "-C", str(folder), *identity, *arguments], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    save_png(folder / "US" / "a.png", noise_image(0))
    save_png(folder / "US" / "b.png", noise_image(1))
    return folder


# ------------------------------------------------------------------------------------------------ vis-mae data corpus
def test_corpus_refuses_a_folder_holding_a_users_webdataset(tmp_path, images, capsys):
    shards = tmp_path / "webdataset"
    shards.mkdir()
    for index in range(3):
        (shards / f"shard-{index:06d}.tar").write_bytes(os.urandom(512))  # what `shard-*` used to match and delete
    before = file_hashes(shards)
    status, _, stderr = vis_mae(capsys, "data", "corpus", images, "--output", shards, "--image-size", "32")
    assert status == 1
    line = assert_one_error_line(stderr, "data corpus")
    assert line == refused_folder("data corpus", shards, "shard-000000.tar, shard-000001.tar, shard-000002.tar")
    assert file_hashes(shards) == before


def test_corpus_refuses_a_corpus_of_an_earlier_version_without_a_manifest(tmp_path, images, capsys):
    corpus = tmp_path / "corpus"
    assert vis_mae(capsys, "data", "corpus", images, "--output", corpus, "--image-size", "32")[0] == 0
    (corpus / MANIFEST_NAME).unlink()  # what versions before the manifest left
    before = file_hashes(corpus)
    status, _, stderr = vis_mae(capsys, "data", "corpus", images, "--output", corpus, "--image-size", "32")
    assert status == 1
    listing = "corpus_options.json, corpus_summary.json, shard-00000.json, shard-00000.parquet"
    assert assert_one_error_line(stderr, "data corpus") == refused_folder("data corpus", corpus, listing)
    assert file_hashes(corpus) == before


def test_corpus_resumes_its_own_folder_and_keeps_the_users_files_there(tmp_path, images, capsys):
    corpus = tmp_path / "corpus"
    assert vis_mae(capsys, "data", "corpus", images, "--output", corpus, "--image-size", "32")[0] == 0
    (corpus / "shard-00001.tar").write_bytes(os.urandom(512))  # the user's, beside ours
    (corpus / "notes.txt").write_text("pretraining plan")
    users = without(file_hashes(corpus), corpus)
    status, stdout, _ = vis_mae(capsys, "data", "corpus", images, "--output", corpus, "--image-size", "32")
    assert status == 0 and "corpus: 2 images from 2 files in 1 shard(s)" in stdout
    assert without(file_hashes(corpus), corpus) == users


@pytest.mark.parametrize("where", ["output inside input", "input inside output"])
def test_corpus_never_writes_into_its_input(tmp_path, images, capsys, where):
    output = images / "corpus" if where == "output inside input" else tmp_path
    before = file_hashes(tmp_path)
    status, _, stderr = vis_mae(capsys, "data", "corpus", images, "--output", output)
    assert status == 1
    line = assert_one_error_line(stderr, "data corpus")
    if where == "output inside input":
        assert line == (
            f"vis-mae data corpus: error: The output folder {output} is inside the input {images}; a command never "
            f"writes into what it reads. Choose an output folder outside {images}."
        )
    else:
        assert line == (
            f"vis-mae data corpus: error: The input {images} is inside the output folder {output}; replacing an "
            "output there could delete it. Choose an output folder that does not contain the input."
        )
    assert file_hashes(tmp_path) == before and not (images / "corpus").exists()


def test_corpus_follows_linked_sub_folders_and_names_a_link_cycle(tmp_path, images, capsys):
    save_png(tmp_path / "archive" / "US" / "c.png", noise_image(2))
    (images / "from_archive").symlink_to(tmp_path / "archive", target_is_directory=True)
    (tmp_path / "archive" / "back").symlink_to(images, target_is_directory=True)  # a cycle through both links
    status, stdout, _ = vis_mae(capsys, "data", "corpus", images, "--output", tmp_path / "corpus", "--image-size", "32")
    assert status == 0
    assert "corpus: 3 images from 4 files in 1 shard(s)" in stdout  # a.png, b.png and the linked c.png
    assert "skipped 1 file(s) {'not walked': 1}" in stdout
    assert (
        f"    {images / 'from_archive' / 'back'}: folder not walked: it is {images}, already walked under this input "
        "(a link cycle, or a second link to one folder)"
    ) in stdout.splitlines()


# ----------------------------------------------------------------------------------------------------- vis-mae convert
def test_convert_refuses_a_folder_holding_a_users_model(tmp_path, capsys):
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "vit"}')
    for index in (1, 2):  # the shards save_pretrained used to delete
        (model / f"model-0000{index}-of-00002.safetensors").write_bytes(os.urandom(64))
    (model / "model.safetensors.index.json").write_text("{}")
    before = file_hashes(model)
    for overwrite in ([], ["--overwrite"]):
        status, _, stderr = vis_mae(capsys, "convert", "--checkpoint", CHECKPOINT, "--output", model, *overwrite)
        assert status == 1
        listing = "config.json, model-00001-of-00002.safetensors, model-00002-of-00002.safetensors, " \
                  "model.safetensors.index.json"
        assert assert_one_error_line(stderr, "convert") == refused_folder("convert", model, listing)
    assert file_hashes(model) == before


def test_convert_replaces_its_own_output_only_with_overwrite(tmp_path, capsys):
    output = tmp_path / "converted"
    assert vis_mae(capsys, "convert", "--checkpoint", CHECKPOINT, "--output", output)[0] == 0
    (output / "NOTES.md").write_text("converted for the liver study")
    first = file_hashes(output)
    status, _, stderr = vis_mae(capsys, "convert", "--checkpoint", CHECKPOINT, "--output", output)
    assert status == 1
    assert assert_one_error_line(stderr, "convert") == earlier_output("convert", output, "an earlier output", 4)
    assert file_hashes(output) == first
    status, stdout, _ = vis_mae(capsys, "convert", "--checkpoint", CHECKPOINT, "--output", output, "--overwrite")
    assert status == 0 and f"wrote {output}" in stdout
    assert file_hashes(output) == first  # the same conversion again, and the user's notes kept


def test_convert_refuses_an_output_that_is_its_checkpoint(tmp_path, capsys):
    checkpoint = tmp_path / "checkpoint.safetensors"
    checkpoint.write_bytes(CHECKPOINT.read_bytes())
    before = file_hashes(tmp_path)
    status, _, stderr = vis_mae(capsys, "convert", "--checkpoint", checkpoint, "--output", tmp_path, "--overwrite")
    assert status == 1
    assert assert_one_error_line(stderr, "convert") == (
        f"vis-mae convert: error: The input {checkpoint} is inside the output folder {tmp_path}; replacing an output "
        "there could delete it. Choose an output folder that does not contain the input."
    )
    assert file_hashes(tmp_path) == before


# -------------------------------------------------------------------------------------------------- vis-mae hub export
@pytest.fixture
def cloned_export(tmp_path, capsys):
    """An earlier export, made a git repository with a commit, then given the user's own files."""
    run = make_run(tmp_path / "run")
    repo = tmp_path / "vis-mae-mr"
    status, _, _ = vis_mae(capsys, "hub", "export", "--model", run, "--variant", "mr", "--output", repo,
                           "--repo-id", "org/vis-mae-mr")
    assert status == 0
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first export")
    (repo / "experiments").mkdir()
    (repo / "experiments" / "dice.csv").write_text("fold,dice\n0,0.81\n")
    (repo / "USAGE.md").write_text("# How our department uses these weights\n")
    return run, repo


def test_export_overwrite_into_a_git_clone_keeps_git_and_the_users_files(cloned_export, capsys):
    run, repo = cloned_export
    before = file_hashes(repo)
    users = without(before, repo)
    assert ".git/HEAD" in users and "USAGE.md" in users and "experiments/dice.csv" in users
    status, _, stderr = vis_mae(capsys, "hub", "export", "--model", run, "--variant", "mr", "--output", repo,
                                "--repo-id", "org/vis-mae-mr")
    assert status == 1
    assert assert_one_error_line(stderr, "hub export") == earlier_output("hub export", repo, "an export", 9)
    assert file_hashes(repo) == before

    status, stdout, _ = vis_mae(capsys, "hub", "export", "--model", run, "--variant", "mr", "--output", repo,
                                "--repo-id", "org/vis-mae-mr", "--overwrite")
    assert status == 0 and f"wrote {repo}" in stdout
    assert file_hashes(repo) == before  # byte-identical re-export; .git/ and the user's files untouched
    assert git(repo, "status", "--porcelain").splitlines() == ["?? USAGE.md", "?? experiments/"]


def test_export_overwrite_refuses_a_card_the_user_edited(cloned_export, capsys):
    run, repo = cloned_export
    with (repo / "README.md").open("a") as card:
        card.write("\nInternal note: validated on our scanner.\n")
    before = file_hashes(repo)
    status, _, stderr = vis_mae(capsys, "hub", "export", "--model", run, "--variant", "mr", "--output", repo,
                                "--overwrite")
    assert status == 1
    assert assert_one_error_line(stderr, "hub export") == (
        f"vis-mae hub export: error: {repo}: README.md changed since `vis-mae hub export` wrote them and may hold "
        "your edits, so they are neither removed nor written over. Move them out of the folder (or remove them "
        "yourself) and run again, or choose another output folder."
    )
    assert file_hashes(repo) == before


def test_export_overwrite_refuses_a_clone_without_a_manifest(cloned_export, capsys):
    run, repo = cloned_export
    (repo / MANIFEST_NAME).unlink()  # a clone from the Hub, or an export of an earlier version: nothing proves ours
    before = file_hashes(repo)
    status, _, stderr = vis_mae(capsys, "hub", "export", "--model", run, "--variant", "mr", "--output", repo,
                                "--overwrite")
    assert status == 1
    listing = ".git/, README.md, USAGE.md, config.json, configuration_vis_mae.py and 7 more"
    assert assert_one_error_line(stderr, "hub export") == refused_folder("hub export", repo, listing)
    assert file_hashes(repo) == before


# ------------------------------------------------------------------------------------------------ vis-mae data convert
def test_convert_data_refuses_an_output_around_its_source(tmp_path, capsys):
    output = tmp_path / "study"
    source, _ = make_knee_tree(output / "downloads")
    (output / "protocol.pdf").write_bytes(b"%PDF-1.4 the user's")
    before = file_hashes(output)
    for overwrite in ([], ["--overwrite"]):
        status, _, stderr = vis_mae(capsys, "data", "convert", "knee_oa", source, "--output", output, *overwrite)
        assert status == 1
        assert assert_one_error_line(stderr, "data convert") == (
            f"vis-mae data convert: error: The input {source} is inside the output folder {output}; replacing an "
            "output there could delete it. Choose an output folder that does not contain the input."
        )
    status, _, stderr = vis_mae(capsys, "data", "convert", "knee_oa", source, "--output", source / "converted")
    assert status == 1
    assert f"The output folder {source / 'converted'} is inside the input {source}" in stderr
    assert file_hashes(output) == before and not (source / "converted").exists()


def test_convert_data_overwrite_replaces_only_its_own_conversion(tmp_path, capsys):
    source, _ = make_knee_tree(tmp_path / "src")
    output = tmp_path / "knee"
    sources = file_hashes(source)
    assert vis_mae(capsys, "data", "convert", "knee_oa", source, "--output", output)[0] == 0
    (output / "README.md").write_text("Knee OA, converted for the KL study")
    (output / "train" / "my_selection.json").write_text("[1, 2, 3]")  # even inside a folder the conversion made
    users = without(file_hashes(output), output)
    status, stdout, _ = vis_mae(capsys, "data", "convert", "knee_oa", source, "--output", output)
    assert status == 0 and "already holds this conversion; nothing to do" in stdout and "train: 13 rows" in stdout

    status, _, stderr = vis_mae(capsys, "data", "convert", "knee_oa", source, "--output", output, "--seed", "3")
    assert status == 1
    assert assert_one_error_line(stderr, "data convert", "holds a different conversion (differs in seed)",
                                 "pass --overwrite")
    status, stdout, _ = vis_mae(capsys, "data", "convert", "knee_oa", source, "--output", output, "--seed", "3",
                                "--overwrite")
    assert status == 0 and "train: 13 rows" in stdout
    assert json.loads((output / "vis_mae_conversion.json").read_text())["seed"] == 3
    assert without(file_hashes(output), output) == users
    assert file_hashes(source) == sources


def test_convert_data_refuses_a_conversion_of_an_earlier_version(tmp_path, capsys):
    source, _ = make_knee_tree(tmp_path / "src")
    output = tmp_path / "knee"
    assert vis_mae(capsys, "data", "convert", "knee_oa", source, "--output", output)[0] == 0
    (output / MANIFEST_NAME).unlink()
    before = file_hashes(output)
    status, _, stderr = vis_mae(capsys, "data", "convert", "knee_oa", source, "--output", output, "--seed", "3",
                                "--overwrite")
    assert status == 1
    listing = "dataset_dict.json, folds.json, test/, train/, vis_mae_conversion.json"
    assert assert_one_error_line(stderr, "data convert") == refused_folder("data convert", output, listing)
    assert file_hashes(output) == before
