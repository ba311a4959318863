"""An import in many chunks, each its own transaction: the worker parses the file once and
reads on from chunk to chunk, and parses it again whenever the database says what it holds
is not right any more (a restart, a failed chunk, another worker, an erasure)."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.ingest import imports, repository
from services.ingest.capture import capture_many
from services.ingest.domain.erasure import ERASED_CELL
from services.ingest.erasure import erase_person
from services.ingest.imports import ERASED_ROW, ImportFiles, process_chunk
from services.ingest.models import Import
from services.ingest.normalizer import NormalizerProcess
from services.ingest.service import DEFINITION
from services.ingest.tests.conftest import outbox_events
from services.ingest.tests.dirty import dirty_csv
from services.ingest.tests.test_imports import OUTBOX, accept, settings
from services.ingest.tests.test_normalizer import CONFIG
from shared.db import Database
from shared.db.migrate import downgrade, drift, upgrade
from shared.testing.pytest_plugin import DatabaseFactory
from shared.testing.statements import statements_sent

# The dirty list, and after it rows the reader must keep its place in: a quoted cell over
# two lines, blank lines, a row of spaces.
TAIL = (
    'Firma 1 GmbH;Jörg;Weiß;multi.line@firma1.de;;UK;CEO;10-50;"Stand 4\r\nHalle 2"\r\n'
    "\r\n"
    " ; ; ; ; ; ; ; ; \r\n"
    "Firma 2 GmbH;Jörg;Weiß;last.row@firma2.de;;UK;CEO;10-50;\r\n"
)
DATA = dirty_csv(300)[0] + TAIL.encode("cp1252")
ROWS = 302
CHUNK = 7


@pytest.fixture
def other_database(db_backend: str, database_factory: DatabaseFactory) -> Iterator[Database]:
    """A second, empty database of the same kind: an import done another way, side by side."""
    database = database_factory.create(db_backend, DEFINITION)
    try:
        yield database
    finally:
        database_factory.drop(database)


@pytest.fixture(scope="module")
def normalizer() -> Iterator[NormalizerProcess]:
    process = NormalizerProcess(CONFIG)
    process.wait_ready()
    try:
        yield process
    finally:
        process.close()


@pytest.fixture(params=["normalized in the worker", "normalized ahead in another process"])
def new_files(request: pytest.FixtureRequest) -> Callable[[], ImportFiles]:
    """How a worker keeps its files: every test here holds with the normalizer's process
    reading each next chunk ahead, as without."""
    if request.param == "normalized in the worker":
        return ImportFiles
    normalizer: NormalizerProcess = request.getfixturevalue("normalizer")
    return lambda: ImportFiles(normalizer)


def chunk(database: Database, import_id: uuid.UUID, files: ImportFiles, **overrides: Any) -> bool:
    """What the worker does for one chunk: one transaction."""
    config = settings(database, **{"import_chunk_rows": CHUNK, **overrides})
    with database.transaction() as session:
        return process_chunk(session, OUTBOX, import_id=import_id, settings=config, files=files)


def to_the_end(database: Database, import_id: uuid.UUID, files: ImportFiles) -> None:
    while not chunk(database, import_id, files):
        pass


def outcome(database: Database, import_id: uuid.UUID) -> dict[str, Any]:
    """What an import did, by row: comparable across databases (no ids)."""
    with database.read() as session:
        job = repository.import_(session=session, import_id=import_id)
        assert job is not None
        issues = repository.import_issues(session=session, import_id=import_id, limit=10_000)
        figures: dict[str, Any] = {
            "job": (job.status, job.total_rows, job.processed_rows, job.content),
            "counts": (job.created, job.merged, job.rejected),
            "warnings": job.warnings,
            "issues": [(i.row, i.field, i.reason, i.severity) for i in issues],
        }
    figures["events"] = [
        (
            int(e["touchpoint"]["reference"].partition("#")[2]),
            e["change"],
            e["lead"]["email"],
            e["lead"]["phone"],
            e["lead"]["attributes"],
        )
        for e in outbox_events(database)
    ]
    return figures


def in_one_chunk(database: Database) -> dict[str, Any]:
    """The reference: the whole file in one chunk, nothing kept between chunks."""
    import_id = accept(database, DATA)
    assert chunk(database, import_id, ImportFiles(), import_chunk_rows=10_000)
    return outcome(database, import_id)


CONTENT = re.compile(r"\bimports\.content\b(?!_)")


def reads_of_content(sent: list[tuple[str, Any]]) -> list[str]:
    """The statements that read an import's stored file."""
    return [
        statement
        for statement, _ in sent
        if statement.lstrip().upper().startswith("SELECT") and CONTENT.search(statement)
    ]


def test_a_file_in_many_chunks_is_parsed_once_and_imported_as_in_one(
    database: Database, other_database: Database, new_files: Callable[[], ImportFiles]
) -> None:
    expected = in_one_chunk(other_database)
    assert expected["job"] == ("done", ROWS, ROWS, "")
    assert expected["counts"][0] > 200
    assert expected["events"][-1][:3] == (307, "created", "last.row@firma2.de")  # line 307

    import_id = accept(database, DATA)
    files = new_files()
    with statements_sent(database.engine) as sent:
        to_the_end(database, import_id, files)
    assert outcome(database, import_id) == expected
    assert files.parsed == 1
    assert len(reads_of_content(sent)) == 1  # the first chunk; the others do not fetch the file
    chunks = -(-ROWS // CHUNK)
    assert files.normalized_ahead == (0 if files.normalizer is None else chunks - 1)


def test_a_restarted_worker_resumes_where_the_last_commit_stopped(
    database: Database, other_database: Database, new_files: Callable[[], ImportFiles]
) -> None:
    expected = in_one_chunk(other_database)
    import_id = accept(database, DATA)
    before = new_files()
    for _ in range(5):
        assert not chunk(database, import_id, before)
    with database.read() as session:
        job = repository.import_(session=session, import_id=import_id)
        assert job is not None
        assert (job.status, job.processed_rows) == ("running", 5 * CHUNK)
    after = new_files()  # a new process: nothing kept
    to_the_end(database, import_id, after)
    assert outcome(database, import_id) == expected
    assert (before.parsed, after.parsed) == (1, 1)


def test_after_a_chunk_that_failed_the_file_is_parsed_again(
    database: Database,
    other_database: Database,
    monkeypatch: pytest.MonkeyPatch,
    new_files: Callable[[], ImportFiles],
) -> None:
    """The failed chunk took rows from the parsed file and committed nothing: reading on
    would skip them."""
    expected = in_one_chunk(other_database)
    import_id = accept(database, DATA)
    files = new_files()
    assert not chunk(database, import_id, files)
    calls = 0

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the database went away")
        return capture_many(*args, **kwargs)

    monkeypatch.setattr(imports, "capture_many", fails_once)
    assert not chunk(database, import_id, files)
    with pytest.raises(RuntimeError, match="went away"):
        chunk(database, import_id, files)
    to_the_end(database, import_id, files)
    assert outcome(database, import_id) == expected
    assert files.parsed == 2


def test_what_another_worker_did_meanwhile_is_not_done_again(
    database: Database, other_database: Database, new_files: Callable[[], ImportFiles]
) -> None:
    expected = in_one_chunk(other_database)
    import_id = accept(database, DATA)
    first, second = new_files(), new_files()
    assert not chunk(database, import_id, first)
    assert not chunk(database, import_id, second)  # the position first holds is behind now
    to_the_end(database, import_id, first)
    assert outcome(database, import_id) == expected
    assert (first.parsed, second.parsed) == (2, 1)


def test_a_chunk_under_way_is_left_to_its_worker(
    database: Database, other_database: Database, new_files: Callable[[], ImportFiles]
) -> None:
    """Replicas: a worker that comes to an import while another one's chunk is being
    written leaves it at once (it would take the same rows), and the import is done once."""
    if database.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: a second worker waits for the first")
    expected = in_one_chunk(other_database)
    import_id = accept(database, DATA)
    first, second = new_files(), new_files()
    config = settings(database, import_chunk_rows=CHUNK)
    answers: list[bool] = []
    with database.transaction() as session:
        assert not process_chunk(session, OUTBOX, import_id=import_id, settings=config, files=first)
        meanwhile = threading.Thread(
            target=lambda: answers.append(chunk(database, import_id, second)), daemon=True
        )
        meanwhile.start()
        meanwhile.join(timeout=30)
        assert not meanwhile.is_alive(), "the second worker waited for the first one's chunk"
    assert answers == [True]
    assert second.parsed == 0
    to_the_end(database, import_id, first)
    assert outcome(database, import_id) == expected
    assert first.parsed == 1


ADA = "ada@analytical-engines.co.uk"
PEOPLE = (
    "Email,First Name,Last Name,Country\r\n"
    f"{ADA},Ada,Lovelace,UK\r\n"  # 2: first chunk
    "charles@analytical-engines.co.uk,Charles,Babbage,UK\r\n"  # 3
    "mary@analytical-engines.co.uk,Mary,Somerville,UK\r\n"  # 4: second chunk
    f"{ADA.upper()},Augusta Ada,King,UK\r\n"  # 5: Ada again
    "john@analytical-engines.co.uk,John,Herschel,UK\r\n"  # 6: third chunk
)


def test_an_erasure_between_two_chunks_refuses_the_persons_later_rows_as_erased(
    database: Database, new_files: Callable[[], ImportFiles]
) -> None:
    import_id = accept(database, PEOPLE.encode())
    files = new_files()
    assert not chunk(database, import_id, files, import_chunk_rows=2)
    config = settings(database)
    with database.transaction() as session:
        erase_person(session, OUTBOX, email=ADA, regulation="gdpr", settings=config)
    with database.read() as session:
        job = session.get(Import, import_id)
        assert job is not None
        assert job.content_version == 1
        assert "Augusta" not in job.content
    to_the_end_in_twos = [chunk(database, import_id, files, import_chunk_rows=2) for _ in "ab"]
    assert to_the_end_in_twos == [False, True]
    report = outcome(database, import_id)
    # Refused as blanked in the file, not let through to the suppression: the worker did not
    # read on in the file as it had parsed it before the erasure.
    assert [(row, field, reason) for row, field, reason, _ in report["issues"]] == [
        (5, ERASED_ROW.field, ERASED_ROW.reason)
    ]
    assert report["counts"] == (4, 0, 1)
    assert [(row, email) for row, _, email, *_ in report["events"]] == [
        (2, ADA),
        (3, "charles@analytical-engines.co.uk"),
        (4, "mary@analytical-engines.co.uk"),
        (6, "john@analytical-engines.co.uk"),
    ]
    assert files.parsed == 2


def test_suppressed_rows_are_blanked_as_the_file_is_read_on(database: Database) -> None:
    """A person erased before the import: their row is refused and blanked in the stored file
    at once; the rest of the file is the same, so the worker reads on without parsing it
    again."""
    first = accept(database, PEOPLE.encode())
    to_the_end(database, first, ImportFiles())
    with database.transaction() as session:
        erase_person(session, OUTBOX, email=ADA, regulation="gdpr", settings=settings(database))
    import_id = accept(database, PEOPLE.encode())
    files = ImportFiles()
    assert not chunk(database, import_id, files, import_chunk_rows=2)
    with database.read() as session:
        job = session.get(Import, import_id)
        assert job is not None
        assert (job.content_version, job.content.count(ERASED_CELL)) == (1, 4)
        assert "Lovelace" not in job.content
        assert "Augusta" in job.content  # not read yet
    assert [chunk(database, import_id, files, import_chunk_rows=2) for _ in "ab"] == [False, True]
    report = outcome(database, import_id)
    assert [(row, field) for row, field, *_ in report["issues"]] == [(2, "email"), (5, "email")]
    assert "erased on request" in report["issues"][1][2]
    assert files.parsed == 1


def test_imports_under_way_when_the_version_came_go_on(database: Database) -> None:
    """Migration 0005 gives the imports stored before it a first ``content_version``."""
    import_id = accept(database, PEOPLE.encode())
    files = ImportFiles()
    assert not chunk(database, import_id, files, import_chunk_rows=2)
    downgrade(DEFINITION.migrations_dir, database, "ingest_0004")
    upgrade(DEFINITION.migrations_dir, database)
    assert drift(database, DEFINITION.metadata) == []
    with database.read() as session:
        job = session.get(Import, import_id)
        assert job is not None
        assert (job.status, job.processed_rows, job.content_version) == ("running", 2, 0)
    assert [chunk(database, import_id, files, import_chunk_rows=2) for _ in "ab"] == [False, True]
    assert outcome(database, import_id)["counts"] == (4, 1, 0)


def test_an_import_counts_its_warnings_and_migration_0006_counts_those_made_before(
    database: Database,
) -> None:
    """The report's warnings are the import's warning issues, counted as chunks write them;
    an import under way when migration 0006 came gets the count of those it had."""
    import_id = accept(database, DATA)
    files = ImportFiles()
    for _ in range(3):
        assert not chunk(database, import_id, files)
    so_far = _warning_issues(database, import_id)
    assert so_far > 0
    downgrade(DEFINITION.migrations_dir, database, "ingest_0005")
    upgrade(DEFINITION.migrations_dir, database)
    assert drift(database, DEFINITION.metadata) == []
    assert outcome(database, import_id)["warnings"] == so_far
    to_the_end(database, import_id, files)
    report = outcome(database, import_id)
    assert report["warnings"] == _warning_issues(database, import_id) > so_far
    severities = [severity for *_, severity in report["issues"]]
    assert report["warnings"] == severities.count("warning")


def _warning_issues(database: Database, import_id: uuid.UUID) -> int:
    with database.read() as session:
        issues = repository.import_issues(session=session, import_id=import_id, limit=10_000)
        return sum(1 for issue in issues if issue.severity == "warning")


def test_rows_erased_before_the_import_began_are_refused_in_every_chunk(
    database: Database, new_files: Callable[[], ImportFiles]
) -> None:
    """Blanked rows in the first chunk and in one read ahead: each refused as erased, and
    the rows beside them imported as themselves."""
    earlier = accept(database, f"Email,First Name\r\n{ADA},Ada\r\n".encode())
    assert chunk(database, earlier, ImportFiles())
    import_id = accept(database, PEOPLE.encode())
    with database.transaction() as session:
        erase_person(session, OUTBOX, email=ADA, regulation="gdpr", settings=settings(database))
    files = new_files()
    assert [chunk(database, import_id, files, import_chunk_rows=2) for _ in "abc"] == [
        False,
        False,
        True,
    ]
    report = outcome(database, import_id)
    assert report["counts"] == (3, 0, 2)
    assert [(row, reason) for row, _, reason, _ in report["issues"]] == [
        (2, ERASED_ROW.reason),
        (5, ERASED_ROW.reason),
    ]
    # After the earlier import's one event (row 2 of its file):
    assert [(row, email) for row, _, email, *_ in report["events"][1:]] == [
        (3, "charles@analytical-engines.co.uk"),
        (4, "mary@analytical-engines.co.uk"),
        (6, "john@analytical-engines.co.uk"),
    ]
    assert files.parsed == 1
    assert files.normalized_ahead == (0 if files.normalizer is None else 2)
