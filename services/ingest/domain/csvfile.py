"""CSV files as directories and list brokers really send them: UTF-8 with or without BOM
or Windows-1252, comma, semicolon, tab or pipe, headers in many spellings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from services.ingest.domain.fields import canonical_field
from services.ingest.domain.normalize import RawValue

DELIMITERS = (",", ";", "\t", "|")


class UnreadableFile(ValueError):
    """Not a CSV file we can read: no header, or no column that identifies a person."""


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was in: UTF-8 (BOM or not), else Windows-1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def detect_delimiter(text: str) -> str:
    """The delimiter that splits the first lines most consistently into the most columns."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        raise UnreadableFile("the file is empty")
    best, best_score = ",", -1.0
    for delimiter in DELIMITERS:
        counts = [
            len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
        ]
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for n in counts if n == counts[0]) / len(counts)
        score = consistent * 100 + counts[0]
        if score > best_score:
            best, best_score = delimiter, score
    return best


@dataclass(frozen=True)
class Columns:
    """What each header means: a lead field, or an attribute of that name."""

    headers: tuple[str, ...]
    fields: tuple[str | None, ...]

    @classmethod
    def of(cls, headers: list[str]) -> Columns:
        cleaned = tuple(h.strip().lstrip("\ufeff") for h in headers)
        fields: list[str | None] = []
        seen: set[str] = set()
        for header in cleaned:
            field = canonical_field(header) if header else None
            if field is not None and field in seen:
                field = None  # a second "Phone" column is kept as an attribute
            if field is not None:
                seen.add(field)
            fields.append(field)
        columns = cls(headers=cleaned, fields=tuple(fields))
        if not seen & {"email", "phone", "mobile"}:
            raise UnreadableFile(
                "no column for an email address or a phone number among the headers: "
                + ", ".join(repr(h) for h in cleaned)
            )
        return columns

    def split(self, row: list[str]) -> tuple[dict[str, RawValue], dict[str, RawValue]]:
        fields: dict[str, RawValue] = {}
        attributes: dict[str, RawValue] = {}
        for header, field, value in zip(self.headers, self.fields, row, strict=False):
            if field is not None:
                fields[field] = value
            elif header and value.strip():
                attributes[header] = value
        return fields, attributes


@dataclass(frozen=True)
class Row:
    number: int  # as a spreadsheet shows it: the header is row 1
    fields: dict[str, RawValue]
    attributes: dict[str, RawValue]


def read(text: str, delimiter: str, *, start: int = 0) -> tuple[Columns, Iterator[Row]]:
    """The columns, and the data rows from the ``start``-th (0 = the first) on.

    Blank lines are skipped but counted, so row numbers match the file.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise UnreadableFile("the file is empty") from None
    columns = Columns.of(header)

    def rows() -> Iterator[Row]:
        index = -1
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            index += 1
            if index < start:
                continue
            fields, attributes = columns.split(values)
            yield Row(number=reader.line_num, fields=fields, attributes=attributes)

    return columns, rows()


def count_rows(text: str, delimiter: str) -> int:
    _, rows = read(text, delimiter)
    return sum(1 for _ in rows)
