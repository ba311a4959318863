"""The database layer on SQLite and PostgreSQL, built by the real migrations."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import URL, func, inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from shared.db import Database
from shared.db.clauses import among, among_parameter
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


def test_a_server_that_takes_the_connection_and_never_answers_is_given_up_on() -> None:
    with socket.create_server(("127.0.0.1", 0)) as hung:
        url = f"postgresql://leadflow@127.0.0.1:{hung.getsockname()[1]}/leadflow"
        database = Database(url, connect_timeout_s=1)
        with pytest.raises(OperationalError, match="timeout"):
            database.ping()
        # A timeout the URL names is the one used.
        named = Database(f"{url}?connect_timeout=1", connect_timeout_s=600)
        with pytest.raises(OperationalError, match="timeout"):
            named.ping()


def _tcp_options(database: Database) -> dict[str, int]:
    """The TCP options the kernel holds for a pooled connection's socket."""
    with database.engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        # A duplicate of libpq's descriptor, closed here; libpq's own stays open.
        with socket.fromfd(driver.fileno(), socket.AF_INET, socket.SOCK_STREAM) as tcp:
            return {
                "keepalive": tcp.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                "idle": tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                "interval": tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                "count": tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                "user_timeout_ms": tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
            }


def test_a_postgresql_connection_gives_up_on_a_server_gone_without_a_word(
    database: Database,
) -> None:
    if not database.is_postgresql:
        pytest.skip("SQLite has no server to lose")
    if database.url.host in (None, "") or str(database.url.host).startswith("/"):
        pytest.skip("a Unix socket has no TCP timeouts")

    assert _tcp_options(database) == {
        "keepalive": 1,
        "idle": 30,
        "interval": 10,
        "count": 3,
        "user_timeout_ms": 30_000,
    }
    # An option the URL names is the one used.
    named = Database(
        database.url.update_query_dict({"keepalives_idle": "7"}).render_as_string(
            hide_password=False
        )
    )
    try:
        options = _tcp_options(named)
        assert options["idle"] == 7
        assert options["user_timeout_ms"] == 30_000
    finally:
        named.dispose()


def test_revision_ids_count_up_per_service(tmp_path: Path) -> None:
    from shared.db.migrate import next_revision_id

    versions = tmp_path / "versions"
    versions.mkdir()
    assert next_revision_id(tmp_path, "scoring") == "scoring_0001"
    (versions / "a.py").write_text('revision: str = "scoring_0001"\n')
    (versions / "b.py").write_text("revision: str = 'scoring_0009'\n")
    (versions / "c.py").write_text('revision: str = "ingest_0042"\n')
    assert next_revision_id(tmp_path, "scoring") == "scoring_0010"


MODELS = """
import uuid
from datetime import datetime

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.db import RuntimeTables
from shared.db.types import UtcDateTime


class Base(SQLModel, registry=registry()):
    pass


class Thing(Base, table=True):
    __tablename__ = "things"
    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(max_length=120, index=True)
    note: str | None = None
    seen_at: datetime = Field(sa_type=UtcDateTime)


metadata = Base.metadata
TABLES = RuntimeTables.define(metadata)
"""


def test_autogenerated_migrations_import_what_they_use_and_apply_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`leadflow revision` writes a migration that runs and builds exactly the models."""
    import importlib

    from shared.db.migrate import autogenerate
    from shared.testing.probe.service import DEFINITION

    package = tmp_path / "autogen_models.py"
    package.write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    migrations = tmp_path / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (migrations / "script.py.mako").write_text(
        (DEFINITION.migrations_dir / "script.py.mako").read_text()
    )
    (migrations / "env.py").write_text(
        "from autogen_models import metadata\n"
        "from shared.db.alembic_env import run\n\nrun(metadata)\n"
    )
    written = autogenerate(migrations, "autogen", "things", tmp_path / "scratch.db")
    assert written is not None
    source = written.read_text()
    assert "from shared.db.types import UtcDateTime" in source
    assert "AutoString" not in source
    assert 'revision: str = "autogen_0001"' in source

    database = Database(f"sqlite:///{tmp_path}/fresh.db")
    upgrade(migrations, database)
    models = importlib.import_module("autogen_models")
    assert drift(database, models.metadata) == []
    database.dispose()


def effects_of_leads(database: Database, count: int) -> list[uuid.UUID]:
    """An effect each for ``count`` new leads; their ids."""
    leads = [uuid.uuid4() for _ in range(count)]
    now = datetime.now(UTC)
    with database.transaction() as session:
        session.add_all(
            Effect(event_id=str(n), lead_id=lead, handled_at=now) for n, lead in enumerate(leads)
        )
    return leads


def test_among_finds_the_rows_in_a_list_with_one_statement_text_for_any_count(
    database: Database,
) -> None:
    leads = effects_of_leads(database, 300)
    lead_id = metadata.tables["effects"].c.lead_id
    texts = set()
    with database.read() as session:
        for wanted in (leads[:3], leads[100:250], [*leads[:1], uuid.uuid4()]):
            statement = select(lead_id).where(among(session, lead_id, wanted))
            assert set(session.execute(statement).scalars()) == set(wanted) & set(leads)
            texts.add(str(statement.compile(session.get_bind())))
    if database.is_postgresql:
        # The ids go as one array: the same text whatever their count, parsed once.
        assert len(texts) == 1
        assert "= ANY" in texts.pop()


def test_among_parameter_takes_the_list_at_each_execution_of_a_statement_built_once(
    database: Database,
) -> None:
    leads = effects_of_leads(database, 300)
    lead_id = metadata.tables["effects"].c.lead_id
    dialect = database.engine.dialect.name
    statement = select(lead_id).where(among_parameter(dialect, lead_id, "wanted"))
    with database.read() as session:
        for wanted in (leads[:3], leads[100:250], [*leads[:1], uuid.uuid4()], []):
            found = session.execute(statement, {"wanted": wanted}).scalars()
            assert set(found) == set(wanted) & set(leads)


def test_a_look_up_run_often_while_its_table_was_empty_is_planned_for_its_ids_when_it_has_grown(
    database: Database,
) -> None:
    """psycopg prepares a statement on its fifth run, and PostgreSQL then keeps a generic
    plan: made for an empty table, it compared every row with every id of the batch (a
    parameter it cannot hash) until the next ANALYZE. Planned for the ids, they are hashed or
    looked up in the index."""
    if not database.is_postgresql:
        pytest.skip("plan caching is PostgreSQL's")
    effects = metadata.tables["effects"]
    wanted = "{" + ",".join(str(n) for n in range(0, 20_000, 100)) + "}"
    with database.engine.connect() as connection:
        connection.exec_driver_sql(
            "PREPARE look_up(text[]) AS SELECT id FROM effects WHERE event_id = ANY($1)"
        )
        for _ in range(6):  # past PostgreSQL's five custom plans: the generic one is chosen
            connection.exec_driver_sql(f"EXECUTE look_up('{wanted}')").all()
        now = datetime.now(UTC)
        rows = [
            {"event_id": str(n), "lead_id": uuid.uuid4(), "handled_at": now} for n in range(20_000)
        ]
        connection.execute(effects.insert(), rows)
        plan = "\n".join(
            row[0] for row in connection.exec_driver_sql(f"EXPLAIN EXECUTE look_up('{wanted}')")
        )
        assert len(connection.exec_driver_sql(f"EXECUTE look_up('{wanted}')").all()) == 200
    assert "ANY ($1)" not in plan, plan
    assert "ANY ('{0,100,200," in plan, plan


def backend_pid(database: Database) -> int:
    with database.transaction() as session:
        pid: int = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid


@contextmanager
def pooled_once(url: URL, *, ping_after_idle_s: float) -> Iterator[tuple[Database, int]]:
    """A PostgreSQL database of one pooled connection, used once: the backend's pid."""
    database = Database(
        url.render_as_string(hide_password=False), pool_size=1, ping_after_idle_s=ping_after_idle_s
    )
    try:
        yield database, backend_pid(database)
    finally:
        database.dispose()


def test_a_pooled_connection_whose_backend_ended_is_replaced_before_anyone_uses_it(
    database: Database,
) -> None:
    """Taken from the pool at once, without the ping an idle connection gets: the backend's
    goodbye (or its hang-up) waits on the socket, and the pool connects again."""
    if not database.is_postgresql:
        pytest.skip("a PostgreSQL backend ended from another session")
    with pooled_once(database.url, ping_after_idle_s=3600) as (pooled, pid):
        with database.transaction() as session:
            assert session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # pg_terminate_backend only signals it
            with database.transaction() as session:
                query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
                if session.execute(query, {"pid": pid}).scalar_one() == 0:
                    break
            time.sleep(0.02)
        assert backend_pid(pooled) != pid


def test_a_connection_is_pinged_when_it_waited_in_the_pool_longer_than_the_window(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database.is_postgresql:
        pytest.skip("SQLite's connections are files")
    with pooled_once(database.url, ping_after_idle_s=0.3) as (pooled, pid):
        pings: list[int] = []
        ping = pooled.engine.dialect.do_ping

        def counted(dbapi_connection: Any) -> bool:
            pings.append(dbapi_connection.info.backend_pid)
            return ping(dbapi_connection)

        monkeypatch.setattr(pooled.engine.dialect, "do_ping", counted)
        assert backend_pid(pooled) == pid
        assert pings == []  # back in the pool a moment ago
        time.sleep(0.4)
        assert backend_pid(pooled) == pid
        assert pings == [pid]

        def fails(dbapi_connection: Any) -> bool:
            pings.append(dbapi_connection.info.backend_pid)
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(pooled.engine.dialect, "do_ping", fails)
        time.sleep(0.4)
        assert backend_pid(pooled) != pid  # a new connection, not pinged: it has just been made
        assert pings == [pid, pid]
