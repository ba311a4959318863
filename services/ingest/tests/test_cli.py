"""``leadflow import FILE``: a file imported from the shell, chunk by chunk, with the
normalizer's process of a worker, and nothing left running after."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.ingest.cli import cli
from services.ingest.tests.dirty import dirty_csv
from shared.db import Database

runner = CliRunner()


def test_a_file_is_imported_from_the_shell(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_INGEST_DATABASE_URL", database.url.render_as_string(False))
    monkeypatch.setenv("LEADFLOW_INGEST_IMPORT_CHUNK_ROWS", "100")
    data, expected = dirty_csv(1_000)
    path = tmp_path / "list.csv"
    path.write_bytes(data)
    result = runner.invoke(cli, ["import", str(path), "--source", "directory", "--show", "0"])
    assert result.exit_code == 0, result.output
    rejected = expected["bad_email"] + expected["no_contact"]
    created = expected["rows"] - rejected - expected["duplicates"]
    assert f"{expected['rows']} rows (cp1252, ';')" in result.output
    assert f"created {created}, merged {expected['duplicates']}, rejected {rejected}" in (
        result.output
    )
    # The normalizer's process was stopped (it ends as it reads the stop).
    deadline = time.monotonic() + 30
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()
