"""``leadflow reporting ...``: the reporting service's own commands; and ``leadflow demo``,
which fills a running system with a realistic quarter so that the dashboard has a story."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from services.reporting.settings import ReportingSettings

# What `leadflow` merges: the `reporting` group and the top-level `demo` command.
cli = typer.Typer()
app = typer.Typer(
    name="reporting", help="The reporting service's read model.", no_args_is_help=True
)
cli.add_typer(app)


@app.callback()
def reporting() -> None:
    """The reporting service's read model."""


@app.command()
def rebuild() -> None:
    """Replay every leads.* topic from the start into an emptied read model."""
    from services.reporting.rebuild import rebuild as run_rebuild
    from shared.db import Database
    from shared.kafka.local_broker import run_coroutine_blocking
    from shared.topics import TopicNames

    settings = ReportingSettings()
    bootstrap = settings.platform.kafka_bootstrap_servers
    if not bootstrap:
        raise typer.BadParameter("set KAFKA_BOOTSTRAP_SERVERS to the cluster to replay from")
    database = Database(settings.database_url)
    try:
        report = run_coroutine_blocking(
            run_rebuild(
                db=database,
                bootstrap_servers=bootstrap,
                names=TopicNames(settings.platform.topic_namespace),
            )
        )
    finally:
        database.dispose()
    typer.echo(
        f"rebuilt {database!r}: {report.records} records read, {report.applied} applied, "
        f"{report.skipped} skipped"
    )


DEFAULT_PORTS = {"ingest": 8081, "scoring": 8082, "routing": 8083, "reporting": 8084}


def _default_url(service: str) -> str:
    port = os.environ.get(f"LEADFLOW_{service.upper()}_PORT", str(DEFAULT_PORTS[service]))
    return f"http://127.0.0.1:{port}"


def _create_api_key() -> str:
    """A key for ingest, made the way `leadflow apikey create` makes it: in ingest's database
    as this environment configures it (`make run`'s .data/ingest.db by default)."""
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "apikey", "create", "leadflow-demo"],
        capture_output=True,
        text=True,
        check=False,
    )
    key = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not key.startswith("lf_"):
        raise typer.BadParameter(
            "could not create an ingest API key here (run `leadflow apikey create demo` where "
            f"ingest's database is, and pass it): {done.stderr.strip()[-300:]}",
            param_hint="--api-key",
        )
    return key


@cli.command()
def demo(
    *,
    leads: Annotated[int, typer.Option(min=10, help="About how many leads")] = 3000,
    days: Annotated[int, typer.Option(min=7, max=366, help="The quarter: days up to now")] = 91,
    seed: Annotated[int, typer.Option(help="The same seed plans the same quarter")] = 2031,
    ingest_url: Annotated[str | None, typer.Option(help="Default: 127.0.0.1:8081")] = None,
    scoring_url: Annotated[str | None, typer.Option(help="Default: 127.0.0.1:8082")] = None,
    routing_url: Annotated[str | None, typer.Option(help="Default: 127.0.0.1:8083")] = None,
    reporting_url: Annotated[str | None, typer.Option(help="Default: 127.0.0.1:8084")] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="LEADFLOW_DEMO_API_KEY",
            help="Ingest's API key; default: one made with `leadflow apikey create`",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Leads sent at once")] = 4,
    wait_timeout: Annotated[float, typer.Option(help="Seconds to wait for the system")] = 900,
) -> None:
    """Fill a running system (`make run`) with a realistic quarter through its APIs.

    Teams, reps, territories, named accounts and nurture programs in routing; a tuned
    rulebook in scoring; leads from web forms, directories, a purchased list, an event, a
    webinar and partners spread over the last DAYS days, with sales feedback; campaign
    costs and quarterly targets in reporting. Run it once on a fresh system (`rm -rf
    .data` starts over).
    """
    import asyncio

    from services.reporting.demo.player import DemoError, Player, summary
    from services.reporting.demo.quarter import plan

    urls = {
        "ingest": ingest_url or _default_url("ingest"),
        "scoring": scoring_url or _default_url("scoring"),
        "routing": routing_url or _default_url("routing"),
        "reporting": reporting_url or _default_url("reporting"),
    }
    quarter = plan(leads=leads, end=datetime.now(UTC), days=days, seed=seed)
    typer.echo(
        f"Planned {len(quarter.leads)} leads from {quarter.start:%Y-%m-%d} to "
        f"{quarter.end:%Y-%m-%d} over {len(quarter.campaigns)} campaigns, "
        f"{quarter.feedback} pieces of sales feedback."
    )
    player = Player(
        quarter,
        urls=urls,
        api_key=api_key or _create_api_key(),
        concurrency=concurrency,
        echo=typer.echo,
    )
    try:
        result = asyncio.run(player.run(wait_timeout=wait_timeout))
    except DemoError as error:
        typer.echo(f"demo: {error}", err=True)
        raise typer.Exit(1) from None
    for line in summary(result, urls):
        typer.echo(line)
