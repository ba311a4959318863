"""The database layer on SQLite and PostgreSQL, built by the real migrations."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select
from sqlmodel import col

from shared.db import Database
from shared.db.migrate import downgrade, drift, upgrade
from shared.service import ServiceDefinition
from shared.testing.probe.models import TABLES, Effect, metadata


def test_migrations_build_exactly_the_models(database: Database) -> None:
    assert drift(database, metadata) == []
    tables = set(inspect(database.engine).get_table_names())
    assert {"processed_events", "outbox", "effects", "alembic_version"} <= tables


def test_migrations_go_down_and_up_again(
    database: Database, service_definition: ServiceDefinition
) -> None:
    downgrade(service_definition.migrations_dir, database, "base")
    assert set(inspect(database.engine).get_table_names()) == {"alembic_version"}
    upgrade(service_definition.migrations_dir, database)
    assert drift(database, metadata) == []


def test_timestamps_come_back_aware_and_in_utc(database: Database) -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 11, 23, 10, 15, 30, 250000, tzinfo=paris)
    with database.transaction() as session:
        session.add(Effect(event_id="e1", lead_id=uuid.uuid4(), handled_at=moment))
    with database.transaction() as session:
        stored = session.exec(select(Effect)).scalars().one()  # type: ignore[call-overload]
    assert stored.handled_at == moment
    assert stored.handled_at.tzinfo == UTC


def test_naive_timestamps_are_refused(database: Database) -> None:
    with database.transaction() as session:
        session.add(Effect(event_id="e1", lead_id=uuid.uuid4(), handled_at=datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive datetime"):
            session.flush()
        session.rollback()


def test_transaction_rolls_back_on_error(database: Database) -> None:
    def write_then_fail() -> None:
        with database.transaction() as session:
            session.add(Effect(event_id="e1", lead_id=uuid.uuid4(), handled_at=datetime.now(UTC)))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    with database.transaction() as session:
        count = session.execute(select(func.count()).select_from(Effect)).scalar_one()
    assert count == 0


def test_a_savepoint_undoes_only_its_own_writes(database: Database) -> None:
    with database.transaction() as session:
        session.add(Effect(event_id="kept", lead_id=uuid.uuid4(), handled_at=datetime.now(UTC)))
        session.flush()

        def failing_handler() -> None:
            with session.begin_nested():
                session.add(
                    Effect(event_id="undone", lead_id=uuid.uuid4(), handled_at=datetime.now(UTC))
                )
                session.flush()
                raise RuntimeError("handler failed")

        with pytest.raises(RuntimeError, match="handler failed"):
            failing_handler()
    with database.read() as session:
        kept = session.execute(select(col(Effect.event_id))).scalars().all()
    assert kept == ["kept"]


def test_a_reader_does_not_wait_for_a_writer_in_the_middle_of_its_transaction(
    database: Database,
) -> None:
    """A busy consumer must not starve the dashboard (SQLite: WAL plus a deferred BEGIN)."""
    writing = threading.Event()
    reader_done = threading.Event()
    seen: list[int] = []

    def writer() -> None:
        with database.transaction() as session:
            session.add(Effect(event_id="w", lead_id=uuid.uuid4(), handled_at=datetime.now(UTC)))
            session.flush()
            writing.set()
            reader_done.wait(timeout=20)  # hold the write transaction open until the read is done

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(timeout=20)
        with database.read() as session:
            seen.append(session.execute(select(func.count()).select_from(Effect)).scalar_one())
        reader_done.set()
    finally:
        reader_done.set()
        thread.join(timeout=30)
    assert seen == [0]  # read the committed state, while the writer still held its transaction
    with database.read() as session:
        assert session.execute(select(func.count()).select_from(Effect)).scalar_one() == 1


def test_processed_events_key_is_consumer_and_event(database: Database) -> None:
    processed = TABLES.processed_events
    row = {
        "event_id": "same",
        "topic": "leads.ingested",
        "partition": 0,
        "offset": 1,
        "outcome": "processed",
        "processed_at": datetime.now(UTC),
    }
    with database.transaction() as session:
        session.execute(processed.insert().values(consumer="a", **row))
        session.execute(processed.insert().values(consumer="b", **row))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), database.transaction() as session:
        session.execute(processed.insert().values(consumer="a", **row))


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{tmp_path}/x.db")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def test_postgres_urls_people_write_get_our_driver() -> None:
    from shared.db import normalize_url

    assert normalize_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_revision_ids_count_up_per_service(tmp_path: Path) -> None:
    from shared.db.migrate import next_revision_id

    versions = tmp_path / "versions"
    versions.mkdir()
    assert next_revision_id(tmp_path, "scoring") == "scoring_0001"
    (versions / "a.py").write_text('revision: str = "scoring_0001"\n')
    (versions / "b.py").write_text("revision: str = 'scoring_0009'\n")
    (versions / "c.py").write_text('revision: str = "ingest_0042"\n')
    assert next_revision_id(tmp_path, "scoring") == "scoring_0010"


def test_an_autogenerated_migration_imports_and_builds_the_models(tmp_path: Path) -> None:
    """SQLModel strings and UtcDateTime columns render as code the migration can run."""
    from shared.db.migrate import autogenerate

    migrations = tmp_path / "migrations"
    (migrations / "versions").mkdir(parents=True)
    probe_migrations = Path(__file__).resolve().parent.parent / "testing/probe/migrations"
    (migrations / "script.py.mako").write_text((probe_migrations / "script.py.mako").read_text())
    (migrations / "env.py").write_text(
        "from sqlalchemy import Column, Integer, MetaData, Table\n"
        "from sqlmodel.sql.sqltypes import AutoString\n"
        "from shared.db.alembic_env import run\n"
        "from shared.db.types import UtcDateTime\n"
        "metadata = MetaData()\n"
        "Table('things', metadata, Column('id', Integer, primary_key=True),\n"
        "      Column('name', AutoString(length=40), nullable=False),\n"
        "      Column('seen_at', UtcDateTime(), nullable=True))\n"
        "run(metadata)\n"
    )
    path = autogenerate(migrations, "demo", "things", tmp_path / "scratch.db")
    assert path is not None
    text = path.read_text()
    assert "from shared.db.types import UtcDateTime" in text
    assert "sa.String(length=40)" in text
    database = Database(f"sqlite:///{tmp_path / 'built.db'}")
    try:
        upgrade(migrations, database)  # imports and runs the generated file
        namespace: dict[str, Any] = {}
        exec((migrations / "env.py").read_text().replace("run(metadata)\n", ""), namespace)
        assert drift(database, namespace["metadata"]) == []
    finally:
        database.dispose()
