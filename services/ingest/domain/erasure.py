"""Erasure, the rules: suppression digests, when an erased person may come back, and which
rows of a stored CSV file are the person's (and how to blank them in place).

A suppression entry is an HMAC-SHA256 of ``"<kind>:<normalized value>"`` under a key of the
deployment, so the table holds no email or phone in clear and cannot be searched by guessing
addresses without the key. It matches like deduplication does: on the email; on the phone
only for a submission with no email (two people behind one switchboard stay two people).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.ingest.domain.csvfile import Row, read
from services.ingest.domain.normalize import Issue, NormalizationConfig, normalize
from shared.contracts import Consent

SuppressionKind = Literal["email", "phone"]

# What a blanked cell of a stored CSV file says instead of the person's data.
ERASED_CELL = "[erased]"
# The one consent that lets an erased person back in, as each door spells it.
CONSENT_HINT = (
    "consent to data processing given again after the erasure "
    "(consent.data_processing: true, or a consent_data_processing / GDPR consent column)"
)


def suppression_digest(key: bytes, kind: SuppressionKind, value: str) -> str:
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SuppressionEntry:
    erasure_id: uuid.UUID
    kind: SuppressionKind
    erased_at: datetime


@dataclass(frozen=True, slots=True)
class Screening:
    """A submission against the suppressions: refused (the field and why), or let in, lifting
    the suppressions of ``lifted`` (erasures the person consented again after)."""

    refused: Issue | None = None
    lifted: frozenset[uuid.UUID] = frozenset()


def consent_renewed(consent: Consent, *, erased_at: datetime, now: datetime) -> bool:
    """Consent to data processing, given after the erasure (recorded then, or given now)."""
    if consent.data_processing is not True:
        return False
    return (consent.recorded_at or now) > erased_at


def screen(
    entries: Sequence[SuppressionEntry], *, has_email: bool, consent: Consent, now: datetime
) -> Screening:
    """``entries``: the suppressions whose digest matches the submission's email or phone."""
    relevant = [entry for entry in entries if entry.kind == "email" or not has_email]
    if not relevant:
        return Screening()
    if all(consent_renewed(consent, erased_at=e.erased_at, now=now) for e in relevant):
        return Screening(lifted=frozenset(entry.erasure_id for entry in relevant))
    field = "email" if any(entry.kind == "email" for entry in relevant) else "phone"
    if consent.data_processing is True:
        why = "the consent given was recorded before the erasure"
    else:
        why = f"it needs {CONSENT_HINT}"
    return Screening(
        refused=Issue(
            field,
            f"this person was erased on request (right to erasure) and is refused: {why}",
        )
    )


# ---------------------------------------------------------------- anonymising what is kept

# UTM parameters that name a campaign, not a person; term and content are free text.
UTM_KEPT = ("source", "medium", "campaign")


def scrub_utm(utm: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in utm.items() if key in UTM_KEPT}


# ---------------------------------------------------------------- stored CSV files


def is_erased_row(row: Row) -> bool:
    """A row blanked by :func:`erase_rows`: nothing in it but erased cells."""
    values = [*row.fields.values(), *row.attributes.values()]
    texts = [str(value).strip() for value in values if value is not None]
    return ERASED_CELL in texts and all(text in ("", ERASED_CELL) for text in texts)


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def rows_of_person(
    text: str,
    delimiter: str,
    *,
    email: str,
    phones: Collection[str],
    referenced: Collection[int],
    config: NormalizationConfig,
) -> set[int]:
    """The numbers of the data rows that are the person's: captured into one of their leads
    (``referenced``), or holding their email anywhere, or with no email and their phone."""
    found: set[int] = set()
    tails = {_digits(phone)[-7:] for phone in phones}
    _, rows = read(text, delimiter)
    for row in rows:
        if row.number in referenced:
            found.add(row.number)
            continue
        values = [str(v) for v in (*row.fields.values(), *row.attributes.values()) if v]
        joined = " ".join(values)
        if email in joined.lower():
            found.add(row.number)
            continue
        if not tails or not any(tail in _digits(joined) for tail in tails):
            continue
        lead = normalize(row.fields, row.attributes, config=config).lead
        if lead is not None and lead.email is None and lead.phone in phones:
            found.add(row.number)
    return found


def erase_rows(text: str, delimiter: str, numbers: Collection[int]) -> str:
    """The file with the data rows ``numbers`` (as :func:`read` numbers them) blanked: each
    cell that held something says ``[erased]``. Every other byte stays as it was, and a
    blanked row keeps its place and its count of lines, so row numbers, progress and
    resumption of the import stay right."""
    wanted = set(numbers)
    if not wanted:
        return text
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    spans: list[tuple[int, int, list[str]]] = []
    start = 0
    for values in reader:
        end = reader.line_num
        if end in wanted and start > 0:  # never the header
            spans.append((start, end, values))
        start = end
    for first, end, values in reversed(spans):
        last_line = lines[end - 1]
        ending = last_line[len(last_line.rstrip("\r\n")) :]
        cells = [ERASED_CELL if value.strip() else "" for value in values]
        if end - first > 1:  # a quoted cell spanned lines: keep the count of lines
            cells[-1] += "\n" * (end - first - 1)
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator=ending).writerow(cells)
        lines[first:end] = [buffer.getvalue()]
    return "".join(lines)
