"""A DICOM series sent as one zip file (how a browser uploads a folder): unpacked into a folder `dicom_series` reads.

An archive is untrusted input, so it is unpacked by what it holds, not by what it says: every member is written
flat under its own base name (no path from the archive is followed, so nothing lands outside the folder), folders,
hidden files and macOS resource forks (`__MACOSX/`) are skipped, two members of one name are refused (one slice
would silently replace another), and the bytes actually unpacked are counted against a bound derived from the one
voxel limit (`limits.max_voxels()` x 4 bytes, the float32 size of the largest volume read anyway), so a zip bomb
stops at that bound whatever its headers declare.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path, PurePosixPath

from .errors import ImageTooLargeError, UnreadableMedicalImageError
from .limits import MAX_VOXELS_VARIABLE, max_voxels

ARCHIVE_SUFFIXES = (".zip",)
MAX_MEMBERS = 10_000
_CHUNK = 1 << 20


def is_series_archive(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def _member_name(info: zipfile.ZipInfo) -> str | None:
    """The base name a member is written under; None for folders, hidden files and resource forks."""
    parts = PurePosixPath(info.filename.replace("\\", "/")).parts
    if info.is_dir() or not parts or "__MACOSX" in parts or parts[-1].startswith("."):
        return None
    return parts[-1]


def _copy_bounded(source, target: Path, budget: int, archive: Path) -> int:
    """Copy one member, returning the bytes written; past `budget` bytes, refuse the archive."""
    written = 0
    with open(target, "wb") as stream:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise ImageTooLargeError(
                    f"{archive} unpacks to more than {max_voxels() * 4:,} bytes, more than the largest volume that may "
                    f"be read (the voxel limit x 4 bytes); refused while unpacking. If the series is genuine, set "
                    f"{MAX_VOXELS_VARIABLE} higher, or unpack it yourself and give the folder."
                )
            stream.write(chunk)
    return written


def unpack_series_archive(archive: str | Path, folder: str | Path) -> Path:
    """Unpack the zip `archive` flat into the new folder `folder` (see the module docstring); returns `folder`.

    Raises:
        UnreadableMedicalImageError: not a zip file, a damaged member, two members of one name, too many members.
        ImageTooLargeError: more bytes than the voxel limit allows.
    """
    archive, folder = Path(archive), Path(folder)
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [(info, _member_name(info)) for info in zipped.infolist()]
            members = [(info, name) for info, name in members if name is not None]
            if len(members) > MAX_MEMBERS:
                raise UnreadableMedicalImageError(
                    f"{archive} holds {len(members)} files; a series archive may hold at most {MAX_MEMBERS}."
                )
            names = [name for _, name in members]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise UnreadableMedicalImageError(
                    f"{archive} holds several files named {', '.join(repeated[:5])} (in different folders); a series "
                    "archive holds one series, each slice once: zip the folder of one series."
                )
            folder.mkdir(parents=True)
            budget = max_voxels() * 4
            for info, name in members:
                with zipped.open(info) as source:
                    budget -= _copy_bounded(source, folder / name, budget, archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise UnreadableMedicalImageError(
            f"{archive} is not a readable zip archive ({error}); zip the folder of one DICOM series."
        ) from error
    return folder
