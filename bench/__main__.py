"""``make bench``: run the benchmarks on the real broker and databases, print, record."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.profiling import Profiler
from bench.results import RESULTS, record, table
from bench.runtime_roundtrip import roundtrip
from shared.cloudevents import Event
from shared.kafka.provision import ProvisionedKafka, kafka_bootstrap
from shared.testing import factories
from shared.testing.postgres import LocalPostgres


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """LEADFLOW_TEST_POSTGRES_URL, or a throwaway local cluster."""
    explicit = os.environ.get("LEADFLOW_TEST_POSTGRES_URL")
    if explicit:
        yield explicit
        return
    with LocalPostgres() as server:
        yield server.url


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the server of :func:`postgres_server`."""
    with postgres_server() as server:
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


def run_runtime(kafka: ProvisionedKafka, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
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
                rows.append({"database": backend, "mode": mode, **figures})
                print(table(rows[-1:], list(rows[-1])), flush=True)
    record("runtime_roundtrip", {"runs": rows})
    return rows


PROFILES = Path(__file__).parent / "results" / "profiles"


def print_profiles(profiler: Profiler) -> None:
    print(f"\nwhere each service's CPU went in the paced run (py-spy; stacks in {PROFILES}):")
    for process, functions in profiler.report(top=12).items():
        print(f"\n{process}\n   own  with callees  function")
        for hot in functions:
            print(f"{hot.own:>6.1%}  {hot.total:>12.1%}  {hot.function}")


def run_pipeline(kafka: ProvisionedKafka, args: argparse.Namespace) -> dict[str, Any]:
    from bench.pipeline import (
        configure_routing,
        latency,
        raw_relay,
        reporting_rebuild,
        service_pids,
        throughput,
    )
    from tests.system import System

    sizes = tuple(
        len(Event(data=make(), source="/bench").value())
        for make in (factories.lead_ingested, factories.lead_scored, factories.lead_routed)
    )
    # A broker started for the bench spends its first minutes compiling its hot paths (the
    # JIT's compiler threads were its largest CPU use in the paced run that comes first);
    # one that has served traffic has done so. A raw relay, not recorded, warms it up; the
    # recorded one runs last, as before, on the warm broker.
    asyncio.run(raw_relay(kafka.bootstrap_servers, records=args.leads, sizes=sizes))  # type: ignore[arg-type]
    with postgres_server() as server, tempfile.TemporaryDirectory() as work:
        system = System(
            bootstrap_servers=kafka.bootstrap_servers,
            postgres_url=server,
            workdir=Path(work),
            fast=False,
        )
        with system:
            configure_routing(system)
            # Latency first, on an idle system: after the flood, reporting and delivery (not
            # on the way to leads.routed) still work off its backlog for minutes.
            profiler = Profiler(service_pids(system), PROFILES) if args.profile else None
            with profiler or contextlib.nullcontext():
                paced = asyncio.run(
                    latency(system, leads=args.latency_leads, rate=args.latency_rate)
                )
            paced["profiled"] = profiler is not None
            print(f"latency: {paced}", flush=True)
            if profiler is not None:
                print_profiles(profiler)
            flow = asyncio.run(throughput(system, leads=args.leads))
            print(f"throughput: {flow}", flush=True)
            rebuilt = asyncio.run(reporting_rebuild(system))
            print(f"reporting rebuild: {rebuilt}", flush=True)
    raw = asyncio.run(raw_relay(kafka.bootstrap_servers, records=args.leads, sizes=sizes))  # type: ignore[arg-type]
    print(f"raw relay: {raw}", flush=True)
    figures = {
        "throughput": flow,
        "latency": paced,
        "raw_relay": raw,
        "share_of_raw_relay": round(flow["routed_per_s"] / raw["records_per_s"], 3),
        "reporting_rebuild": rebuilt,
    }
    record("pipeline", figures)
    return figures


def run_routing(args: argparse.Namespace) -> list[dict[str, Any]]:
    from bench.routing import run

    rows = run(
        backends=args.backends.split(","),
        events=args.routing_events,
        repeat=args.repeat,
        batches=(("flood", 500), ("trickle", 20)),
    )
    record("routing", {"runs": rows})
    print()
    columns = ["database", "mode", "batch", "events", "runs", "events_per_s", "min", "max"]
    print(table(rows, [*columns, "ms_per_event", "cpu_ms_per_event"]))
    return rows


def run_scoring(kafka: ProvisionedKafka, args: argparse.Namespace) -> None:
    from bench.scoring import SUMMARY_COLUMNS, run

    figures = run(
        bootstrap_servers=kafka.bootstrap_servers,
        backends=args.backends.split(","),
        postgres_database=postgres_database,
        events=args.scoring_events,
        leads=args.rescore_leads,
        runs=args.scoring_runs,
    )
    print()
    print(table(figures["summary"], SUMMARY_COLUMNS))


def run_ingest(kafka: ProvisionedKafka, args: argparse.Namespace) -> list[dict[str, Any]]:
    from bench.ingest import measure

    rows: list[dict[str, Any]] = []
    sections = tuple(args.ingest_parts.split(","))
    with postgres_server() as server, tempfile.TemporaryDirectory() as work:
        for backend in args.backends.split(","):
            rows.append(
                measure(
                    bootstrap_servers=kafka.bootstrap_servers,
                    backend=backend,
                    postgres_url=server,
                    workdir=Path(work) / backend,
                    leads=args.ingest_leads,
                    rows=args.import_rows,
                    runs=args.runs,
                    sections=sections,
                    existing_leads=args.existing_leads,
                )
            )
    record("ingest", {"runs": rows})
    columns = [
        "database",
        "existing_leads",
        "leads",
        "accept_per_s",
        "published_per_s",
        "accept_runs",
    ]
    columns += ["single_per_s", "single_p50_ms", "single_p99_ms"]
    columns += ["rows", "import_rows_per_s", "import_runs"]
    print()
    print(table(rows, columns))
    return rows


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "sections",
        nargs="*",
        default=["runtime", "pipeline", "ingest", "scoring"],
        help="runtime, pipeline, ingest, routing, scoring (default: all but routing, which "
        "measures routing's consumer alone)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the bench")
    parser.add_argument("--records", type=int, default=20_000, help="runtime: flood records")
    parser.add_argument("--paced-records", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=500.0, help="runtime: offered records/s")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--leads", type=int, default=20_000, help="pipeline: leads in the flood")
    parser.add_argument("--latency-leads", type=int, default=3_000)
    parser.add_argument("--latency-rate", type=float, default=200.0, help="leads/s offered")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="pipeline: sample each service with py-spy during the paced run (needs ptrace; "
        "its figures then include py-spy's cost)",
    )
    parser.add_argument("--routing-events", type=int, default=5_000, help="routing: per run")
    parser.add_argument("--repeat", type=int, default=3, help="routing: runs, median reported")
    parser.add_argument("--scoring-events", type=int, default=20_000, help="scoring: consumer")
    parser.add_argument("--rescore-leads", type=int, default=100_000, help="scoring: activation")
    parser.add_argument("--scoring-runs", type=int, default=1, help="scoring: runs, medians")
    parser.add_argument("--ingest-leads", type=int, default=20_000, help="ingest: leads accepted")
    parser.add_argument("--import-rows", type=int, default=100_000, help="ingest: CSV rows")
    parser.add_argument(
        "--ingest-parts", default="accept,single,import", help="ingest: which parts"
    )
    parser.add_argument(
        "--existing-leads", type=int, default=0, help="ingest: leads in the table beforehand"
    )
    parser.add_argument("--runs", type=int, default=3, help="ingest: runs of each (median)")
    args = parser.parse_args()
    if args.quick:
        args.records, args.paced_records, args.leads, args.latency_leads = 2_000, 500, 1_000, 400
        args.routing_events, args.repeat = 1_000, 1
        args.scoring_events, args.rescore_leads = 2_000, 5_000
        args.ingest_leads, args.import_rows, args.runs = 2_000, 5_000, 1
    return args


def main() -> None:
    args = arguments()
    if "routing" in args.sections:
        run_routing(args)
    if not {"runtime", "pipeline", "scoring", "ingest"} & set(args.sections):
        print(f"\nwritten to {RESULTS}")
        return
    with kafka_bootstrap() as kafka:
        print(kafka.describe())
        if "runtime" in args.sections:
            rows = run_runtime(kafka, args)
            print()
            print(
                table(
                    rows,
                    [
                        "database",
                        "mode",
                        "records",
                        "offered_per_s",
                        "records_per_s",
                        "p50_ms",
                        "p95_ms",
                        "p99_ms",
                        "payload_bytes",
                    ],
                )
            )
        if "pipeline" in args.sections:
            figures = run_pipeline(kafka, args)
            print()
            flow, paced = figures["throughput"], figures["latency"]
            summary = {
                "flood_leads": flow["leads"],
                "accept_per_s": flow["accept_per_s"],
                "routed_per_s": flow["routed_per_s"],
                "raw_relay_per_s": figures["raw_relay"]["records_per_s"],
                "share_of_raw": figures["share_of_raw_relay"],
                "paced_leads": paced["leads"],
                "offered_per_s": paced["offered_per_s"],
                "accepted_per_s": paced["accepted_per_s"],
                "p50_ms": paced["p50_ms"],
                "p95_ms": paced["p95_ms"],
                "p99_ms": paced["p99_ms"],
                "paced_cpu_ms_per_lead": paced["cpu_ms_per_lead"]["machine"],
                "paced_machine_busy": paced["machine_busy"],
                "flood_cpu_ms_per_lead": flow["cpu_ms_per_lead"]["machine"],
            }
            print(table([summary], list(summary)))
            steps = [
                {"process": process, "step": step, **figures_ms}
                for process, by_step in paced["steps_ms"].items()
                for step, figures_ms in by_step.items()
            ]
            print("\nwhere the paced run's time went, by each service's metrics (ms):")
            print(table(steps, ["process", "step", "mean", "p50", "p99", "count"]))
        if "scoring" in args.sections:
            run_scoring(kafka, args)
        if "ingest" in args.sections:
            run_ingest(kafka, args)
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
