"""Ingest's commands in ``leadflow``: ``leadflow apikey ...`` and ``leadflow import FILE``."""

from __future__ import annotations

from datetime import UTC, datetime
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
