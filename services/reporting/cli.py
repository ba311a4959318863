"""``leadflow reporting ...``: the reporting service's own commands."""

from __future__ import annotations

import typer

from services.reporting.settings import ReportingSettings

app = typer.Typer(
    name="reporting", help="The reporting service's read model.", no_args_is_help=True
)


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
