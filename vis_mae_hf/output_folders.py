"""Output folders: a command removes or writes over only files it can prove it wrote.

Every writer of the package (the corpus builder, the dataset conversion, the published-checkpoint converter, the Hub
export) opens its output with `open_output_folder` and writes through the `OutputFolder` it gets back. The proof is a
manifest beside the outputs, `.vis-mae-outputs.json`: which command made the folder and every file it wrote there, as
a path relative to the folder with its size and SHA-256, or null while the file is being written (a path enters the
manifest before the file is created, so an interrupted run leaves nothing that the manifest does not name). The
manifest is replaced atomically and, being hidden, is not uploaded by `hub push`.

The rules, the same for every writer:
- an output inside one of the command's inputs, or an input inside the output, is refused, naming both: a command
  never writes into what it reads, and replacing an output never deletes an input;
- a folder that does not exist, or is empty, becomes the command's; the folder and its manifest are created at the
  first write, so a run refused or failed before writing leaves nothing behind;
- a non-empty folder without a manifest is refused, naming what is in it: the command cannot tell its files from the
  user's (outputs of versions that wrote no manifest are refused the same way);
- a folder of another command is refused;
- a folder of the same command is resumed (`resume=True`, the corpus builder) or replaced (`overwrite=True`), and
  then only the files its manifest lists are removed, after checking that none changed since it was written (a
  changed file may hold the user's edits); `.git/`, notes and anything else the manifest does not list stay;
- a file the command is about to write must not exist unless the manifest lists it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

MANIFEST_NAME = ".vis-mae-outputs.json"
_MANIFEST_KIND = "vis-mae-hf output manifest"
_MANIFEST_VERSION = 1
_ENTRIES_NAMED = 5  # how many entries of a refused folder an error names


class OutputFolderError(FileExistsError):
    """The output folder cannot be written as asked; the message names it, what is in the way and what to do."""


def file_record(path: Path) -> dict:
    """What the manifest keeps of a written file: its size and SHA-256."""
    with open(path, "rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
        size = os.fstat(stream.fileno()).st_size
    return {"size": size, "sha256": digest}


class OutputFolder:
    """The output folder of one command and the manifest of what that command wrote there.

    Names are POSIX paths relative to the folder. Write a file by `claim`ing its name (and that of any temporary
    file), writing it, then `record`ing it; or stage a whole output elsewhere and `install` it.
    """

    def __init__(self, path: Path, tool: str, files: dict[str, dict | None], *, manifest_written: bool):
        self.path = path
        self.tool = tool
        self._files = dict(files)
        self._manifest_written = manifest_written
        self._found_unchanged: set[str] = set()  # recorded files already checked in this run

    @property
    def files(self) -> dict[str, dict | None]:
        """Name -> {"size", "sha256"} of every file the manifest lists (None: claimed, being written)."""
        return dict(self._files)

    def is_recorded(self, name: str) -> bool:
        """Whether `name` was written completely by this command and is still there."""
        return self._files.get(name) is not None and (self.path / name).is_file()

    def claim(self, *names: str) -> None:
        """Enter `names` in the manifest before writing them; refuses a name that exists and is not the command's."""
        new = [_checked_name(name) for name in names if name not in self._files]
        self._refuse_links_out(new)
        taken = [name for name in new if os.path.lexists(self.path / name)]
        if taken:
            raise OutputFolderError(
                f"{self.path} already holds {_listing(taken)}, which `{self.tool}` did not write; it writes over "
                "nothing of yours. Move them out of the folder, or choose another output folder."
            )
        if new or not self._manifest_written:
            self._files.update(dict.fromkeys(new))
            self._save()

    def record(self, *names: str) -> None:
        """Record the size and hash of the claimed `names` now written; a name no longer there (a temporary file
        renamed into place) leaves the manifest."""
        for name in names:
            if name not in self._files:
                raise ValueError(f"{name!r} was not claimed in {self.path / MANIFEST_NAME} before it was written.")
            path = self.path / name
            if path.is_file():
                self._files[name] = file_record(path)
                self._found_unchanged.add(name)
            else:
                del self._files[name]
        self._save()

    def remove(self, *names: str) -> None:
        """Delete files this command wrote (listed in the manifest and unchanged since), and folders left empty."""
        unlisted = [name for name in names if name not in self._files]
        if unlisted:
            raise ValueError(f"{self.path}: {unlisted} are not in its manifest; only listed files are removed.")
        self.refuse_changed(names)
        for name in names:
            (self.path / name).unlink(missing_ok=True)
            del self._files[name]
            self._remove_empty_folders_above(name)
        self._save()

    def write_text(self, name: str, text: str) -> None:
        """Write `name` atomically (a claimed temporary file renamed into place)."""
        temporary = f"{name}.tmp"
        self.claim(name, temporary)
        (self.path / temporary).parent.mkdir(parents=True, exist_ok=True)
        (self.path / temporary).write_text(text, encoding="utf-8")
        os.replace(self.path / temporary, self.path / name)
        self.record(name, temporary)

    def install(self, staging: Path, *, last: Sequence[str] = ()) -> list[str]:
        """Replace the command's previous output (the files the manifest lists) with the tree written at `staging`.

        The previous files go first and `last` (a file whose presence marks the output finished) comes in last, so
        an interrupted install never looks like a finished output. Returns the installed names.
        """
        staging = Path(staging)
        staged = sorted(path.relative_to(staging).as_posix() for path in staging.rglob("*") if path.is_file())
        previous = list(self._files)
        self.refuse_changed(previous)
        self.claim(*staged)
        self._files.update(dict.fromkeys(staged))  # a name also in the previous output: ours until recorded again
        self._save()
        for name in previous:
            (self.path / name).unlink(missing_ok=True)
            if name not in staged:
                del self._files[name]
            self._remove_empty_folders_above(name)
        self._save()
        for name in [name for name in staged if name not in last] + [name for name in last if name in staged]:
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, target)
        self.record(*staged)
        return staged

    def changed_files(self, names: Iterable[str] | None = None) -> list[str]:
        """The recorded files (of `names`, default all) whose size or content differs from what was written."""
        changed = []
        for name in self._files if names is None else names:
            record = self._files.get(name)
            path = self.path / name
            if record is None or name in self._found_unchanged or not path.is_file():
                continue
            if path.stat().st_size != record["size"] or file_record(path) != record:
                changed.append(name)
            else:
                self._found_unchanged.add(name)
        return changed

    def refuse_changed(self, names: Iterable[str] | None = None) -> None:
        """Refuse to go on when a recorded file changed since it was written (it may hold the user's edits), or
        when its folder became a link out of the output folder."""
        names = list(self._files if names is None else names)
        self._refuse_links_out(names)
        changed = self.changed_files(names)
        if changed:
            raise OutputFolderError(
                f"{self.path}: {_listing(changed)} changed since `{self.tool}` wrote them and may hold your edits, so "
                "they are neither removed nor written over. Move them out of the folder (or remove them yourself) "
                "and run again, or choose another output folder."
            )

    def _refuse_links_out(self, names: Iterable[str]) -> None:
        """Refuse names whose folder has become a link out of the output folder: writing or removing there would
        touch files elsewhere."""
        leaving = []
        for name in names:
            folder = (self.path / name).parent.resolve()
            if folder != self.path and self.path not in folder.parents:
                leaving.append(name)
        if leaving:
            raise OutputFolderError(
                f"{self.path}: the folders of {_listing(leaving)} are links out of the output folder, so `{self.tool}` "
                "neither writes nor removes anything through them. Remove the links, or choose another output folder."
            )

    def _remove_empty_folders_above(self, name: str) -> None:
        folder = (self.path / name).parent
        while folder != self.path and self.path in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): everything above it stays too
                return
            folder = folder.parent

    def _save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        manifest = {
            "manifest": _MANIFEST_KIND,
            "version": _MANIFEST_VERSION,
            "tool": self.tool,
            "files": dict(sorted(self._files.items())),
        }
        descriptor, temporary = tempfile.mkstemp(prefix=f"{MANIFEST_NAME}.", suffix=".tmp", dir=self.path)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(json.dumps(manifest, indent=1) + "\n")
        os.replace(temporary, self.path / MANIFEST_NAME)
        self._manifest_written = True


def check_apart(output: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an output folder inside an input (or equal to it) and an input inside the output, naming both."""
    output = Path(output).expanduser().resolve()
    for given in inputs:
        source = Path(given).expanduser().resolve()
        if output == source or source in output.parents:
            where = "is the input" if output == source else "is inside the input"
            raise OutputFolderError(
                f"The output folder {output} {where} {given}; a command never writes into what it reads. Choose an "
                f"output folder outside {given}."
            )
        if output in source.parents:
            raise OutputFolderError(
                f"The input {given} is inside the output folder {output}; replacing an output there could delete "
                "it. Choose an output folder that does not contain the input."
            )


def check_folder_path(path: str | Path, name: str = "The output") -> Path:
    """`path` as a folder to write into (made when missing): an existing file there, or a file where one of its parent
    folders should be, is refused before any work is done. `name` says how the user gave it (e.g. "--output")."""
    path = Path(path)
    for place in (path, *path.parents):
        if place.is_dir():
            return path
        if place.exists():
            where = "is an existing file" if place == path else f"lies under {place}, which is a file"
            raise OutputFolderError(f"{name} {path} {where}; give a folder to write into (it is created if missing).")
    return path


def open_output_folder(
    path: str | Path,
    tool: str,
    *,
    inputs: Iterable[str | Path] = (),
    overwrite: bool = False,
    resume: bool = False,
    previous_output: str = "an earlier output",
) -> OutputFolder:
    """The output folder `path` of the command `tool` (e.g. "vis-mae data corpus"), checked by the rules above.

    Args:
        inputs: files and folders the command reads; the output may be neither inside one nor around one.
        overwrite: replace an earlier output of `tool` in the folder (only the files its manifest lists).
        resume: go on with an earlier output of `tool` (the command decides what of it to keep).
        previous_output: how the refusal of an earlier output (without `overwrite`) names it.

    Raises:
        OutputFolderError: naming the folder, what is in it and what to do.
    """
    path = check_folder_path(Path(path).expanduser().resolve())
    check_apart(path, inputs)
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        contents = sorted(path.iterdir()) if path.is_dir() else []
        if contents:
            raise OutputFolderError(
                f"The output folder {path} is not empty ({_folder_listing(contents)}) and has no {MANIFEST_NAME}, so "
                f"`{tool}` cannot tell its own files from yours and writes nothing there; an output of an earlier "
                "version, which wrote no manifest, is refused the same way. Choose another output folder, or remove "
                "this one yourself if nothing in it is needed."
            )
        return OutputFolder(path, tool, {}, manifest_written=False)
    folder = OutputFolder(path, tool, _read_manifest(manifest_path, tool), manifest_written=True)
    if folder.files and not resume:
        if not overwrite:
            raise OutputFolderError(
                f"The output folder {path} holds {previous_output} of `{tool}` ({len(folder.files)} files); pass "
                "--overwrite (overwrite=True) to replace those files (nothing else in the folder is touched), or "
                "choose another output folder."
            )
        folder.refuse_changed()
    return folder


def _read_manifest(manifest_path: Path, tool: str) -> dict[str, dict | None]:
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        valid = manifest.get("manifest") == _MANIFEST_KIND and isinstance(manifest.get("files"), dict)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        valid, manifest = False, str(error)
    if not valid:
        raise OutputFolderError(
            f"{manifest_path} is not a vis-mae output manifest, so nothing in {manifest_path.parent} can be proven "
            "to be vis-mae's. Choose another output folder, or remove this one yourself if nothing in it is needed."
        )
    if manifest.get("tool") != tool:
        raise OutputFolderError(
            f"The output folder {manifest_path.parent} holds the output of `{manifest.get('tool')}`, not of "
            f"`{tool}`. Choose another output folder."
        )
    files = manifest["files"]
    for name, record in files.items():
        _checked_name(name)
        if record is not None and not (isinstance(record, dict) and {"size", "sha256"} <= set(record)):
            raise OutputFolderError(f"{manifest_path} records {name!r} without its size and sha256.")
    return files


def _checked_name(name: str) -> str:
    """A manifest name: relative, inside the folder, not the manifest itself (a hand-edited manifest could try)."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts or parts[0] == MANIFEST_NAME:
        raise OutputFolderError(f"{name!r} is not a file name inside an output folder ({MANIFEST_NAME}).")
    return name


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(sorted(names)[:_ENTRIES_NAMED])
    return shown + (f" and {len(names) - _ENTRIES_NAMED} more" if len(names) > _ENTRIES_NAMED else "")


def _folder_listing(contents: Sequence[Path]) -> str:
    return "holds " + _listing([entry.name + ("/" if entry.is_dir() else "") for entry in contents])


__all__ = ["MANIFEST_NAME", "OutputFolder", "OutputFolderError", "check_apart", "check_folder_path", "open_output_folder"]
