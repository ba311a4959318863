"""``leadflow rulebook``: check a rulebook before posting it; start from the default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.scoring.domain.document import MediaType, RulebookInvalid, parse_source
from services.scoring.rulebooks import default_source

cli = typer.Typer(
    name="rulebook",
    help="Scoring rulebooks: validate one before you post it, or start from the default.",
    no_args_is_help=True,
)


@cli.command()
def validate(
    path: Annotated[Path, typer.Argument(help="A rulebook file: YAML, or JSON if it ends .json")],
) -> None:
    """Check a rulebook file; print each problem with the path of the bad part."""
    media: MediaType = "json" if path.suffix.lower() == ".json" else "yaml"
    try:
        document = parse_source(path.read_bytes(), media)
    except OSError as error:
        typer.echo(f"{path}: cannot read: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    except RulebookInvalid as invalid:
        for problem in invalid.problems:
            typer.echo(f"{path}: {problem.where}: {problem.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{path}: rulebook {document.name!r} is valid: "
        f"{len(document.fit.rules)} fit rules, {len(document.engagement.rules)} engagement "
        f"rules, categories {', '.join(document.category_ids)}"
    )


@cli.command()
def default() -> None:
    """Print the default rulebook that ships with the service."""
    typer.echo(default_source(), nl=False)
