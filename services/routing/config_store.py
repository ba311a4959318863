"""Changing the configuration: validation of references, upserts, deletes, the audit log.

Every change writes a row to ``config_changes`` with its actor and what the entity was
before and after, in the same transaction as the change itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import Session, col

from services.routing.domain.model import normalize_domain
from services.routing.models import (
    ConfigChangeRow,
    NamedAccountRow,
    NurtureProgramRow,
    RepRow,
    TeamRow,
    TerritoryRow,
)
from services.routing.schemas import (
    AccountIn,
    AccountOut,
    ProgramIn,
    ProgramOut,
    RepIn,
    RepOut,
    TeamIn,
    TeamOut,
    TerritoryIn,
    TerritoryOut,
)


class Invalid(Exception):
    """A reference or rule the schema cannot check: answered as a 4xx naming the field."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Entity:
    name: str  # singular, as in the audit log
    plural: str  # as in the URL
    row: type[Any]
    key: str
    body: type[BaseModel]
    out: type[BaseModel]
    # Checks of references to other entities: (session, body) -> raises Invalid.
    check: Callable[[Session, Any], None]
    # Who still refers to an entity about to be deleted: (session, id) -> message or None.
    in_use: Callable[[Session, str], str | None]
    # How an id in a path is written in the table (domains: lower case, no www.).
    normalize_key: Callable[[str], str] = str


def _exists(session: Session, row: type[Any], key: str) -> bool:
    return session.get(row, key) is not None


def _check_team(session: Session, body: TeamIn) -> None:
    for index, territory_id in enumerate(body.territory_ids):
        if not _exists(session, TerritoryRow, territory_id):
            raise Invalid(422, f"body.territory_ids.{index}", f"no territory {territory_id!r}")


def _check_rep(session: Session, body: RepIn) -> None:
    if not _exists(session, TeamRow, body.team_id):
        raise Invalid(422, "body.team_id", f"no team {body.team_id!r}")


def _check_account(session: Session, body: AccountIn) -> None:
    if not _exists(session, RepRow, body.rep_id):
        raise Invalid(422, "body.rep_id", f"no rep {body.rep_id!r}")


def _no_check(session: Session, body: Any) -> None:
    return None


def _team_in_use(session: Session, team_id: str) -> str | None:
    reps = list(
        session.execute(select(col(RepRow.rep_id)).where(col(RepRow.team_id) == team_id)).scalars()
    )
    return f"team {team_id} still has reps: {', '.join(sorted(reps))}" if reps else None


def _territory_in_use(session: Session, territory_id: str) -> str | None:
    teams = [
        team.team_id
        for team in session.execute(select(TeamRow)).scalars()
        if territory_id in team.territory_ids
    ]
    return (
        f"territory {territory_id} is covered by teams: {', '.join(sorted(teams))}"
        if teams
        else None
    )


def _rep_in_use(session: Session, rep_id: str) -> str | None:
    domains = list(
        session.execute(
            select(col(NamedAccountRow.domain)).where(col(NamedAccountRow.rep_id) == rep_id)
        ).scalars()
    )
    return f"rep {rep_id} owns named accounts: {', '.join(sorted(domains))}" if domains else None


def _nothing_in_use(session: Session, key: str) -> str | None:
    return None


ENTITIES: dict[str, Entity] = {
    entity.plural: entity
    for entity in (
        Entity(
            "territory",
            "territories",
            TerritoryRow,
            "territory_id",
            TerritoryIn,
            TerritoryOut,
            _no_check,
            _territory_in_use,
        ),
        Entity("team", "teams", TeamRow, "team_id", TeamIn, TeamOut, _check_team, _team_in_use),
        Entity("rep", "reps", RepRow, "rep_id", RepIn, RepOut, _check_rep, _rep_in_use),
        Entity(
            "account",
            "accounts",
            NamedAccountRow,
            "domain",
            AccountIn,
            AccountOut,
            _check_account,
            _nothing_in_use,
            normalize_key=lambda domain: normalize_domain(domain) or domain,
        ),
        Entity(
            "program",
            "programs",
            NurtureProgramRow,
            "program_id",
            ProgramIn,
            ProgramOut,
            _no_check,
            _nothing_in_use,
        ),
    )
}


def snapshot(entity: Entity, row: Any) -> dict[str, Any]:
    """The entity as the audit log keeps it: its input fields, as JSON."""
    data = {name: getattr(row, name) for name in entity.body.model_fields}
    return entity.body.model_validate(data).model_dump(mode="json")


def audit(
    session: Session,
    *,
    now: datetime,
    actor: str,
    entity: str,
    entity_id: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    via: str = "api",
) -> None:
    session.add(
        ConfigChangeRow(
            changed_at=now,
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            action=action,
            via=via,
            before=before,
            after=after,
        )
    )


def upsert(
    session: Session,
    *,
    entity: Entity,
    body: BaseModel,
    now: datetime,
    actor: str,
    via: str = "api",
    must_be_new: bool = False,
) -> tuple[Any, str]:
    """Create or replace one entity; answers the row and created | updated | unchanged."""
    entity.check(session, body)
    key = getattr(body, entity.key)
    row = session.get(entity.row, key)
    values = body.model_dump(mode="json")
    if row is None:
        row = entity.row(**values, created_at=now, updated_at=now)
        session.add(row)
        session.flush()
        audit(
            session,
            now=now,
            actor=actor,
            entity=entity.name,
            entity_id=key,
            action="create",
            before=None,
            after=snapshot(entity, row),
            via=via,
        )
        return row, "created"
    if must_be_new:
        raise Invalid(409, f"body.{entity.key}", f"{entity.name} {key!r} exists already")
    before = snapshot(entity, row)
    for name, value in values.items():
        setattr(row, name, value)
    after = snapshot(entity, row)
    if after == before:
        return row, "unchanged"
    row.updated_at = now
    audit(
        session,
        now=now,
        actor=actor,
        entity=entity.name,
        entity_id=key,
        action="update",
        before=before,
        after=after,
        via=via,
    )
    return row, "updated"


def delete(session: Session, *, entity: Entity, key: str, now: datetime, actor: str) -> bool:
    row = session.get(entity.row, key)
    if row is None:
        return False
    reason = entity.in_use(session, key)
    if reason:
        raise Invalid(409, entity.key, reason)
    audit(
        session,
        now=now,
        actor=actor,
        entity=entity.name,
        entity_id=key,
        action="delete",
        before=snapshot(entity, row),
        after=None,
    )
    session.delete(row)
    return True


def upsert_many(
    session: Session,
    *,
    entity: Entity,
    bodies: Sequence[tuple[int, BaseModel]],
    now: datetime,
    actor: str,
) -> dict[str, int]:
    """Rows of a CSV load, in order (each with its line number); all or nothing."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for line, body in bodies:
        try:
            _, outcome = upsert(session, entity=entity, body=body, now=now, actor=actor, via="csv")
        except Invalid as error:
            field = error.field.removeprefix("body.")
            raise Invalid(error.status, f"body.line.{line}.{field}", error.message) from None
        counts[outcome] += 1
    return counts
