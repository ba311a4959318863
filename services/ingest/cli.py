"""Ingest's commands in ``leadflow``: ``leadflow apikey ...`` and ``leadflow import FILE``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from services.ingest import repository
from services.ingest.auth import create_key
from services.ingest.settings import IngestSettings
from shared.db import Database

cli = typer.Typer(no_args_is_help=True)
apikey = typer.Typer(help="API keys of ingest's JSON and import doors.", no_args_is_help=True)
cli.add_typer(apikey, name="apikey")


def _database() -> Database:
    return Database(IngestSettings().database_url)


@apikey.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="Who uses it, e.g. 'website' or 'partner-x'")],
) -> None:
    """Create a key. It is printed once; only its hash is stored."""
    database = _database()
    try:
        with database.transaction() as session:
            key = create_key(session, name=name)
    finally:
        database.dispose()
    typer.echo(key)


@apikey.command("list")
def apikey_list() -> None:
    """The keys: id, name, created, revoked."""
    database = _database()
    try:
        with database.read() as session:
            for key in repository.api_keys(session=session):
                revoked = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                typer.echo(f"{key.id}\t{key.name}\t{key.created_at:%Y-%m-%d}\t{revoked}")
    finally:
        database.dispose()


@apikey.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="The id from `apikey list`")]) -> None:
    """Revoke a key: requests with it are refused from now on."""
    database = _database()
    try:
        with database.transaction() as session:
            key = repository.api_key(session=session, key_id=key_id)
            if key is None:
                raise typer.BadParameter(f"no key {key_id!r}")
            key.revoked_at = datetime.now(UTC)
    finally:
        database.dispose()
    typer.echo(f"revoked {key_id}")


@cli.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The CSV file")],
    source: Annotated[str, typer.Option(help="directory, purchased_list, event ...")] = "import",
    campaign: Annotated[str | None, typer.Option(help="Campaign of every row")] = None,
    touchpoint_type: Annotated[
        str, typer.Option("--type", help="Touchpoint type of every row")
    ] = "list_import",
    show: Annotated[int, typer.Option(help="How many row issues to print")] = 20,
) -> None:
    """Import a CSV file into ingest's database, with a progress bar and a report.

    The events go out through the outbox: the running ingest service publishes them.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from services.ingest.domain.csvfile import UnreadableFile
    from services.ingest.imports import ImportFiles, create_import, process_chunk, report
    from services.ingest.models import TABLES
    from shared.outbox import Outbox

    settings = IngestSettings()
    database = Database(settings.database_url)
    outbox = Outbox(TABLES, source="/leadflow/ingest")
    files = ImportFiles.for_worker(settings)
    try:
        with database.transaction() as session:
            try:
                job = create_import(
                    session,
                    data=path.read_bytes(),
                    filename=path.name,
                    source=source,
                    campaign=campaign,
                    touchpoint_type=touchpoint_type,
                )
            except UnreadableFile as error:
                raise typer.BadParameter(str(error), param_hint="FILE") from None
            import_id, total = job.id, job.total_rows or 0
        typer.echo(f"import {import_id}: {total} rows ({job.encoding}, {job.delimiter!r})")
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        ) as progress:
            task = progress.add_task(path.name, total=total)
            finished = False
            while not finished:
                with database.transaction() as session:
                    finished = process_chunk(
                        session, outbox, import_id=import_id, settings=settings, files=files
                    )
                    done = repository.import_(session=session, import_id=import_id)
                    progress.update(task, completed=done.processed_rows if done else total)
        with database.read() as session:
            finished_job = repository.import_(session=session, import_id=import_id)
            assert finished_job is not None
            summary = report(session, finished_job, limit=show)
    finally:
        files.close()
        database.dispose()
    typer.echo(
        f"created {summary.created}, merged {summary.merged}, rejected {summary.rejected}, "
        f"warnings {summary.warnings}"
    )
    for issue in summary.issues:
        typer.echo(f"  row {issue.row}: {issue.field}: {issue.reason} ({issue.severity})")
