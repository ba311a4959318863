"""The normalizer's process: what it hands back is what normalizing in the worker gives, and
the worker goes on without it when it dies (the import's outcome with it is in
``test_import_chunks.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.ingest.domain.csvfile import decode, detect_delimiter, read
from services.ingest.domain.normalize import Normalization, normalize
from services.ingest.normalizer import NormalizerProcess, RowValues, pack, unpack
from services.ingest.service import DEFINITION
from services.ingest.settings import IngestSettings
from services.ingest.tests.dirty import dirty_csv

SETTINGS = DEFINITION.settings()
assert isinstance(SETTINGS, IngestSettings)
CONFIG = SETTINGS.normalization()

# Every kind of value a normalized lead holds: UTM, consent with its time, an amount, a
# date, attributes, warnings; and a row refused (no lead, errors).
RICH: list[RowValues] = [
    (
        {
            "email": "Ada.Lovelace@Analytical-Engines.co.uk",
            "first_name": "ADA",
            "last_name": "lovelace",
            "phone": "020 7946 0958",
            "country": "UK",
            "region": "England",
            "title": "Head of Engineering",
            "company": "Analytical Engines Ltd",
            "website": "https://www.analytical-engines.co.uk/about",
            "industry": "Software",
            "sic_code": "7372",
            "employees": "1.200",
            "annual_revenue": "$1.5M",
            "utm_source": "linkedin",
            "utm_medium": "paid_social",
            "consent_email": "yes",
            "consent_phone": "nein",
            "consent_recorded_at": "2026-03-01T10:00:00Z",
            "occurred_at": "1767225600",
            "touchpoint_type": "Demo Request",
            "city": "London",
            "postal_code": "ec1a 1bb",
        },
        {"Booth": "B12", "Badge scanned": True, "Visits": 3},
    ),
    ({"email": "kaputt@", "phone": "bitte nicht anrufen"}, {}),
    ({"email": "grace@navy.mil", "employees": "viele", "country": "Atlantis"}, {}),
    ({"phone": "+49 30 1234567", "consent_email": "maybe"}, {}),
]


def dirty_rows(count: int) -> list[RowValues]:
    text, _ = decode(dirty_csv(count)[0])
    _, rows = read(text, detect_delimiter(text), start=0)
    return [(row.fields, row.attributes) for row in rows]


def ended(pid: int, timeout: float = 30.0) -> bool:
    """Whether the process ended (gone, or a zombie its parent has not reaped yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def normalized_here(rows: list[RowValues]) -> list[Normalization]:
    return [normalize(fields, attributes, config=CONFIG) for fields, attributes in rows]


def test_a_normalization_packed_and_unpacked_is_the_same() -> None:
    expected = normalized_here(RICH + dirty_rows(300))
    assert expected[0].lead is not None
    assert expected[0].lead.utm.source == "linkedin"
    assert expected[0].lead.consent.recorded_at is not None
    assert expected[0].lead.annual_revenue is not None
    assert expected[1].lead is None
    assert expected[2].warnings
    unpacked = [unpack(pack(each)) for each in expected]
    assert unpacked == expected
    # What capture reads of them comes out the same too, not only what equality compares.
    for mine, theirs in zip(unpacked, expected, strict=True):
        if theirs.lead is not None:
            assert mine.lead is not None
            assert mine.lead.utm.model_dump(exclude_none=True) == theirs.lead.utm.model_dump(
                exclude_none=True
            )
            assert mine.lead.consent.model_dump(mode="json") == theirs.lead.consent.model_dump(
                mode="json"
            )
            assert vars(mine.lead) == vars(theirs.lead)


@pytest.fixture
def normalizer() -> Iterator[NormalizerProcess]:
    process = NormalizerProcess(CONFIG)
    try:
        yield process
    finally:
        process.close()


def test_the_process_normalizes_as_the_worker_does(normalizer: NormalizerProcess) -> None:
    rows = RICH + dirty_rows(200)
    assert not normalizer.ready()  # started, not up yet
    assert normalizer.submit(rows) is None  # nothing waits for it to start
    normalizer.wait_ready()
    future = normalizer.submit(rows)
    assert future is not None
    assert normalizer.result(future) == normalized_here(rows)
    assert normalizer.pid not in (None, os.getpid())


def test_when_the_process_dies_its_rows_are_answered_none_and_another_one_starts(
    normalizer: NormalizerProcess,
) -> None:
    rows = dirty_rows(50)
    normalizer.wait_ready()
    pid = normalizer.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert ended(pid)
    future = normalizer.submit(rows)  # None if it already knows, else the rows fail
    assert future is None or normalizer.result(future) is None
    assert normalizer.started == 1
    normalizer.wait_ready()  # a new process
    assert normalizer.started == 2
    assert normalizer.pid not in (None, pid)
    future = normalizer.submit(rows)
    assert future is not None
    assert normalizer.result(future) == normalized_here(rows)


def test_closed_the_process_ends(normalizer: NormalizerProcess) -> None:
    normalizer.wait_ready()
    pid = normalizer.pid
    assert pid is not None
    normalizer.close()
    assert ended(pid)
    assert normalizer.pid is None


PARENT = """
import sys
from services.ingest.normalizer import NormalizerProcess
from services.ingest.domain.normalize import NormalizationConfig

if __name__ == "__main__":
    normalizer = NormalizerProcess(NormalizationConfig())
    normalizer.wait_ready()
    print(normalizer.pid, flush=True)
    sys.stdin.read()  # until killed
"""


def test_the_process_ends_when_its_parent_is_killed_outright(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not ended(child, timeout=1.0)
        parent.kill()
        parent.wait(timeout=30)
        assert ended(child), "the normalizer's process outlived its parent"
    finally:
        parent.kill()
        parent.wait(timeout=30)
