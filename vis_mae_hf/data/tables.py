"""Reading the tables users hand to the generic converters: CSV or TSV files of paths, labels and patients.

A table is read whole (it is small next to the images it names), with its header; rows keep their line numbers so
that every error can point at the line. Spreadsheet exports are accepted as they come: a byte-order mark (Excel's
"CSV UTF-8"), a comma, semicolon or tab delimiter (tab for `.tsv`/`.tab`, otherwise sniffed), blank lines, spaces
around values. Paths in a table are relative to the table's folder unless absolute.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

_TAB_SUFFIXES = (".tsv", ".tab")
_SNIFFED_DELIMITERS = ",;\t"
_SNIFFED_BYTES = 64 * 1024


@dataclass(frozen=True)
class TableRow:
    line: int  # 1-based line number in the file (the header is line 1)
    values: dict[str, str]


@dataclass(frozen=True)
class Table:
    path: Path
    columns: list[str]
    rows: list[TableRow]

    def require(self, columns: dict[str, str]) -> None:
        """Refuse a table without the wanted columns; `columns` maps each column name to the option that named it."""
        missing = [f"{name!r} ({option})" for name, option in columns.items() if name not in self.columns]
        if missing:
            raise ValueError(
                f"{self.path}: no column {', '.join(missing)}; its columns are {self.columns}. Name the right "
                "column with the option in brackets."
            )

    def file(self, row: TableRow, column: str) -> Path:
        """The path in `column` of `row`, relative to the table's folder unless absolute; an empty cell is refused."""
        value = row.values.get(column, "")
        if not value:
            raise ValueError(f"{self.path}, line {row.line}: the {column!r} cell is empty; it must name a file.")
        path = Path(value).expanduser()
        # `..` collapsed (links kept), so one file named two ways is recognised as one
        return Path(os.path.normpath(path if path.is_absolute() else self.path.parent / path))


def read_table(path: str | Path) -> Table:
    """The CSV/TSV file at `path`: its column names and its non-blank rows, values stripped of spaces."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a UTF-8 text table ({error}); save it as CSV UTF-8.") from error
    reader = csv.reader(text.splitlines(), delimiter=_delimiter(path, text))
    lines = [(number, cells) for number, cells in enumerate(reader, start=1) if any(cell.strip() for cell in cells)]
    if not lines:
        raise ValueError(f"{path}: an empty table; expected a header line and one row per file.")
    header_line, header = lines[0]
    columns = [cell.strip() for cell in header]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        raise ValueError(f"{path}: the header names column(s) {duplicated} more than once.")
    rows = []
    for number, cells in lines[1:]:
        if len(cells) > len(columns):
            raise ValueError(
                f"{path}, line {number}: {len(cells)} cells but the header (line {header_line}) names {len(columns)} "
                "columns."
            )
        rows.append(TableRow(number, {name: cell.strip() for name, cell in zip(columns, cells)}))
    return Table(path, columns, rows)


def _delimiter(path: Path, text: str) -> str:
    if path.suffix.lower() in _TAB_SUFFIXES:
        return "\t"
    try:
        return csv.Sniffer().sniff(text[:_SNIFFED_BYTES], delimiters=_SNIFFED_DELIMITERS).delimiter
    except csv.Error:
        return ","  # one column, or nothing to tell delimiters apart by
