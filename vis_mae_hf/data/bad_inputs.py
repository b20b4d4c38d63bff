"""The one bad-file policy of every dataset conversion (`on_error`, `--on-error stop|skip`) and what it reports.

A converter finds a bad input in two places: while listing cases (an image without its mask, a table row naming a
missing file: `SourceConverter.reject`) and while reading them (a file that cannot be decoded, a mask of another size
or with undeclared values: an exception from `iter_rows`, or a `SkippedInput` it yields for one file of a case that
has others). The policy then decides, the same way for every source:
- `stop` (default): the conversion fails before its output is written, naming the file, what is wrong and the way
  out. A labelled set must not lose cases without the user knowing.
- `skip`: the file (or the case it belongs to) is left out, and the summary lists it with the reason.

`InputNotice`s are what a converter decided about a file that the user should know but that loses nothing (a 0/255
mask read as 0/1); the summary groups them by message. Rows are made in `datasets` worker processes, so what they
report travels through a small JSON-lines log per process (`ReportLog`).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

STOP = "stop"
SKIP = "skip"
ON_ERROR_CHOICES = (STOP, SKIP)
SKIP_HINT = "Fix or remove it, or convert with --on-error skip (on_error='skip') to leave it out and list it."
_NAMED_IN_ERRORS = 5
_EXAMPLES_PER_NOTICE = 3


class BadInputError(ValueError):
    """An input file the conversion cannot use, under `on_error='stop'`; the message names it and the way out."""


@dataclass(frozen=True)
class SkippedInput:
    """A file left out of a conversion (relative to the source), and why."""

    file: str
    reason: str


@dataclass(frozen=True)
class InputNotice:
    """Something decided about `file` that the user should know; grouped by `message` in the summary."""

    message: str
    file: str


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}.")
    return on_error


def refusal(skipped: list[SkippedInput], source_name: str) -> BadInputError:
    """The `stop` error for bad inputs found while listing: every one counted, the first few named."""
    named = "; ".join(f"{item.file}: {item.reason}" for item in skipped[:_NAMED_IN_ERRORS])
    more = f" (and {len(skipped) - _NAMED_IN_ERRORS} more)" if len(skipped) > _NAMED_IN_ERRORS else ""
    count = f"{len(skipped)} bad input file(s)" if len(skipped) > 1 else "a bad input file"
    return BadInputError(f"{source_name}: {count}: {named}{more}. {SKIP_HINT}")


def case_error_message(error: BaseException, files: list[str]) -> str:
    """An error from reading a case, naming one of its files when the error does not already."""
    text = str(error) or type(error).__name__
    if any(file in text or Path(file).name in text for file in files):
        return text
    return f"{files[0]}: {text}" if files else text


class ReportLog:
    """What row generation skipped and noticed, appended by any process to its own file in `folder`."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def writer(self) -> ReportLogWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        return ReportLogWriter(self.folder / f"report-{uuid.uuid4().hex}.jsonl")

    def entries(self) -> list[dict]:
        entries = []
        for path in sorted(self.folder.glob("report-*.jsonl")):
            entries.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
        return entries

    def skipped(self) -> list[SkippedInput]:
        return [SkippedInput(entry["file"], entry["reason"]) for entry in self.entries() if entry["kind"] == "skipped"]

    def notices(self) -> list[InputNotice]:
        return [InputNotice(entry["message"], entry["file"]) for entry in self.entries() if entry["kind"] == "notice"]

    def units_with_rows(self) -> set[str]:
        return {entry["unit"] for entry in self.entries() if entry["kind"] == "rows"}

    def stop_error(self) -> BadInputError | None:
        """The error that stopped row generation under `stop`. A worker process's exception reaches the parent only
        as a traceback text, so the message travels through the log too."""
        messages = [entry["message"] for entry in self.entries() if entry["kind"] == "stopped"]
        return BadInputError(messages[0]) if messages else None


class ReportLogWriter:
    def __init__(self, path: Path):
        self.path = path

    def _append(self, entry: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(entry) + "\n")

    def skipped(self, item: SkippedInput) -> None:
        self._append({"kind": "skipped", **asdict(item)})

    def notice(self, item: InputNotice) -> None:
        self._append({"kind": "notice", **asdict(item)})

    def rows_made(self, unit: str) -> None:
        self._append({"kind": "rows", "unit": unit})

    def stopped(self, error: BadInputError) -> BadInputError:
        """Record the error that stops the conversion (see `ReportLog.stop_error`); returns it, to be raised."""
        self._append({"kind": "stopped", "message": str(error)})
        return error


def skipped_summary(skipped: list[SkippedInput]) -> list[dict]:
    """The summary's `skipped` entries: every left-out file with its reason, sorted by file."""
    unique = {(item.file, item.reason) for item in skipped}
    return [{"file": file, "reason": reason} for file, reason in sorted(unique)]


def notice_summary(notices: list[InputNotice]) -> list[str]:
    """One line per notice message: how many files, and a few of them."""
    files_of: dict[str, set[str]] = defaultdict(set)
    for notice in notices:
        files_of[notice.message].add(notice.file)
    lines = []
    for message, files in sorted(files_of.items()):
        examples = ", ".join(sorted(files)[:_EXAMPLES_PER_NOTICE])
        lines.append(f"{message}: {len(files)} file(s), e.g. {examples}")
    return lines
