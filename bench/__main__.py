"""``make bench``: run the benchmarks on the real broker and databases, print, record."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.results import record, table
from bench.runtime_roundtrip import roundtrip
from shared.kafka.provision import kafka_bootstrap
from shared.testing.postgres import LocalPostgres


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on LEADFLOW_TEST_POSTGRES_URL, or on a throwaway local cluster."""
    with contextlib.ExitStack() as stack:
        server = os.environ.get("LEADFLOW_TEST_POSTGRES_URL")
        if not server:
            server = stack.enter_context(LocalPostgres()).url
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with psycopg.connect(server, autocommit=True) as connection:
                connection.execute(
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000, help="records in the flood run")
    parser.add_argument("--paced-records", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=500.0, help="offered records/s, paced run")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with kafka_bootstrap() as kafka, tempfile.TemporaryDirectory() as scratch:
        print(kafka.describe())
        for backend in args.backends.split(","):
            for mode, records, rate in (
                ("flood", args.records, None),
                ("paced", args.paced_records, args.rate),
            ):
                with contextlib.ExitStack() as stack:
                    if backend == "sqlite":
                        url = f"sqlite:///{scratch}/{mode}.db"
                    else:
                        url = stack.enter_context(postgres_database())
                    figures = asyncio.run(
                        roundtrip(
                            bootstrap_servers=kafka.bootstrap_servers,
                            database_url=url,
                            records=records,
                            rate=rate,
                        )
                    )
                rows.append(
                    {"hop": "runtime round trip", "database": backend, "mode": mode, **figures}
                )
                print(table(rows[-1:], list(rows[-1])), flush=True)
    columns = [
        "database",
        "mode",
        "records",
        "offered_per_s",
        "records_per_s",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "payload_bytes",
    ]
    print()
    print(table(rows, columns))
    path = record("runtime_roundtrip", {"runs": rows})
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
