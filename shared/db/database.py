"""One engine per service database, and the single place that commits.

SQLite is the embedded default, PostgreSQL the production database. On SQLite a write
transaction starts with ``BEGIN IMMEDIATE``: writers queue on the busy timeout instead of
failing when a read transaction tries to upgrade to a write. Reads (:meth:`Database.read`)
start with a plain ``BEGIN``: in WAL mode they never wait for a writer, so a busy consumer
cannot starve the dashboard.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> URL:
    """Accept what people write (``postgres://``, ``postgresql://``) and pick our drivers."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("sqlite+aiosqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite")
    return parsed


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions start (SAVEPOINT needs it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


# A pooled connection used this recently is taken as it is, without asking the server
# (HikariCP's ``aliveBypassWindowMs``, 500 ms, is the same rule).
PING_AFTER_IDLE_S = 1.0

# How long a new PostgreSQL connection may take (libpq's ``connect_timeout``; a URL that
# names one keeps it). libpq's default is to wait for ever: a server that takes the TCP
# connection and never answers (hung, or behind a proxy whose backend is gone) would hold
# the thread that asked, and the readiness probe asks every few seconds.
CONNECT_TIMEOUT_S = 10
# A connection whose server went away without a word (its host lost power, a network
# partition, a failover that moved the address) is noticed by TCP only after its own
# timeouts, on Linux ~15 minutes for a statement in flight and over two hours for an idle
# connection (first keepalive after 7,200 s): meanwhile the statement's thread waits, and the
# pool hands the dead connection out again. With these (libpq's; a URL that names one keeps
# it), an idle connection is given up after ~60 s of unanswered keepalives, and one whose
# request the server does not acknowledge after 30 s.
TCP_LIVENESS = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms
}


# When the pool got the connection back (its record's info lives as long as the connection).
_RETURNED_AT = "leadflow.returned_at"


def _readable(dbapi_connection: Any) -> bool:
    """Something waits to be read on the connection's socket (poll: no fd limit)."""
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _configure_postgresql(engine: Engine, *, ping_after_idle_s: float) -> None:
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # No round trip at every checkout (``pool_pre_ping`` cost a fifth of the client's
        # CPU for a one-statement transaction, and services run several a lead). A
        # connection back in the pool only briefly is replaced only if the server has
        # spoken on it meanwhile: idle, it has nothing to read unless its backend said it
        # is terminating (a restart, an administrator) or hung up. One that waited longer
        # is pinged: something between may have dropped it without a word.
        if dbapi_connection.closed or dbapi_connection.broken or _readable(dbapi_connection):
            raise DisconnectionError("the server closed this connection while it was pooled")
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is not None and time.monotonic() - returned_at > ping_after_idle_s:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except engine.dialect.loaded_dbapi.Error as error:
                raise DisconnectionError(f"the pooled connection failed a ping: {error}") from error

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Plan each statement for its own parameters. psycopg prepares a statement on its
        # fifth run, and PostgreSQL then keeps a generic plan made for the tables as they were
        # then: a batch look-up (``= ANY(:ids)``) prepared while its table was nearly empty
        # kept scanning the whole table as it grew, until autovacuum's next ANALYZE (in the
        # end-to-end bench, PostgreSQL's CPU a lead went from 0.7 ms to 1.75-2.5 ms when it
        # did). A SET, not the ``options`` startup parameter, which PgBouncer refuses unless
        # told to ignore it.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_connection.commit()


class Database:
    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 10,
        ping_after_idle_s: float = PING_AFTER_IDLE_S,
        connect_timeout_s: int = CONNECT_TIMEOUT_S,
    ) -> None:
        self.url = normalize_url(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            }
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
            libpq = {"connect_timeout": connect_timeout_s, **TCP_LIVENESS}
            kwargs["connect_args"] = {
                name: value for name, value in libpq.items() if name not in self.url.query
            }
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        else:
            _configure_postgresql(self.engine, ping_after_idle_s=ping_after_idle_s)
        # Same pool; on SQLite its transactions begin DEFERRED (read-only use).
        self.reader: Engine = self.engine.execution_options(sqlite_begin="DEFERRED")

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.url.get_backend_name() == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only: never waits behind writers on SQLite."""
        with Session(self.reader, expire_on_commit=False) as session, session.begin():
            yield session

    def ping(self) -> None:
        with self.reader.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)})"
