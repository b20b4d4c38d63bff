"""The one output-folder rule every writer follows: remove or write over only what the manifest proves is ours."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hostile import file_hashes

from vis_mae_hf import output_folders
from vis_mae_hf.output_folders import (
    MANIFEST_NAME,
    OutputFolderError,
    check_apart,
    check_folder_path,
    open_output_folder,
)

TOOL = "vis-mae test-writer"


def staged_output(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_NAME).read_text())


def test_a_new_folder_is_made_at_the_first_write_and_lists_what_was_written(tmp_path):
    output = tmp_path / "new" / "out"
    folder = open_output_folder(output, TOOL)
    assert not output.exists()  # a run refused or failed before writing leaves nothing behind
    folder.write_text("notes/summary.json", "{}")
    written = manifest(output)
    assert written["tool"] == TOOL
    assert written["files"] == {
        "notes/summary.json": {"size": 2, "sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
    }
    assert sorted(path.name for path in output.iterdir()) == [MANIFEST_NAME, "notes"]


def test_an_empty_folder_becomes_the_commands(tmp_path):
    (tmp_path / "empty").mkdir()
    open_output_folder(tmp_path / "empty", TOOL).write_text("a.txt", "a")
    assert manifest(tmp_path / "empty")["files"].keys() == {"a.txt"}


def test_a_folder_with_files_and_no_manifest_is_refused_naming_what_is_in_it(tmp_path):
    user = staged_output(tmp_path / "user", {f"shard-{index:05d}.tar": "webdataset" for index in range(7)})
    (user / "sub").mkdir()
    before = file_hashes(user)
    with pytest.raises(OutputFolderError) as refused:
        open_output_folder(user, TOOL, overwrite=True)
    assert str(refused.value) == (
        f"The output folder {user} is not empty (holds shard-00000.tar, shard-00001.tar, shard-00002.tar, "
        f"shard-00003.tar, shard-00004.tar and 3 more) and has no {MANIFEST_NAME}, so `{TOOL}` cannot tell its own "
        "files from yours and writes nothing there; an output of an earlier version, which wrote no manifest, is "
        "refused the same way. Choose another output folder, or remove this one yourself if nothing in it is needed."
    )
    assert file_hashes(user) == before


def test_a_file_given_as_the_output_folder_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(OutputFolderError, match="is an existing file; give a folder to write into"):
        open_output_folder(tmp_path / "model.safetensors", TOOL)


def test_another_commands_folder_is_refused(tmp_path):
    open_output_folder(tmp_path / "out", "vis-mae data corpus").write_text("a.txt", "a")
    with pytest.raises(OutputFolderError, match="holds the output of `vis-mae data corpus`, not of `vis-mae test-wr"):
        open_output_folder(tmp_path / "out", TOOL, overwrite=True)


@pytest.mark.parametrize("text", ["not json", '{"files": {}}', '{"manifest": "vis-mae-hf output manifest"}', "[]"])
def test_a_manifest_that_is_not_ours_proves_nothing(tmp_path, text):
    staged_output(tmp_path / "out", {MANIFEST_NAME: text, "data.bin": "user data"})
    with pytest.raises(OutputFolderError, match="is not a vis-mae output manifest"):
        open_output_folder(tmp_path / "out", TOOL, overwrite=True)
    assert (tmp_path / "out" / "data.bin").read_text() == "user data"


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/passwd", MANIFEST_NAME])
def test_a_manifest_cannot_name_a_file_outside_its_folder(tmp_path, name):
    folder = open_output_folder(tmp_path / "out", TOOL)
    folder.write_text("a.txt", "a")
    edited = manifest(tmp_path / "out")
    edited["files"][name] = None
    (tmp_path / "out" / MANIFEST_NAME).write_text(json.dumps(edited))
    with pytest.raises(OutputFolderError, match="is not a file name inside an output folder"):
        open_output_folder(tmp_path / "out", TOOL, overwrite=True)


def test_an_earlier_output_is_replaced_only_with_overwrite_and_only_its_own_files(tmp_path):
    output = tmp_path / "out"
    first = open_output_folder(output, TOOL)
    first.install(staged_output(tmp_path / "one", {"model.bin": "old", "old_only/extra.txt": "old", "card.md": "v1"}))
    staged_output(output, {"notes.md": "mine", ".git/HEAD": "ref: refs/heads/main"})
    user_files = {name: digest for name, digest in file_hashes(output).items() if name in ("notes.md", ".git/HEAD")}

    with pytest.raises(OutputFolderError) as refused:
        open_output_folder(output, TOOL, previous_output="an export")
    assert str(refused.value) == (
        f"The output folder {output} holds an export of `{TOOL}` (3 files); pass --overwrite (overwrite=True) to "
        "replace those files (nothing else in the folder is touched), or choose another output folder."
    )
    folder = open_output_folder(output, TOOL, overwrite=True)
    installed = folder.install(staged_output(tmp_path / "two", {"model.bin": "new", "card.md": "v2"}))
    assert installed == ["card.md", "model.bin"]
    assert (output / "model.bin").read_text() == "new" and not (output / "old_only").exists()
    assert {name: digest for name, digest in file_hashes(output).items() if name in user_files} == user_files
    assert set(manifest(output)["files"]) == {"card.md", "model.bin"}


def test_a_listed_file_that_changed_since_is_neither_removed_nor_written_over(tmp_path):
    output = tmp_path / "out"
    open_output_folder(output, TOOL).install(staged_output(tmp_path / "one", {"README.md": "card", "w.bin": "w"}))
    (output / "README.md").write_text("card, with my notes")
    with pytest.raises(OutputFolderError) as refused:
        open_output_folder(output, TOOL, overwrite=True)
    assert str(refused.value) == (
        f"{output}: README.md changed since `{TOOL}` wrote them and may hold your edits, so they are neither "
        "removed nor written over. Move them out of the folder (or remove them yourself) and run again, or choose "
        "another output folder."
    )
    assert (output / "README.md").read_text() == "card, with my notes" and (output / "w.bin").is_file()


def test_a_file_the_command_did_not_write_is_never_written_over(tmp_path):
    output = tmp_path / "out"
    folder = open_output_folder(output, TOOL)
    folder.write_text("summary.json", "{}")
    (output / "config.json").write_text("the user's")
    with pytest.raises(OutputFolderError, match=r"already holds config.json, which `vis-mae test-writer` did not"):
        open_output_folder(output, TOOL, overwrite=True).install(staged_output(tmp_path / "s", {"config.json": "x"}))
    assert (output / "config.json").read_text() == "the user's" and (output / "summary.json").is_file()
    with pytest.raises(ValueError, match="only listed files are removed"):
        folder.remove("config.json")


def test_the_marker_file_comes_in_last_and_an_interrupted_install_is_cleaned_by_the_next(tmp_path, monkeypatch):
    output = tmp_path / "out"
    moved = []
    real_replace = os.replace

    def replace_then_fail(source, target):
        if Path(source).name == "b.bin":
            raise OSError("disk full")
        if Path(target).name != MANIFEST_NAME:
            moved.append(Path(target).name)
        return real_replace(source, target)

    monkeypatch.setattr(output_folders.os, "replace", replace_then_fail)
    staged = staged_output(tmp_path / "s", {"a.bin": "a", "b.bin": "b", "DONE": "marker", "z.bin": "z"})
    with pytest.raises(OSError, match="disk full"):
        open_output_folder(output, TOOL).install(staged, last=["DONE"])
    assert moved == ["a.bin"] and not (output / "DONE").exists()  # never looks finished
    assert manifest(output)["files"] == dict.fromkeys(["DONE", "a.bin", "b.bin", "z.bin"])  # all claimed first

    monkeypatch.setattr(output_folders.os, "replace", real_replace)
    (output / "mine.txt").write_text("user")
    staged = staged_output(tmp_path / "s2", {"DONE": "marker", "z.bin": "z"})
    open_output_folder(output, TOOL, overwrite=True).install(staged, last=["DONE"])
    assert sorted(path.name for path in output.iterdir()) == [MANIFEST_NAME, "DONE", "mine.txt", "z.bin"]


def test_an_output_inside_an_input_or_around_one_is_refused_naming_both(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    with pytest.raises(OutputFolderError) as inside:
        check_apart(source / "converted", [source])
    assert str(inside.value) == (
        f"The output folder {source / 'converted'} is inside the input {source}; a command never writes into what it "
        f"reads. Choose an output folder outside {source}."
    )
    with pytest.raises(OutputFolderError, match=f"The output folder {source} is the input {source}"):
        check_apart(source, [source])
    with pytest.raises(OutputFolderError) as around:
        open_output_folder(tmp_path, TOOL, inputs=[source / "scan.dcm"])
    assert str(around.value) == (
        f"The input {source / 'scan.dcm'} is inside the output folder {tmp_path}; replacing an output there could "
        "delete it. Choose an output folder that does not contain the input."
    )
    check_apart(tmp_path / "out", [source, source / "scan.dcm"])  # siblings are fine
    check_apart(tmp_path / "run" / "hub_repository", [tmp_path / "run" / "config.json"])  # beside the files read


def test_resume_keeps_an_earlier_output_and_removes_only_what_it_names(tmp_path):
    output = tmp_path / "corpus"
    folder = open_output_folder(output, TOOL)
    folder.claim("shard-00001.parquet.tmp")
    (output / "shard-00001.parquet.tmp").write_text("partial")
    folder.write_text("shard-00000.json", "{}")
    (output / "shard-00002.tar").write_text("the user's")
    resumed = open_output_folder(output, TOOL, resume=True)
    assert resumed.is_recorded("shard-00000.json") and not resumed.is_recorded("shard-00001.parquet.tmp")
    resumed.remove("shard-00001.parquet.tmp")
    assert sorted(path.name for path in output.iterdir()) == [MANIFEST_NAME, "shard-00000.json", "shard-00002.tar"]


def test_nothing_is_written_or_removed_through_a_folder_linked_out_of_the_output(tmp_path):
    output = tmp_path / "out"
    open_output_folder(output, TOOL).install(staged_output(tmp_path / "one", {"train/data.arrow": "ours"}))
    elsewhere = staged_output(tmp_path / "elsewhere", {"data.arrow": "the user's", "keep.txt": "the user's"})
    (output / "train" / "data.arrow").unlink()
    (output / "train").rmdir()
    (output / "train").symlink_to(elsewhere, target_is_directory=True)
    before = file_hashes(elsewhere)
    with pytest.raises(OutputFolderError, match="the folders of train/data.arrow are links out of the output folder"):
        open_output_folder(output, TOOL, overwrite=True).install(staged_output(tmp_path / "two", {"x.bin": "x"}))
    with pytest.raises(OutputFolderError, match="the folders of train/new.arrow are links out"):
        open_output_folder(output, TOOL, resume=True).claim("train/new.arrow")
    assert file_hashes(elsewhere) == before and not (elsewhere / "new.arrow").exists()


def test_a_file_where_a_parent_folder_should_be_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match=r"lies under .*notes\.txt, which is a file"):
        check_folder_path(tmp_path / "notes.txt" / "out", "--output")
    assert check_folder_path(tmp_path / "new" / "out") == tmp_path / "new" / "out"  # missing folders are made later
