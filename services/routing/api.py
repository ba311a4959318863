"""The routing API (port 8083): configuration CRUD and CSV loads, out-of-office, the audit
log, the SLA policy, team queues and each lead's routing history.

Every write commits in the request's transaction together with its audit entry.
"""

import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlmodel import Session, col

from services.routing import repository, simulating
from services.routing.clock import Clock
from services.routing.config_store import (
    ENTITIES,
    Entity,
    Invalid,
    audit,
    delete,
    upsert,
    upsert_many,
)
from services.routing.csv_load import parse_rows
from services.routing.models import (
    AssignmentRow,
    ConfigChangeRow,
    RepAbsenceRow,
    RepRow,
    RoutedLeadRow,
    SlaPolicyRow,
)
from services.routing.schemas import (
    AbsenceIn,
    AbsenceOut,
    AssignmentOut,
    BulkResult,
    ConfigChange,
    FeedbackOut,
    LeadRouting,
    QueuedLead,
    SimulationIn,
    SlaPolicyIn,
)
from shared.http import DbSession, ReadSession, problem

Actor = Annotated[str, Header(alias="X-Actor", max_length=200, description="Who makes the change")]
CSV_BODY = {
    "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
}


def _invalid(error: Invalid) -> JSONResponse:
    return problem(error.status, error.field, error.message)


def _not_found(entity: str, key: str) -> JSONResponse:
    return problem(404, "path", f"no {entity} {key!r}")


def _out(entity: Entity, row: Any, session: Session, now: datetime) -> dict[str, Any]:
    data: dict[str, Any] = entity.out.model_validate(row).model_dump(mode="json")
    if entity.plural == "reps":
        absences = _absences(session, row.rep_id)
        data["out_of_office"] = any(
            a.starts_at <= now and (a.ends_at is None or now < a.ends_at) for a in absences
        )
    return data


def _absences(session: Session, rep_id: str) -> list[RepAbsenceRow]:
    query = (
        select(RepAbsenceRow)
        .where(col(RepAbsenceRow.rep_id) == rep_id)
        .order_by(col(RepAbsenceRow.starts_at))
    )
    return list(session.execute(query).scalars())


def _entity_routes(router: APIRouter, entity: Entity, clock: Clock) -> None:
    plural, body_type, key = entity.plural, entity.body, entity.key
    tag: list[str | Enum] = [plural]

    @router.get(f"/v1/{plural}", tags=tag, summary=f"List {plural}", name=f"list_{plural}")
    def list_all(session: ReadSession) -> list[dict[str, Any]]:
        rows = session.execute(select(entity.row).order_by(getattr(entity.row, key))).scalars()
        now = clock()
        return [_out(entity, row, session, now) for row in rows]

    @router.get(
        f"/v1/{plural}/{{key}}", tags=tag, summary=f"One {entity.name}", name=f"get_{entity.name}"
    )
    def get_one(key: str, session: ReadSession) -> Any:
        key = entity.normalize_key(key)
        row = session.get(entity.row, key)
        if row is None:
            return _not_found(entity.name, key)
        return _out(entity, row, session, clock())

    @router.post(
        f"/v1/{plural}",
        tags=tag,
        status_code=201,
        summary=f"Create a {entity.name}",
        name=f"create_{entity.name}",
    )
    def create(body: body_type, session: DbSession, actor: Actor = "api") -> Any:  # type: ignore[valid-type]
        try:
            row, _ = upsert(
                session, entity=entity, body=body, now=clock(), actor=actor, must_be_new=True
            )
        except Invalid as error:
            return _invalid(error)
        return _out(entity, row, session, clock())

    @router.put(
        f"/v1/{plural}/{{key}}",
        tags=tag,
        summary=f"Create or replace a {entity.name}",
        name=f"put_{entity.name}",
    )
    def put(
        key: str,
        body: body_type,  # type: ignore[valid-type]
        session: DbSession,
        response: Response,
        actor: Actor = "api",
    ) -> Any:
        key = entity.normalize_key(key)
        if getattr(body, entity.key) != key:
            return problem(422, f"body.{entity.key}", f"does not match the path ({key!r})")
        try:
            row, outcome = upsert(session, entity=entity, body=body, now=clock(), actor=actor)
        except Invalid as error:
            return _invalid(error)
        if outcome == "created":
            response.status_code = 201
        return _out(entity, row, session, clock())

    @router.delete(
        f"/v1/{plural}/{{key}}",
        tags=tag,
        status_code=204,
        summary=f"Delete a {entity.name}",
        name=f"delete_{entity.name}",
    )
    def remove(key: str, session: DbSession, actor: Actor = "api") -> Response:
        key = entity.normalize_key(key)
        try:
            found = delete(session, entity=entity, key=key, now=clock(), actor=actor)
        except Invalid as error:
            return _invalid(error)
        if not found:
            return _not_found(entity.name, key)
        return Response(status_code=204)

    @router.post(
        f"/v1/{plural}:bulk",
        tags=tag,
        summary=f"Create or update {plural} from a CSV document (all or nothing)",
        openapi_extra=CSV_BODY,
        name=f"bulk_{plural}",
    )
    def bulk(text: CsvText, session: DbSession, actor: Actor = "api") -> BulkResult:
        try:
            rows = parse_rows(text, body_type, key)
            counts = upsert_many(session, entity=entity, bodies=rows, now=clock(), actor=actor)
        except Invalid as error:
            # Raised, not returned: the request's transaction rolls back what was written.
            raise HTTPException(error.status, detail=[_detail(error)]) from None
        return BulkResult(**counts)


async def _csv_text(request: Request) -> str:
    try:
        return (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(
            422,
            detail=[
                {"loc": ["body"], "msg": "the CSV document must be UTF-8", "type": "value_error"}
            ],
        ) from None


CsvText = Annotated[str, Depends(_csv_text)]


def _detail(error: Invalid) -> dict[str, Any]:
    return {"loc": error.field.split("."), "msg": error.message, "type": "value_error"}


def build_router(clock: Clock) -> APIRouter:
    router = APIRouter()
    for entity in ENTITIES.values():
        _entity_routes(router, entity, clock)
    _absence_routes(router, clock)
    _other_routes(router, clock)
    return router


def _absence_routes(router: APIRouter, clock: Clock) -> None:
    tag: list[str | Enum] = ["out of office"]

    @router.get("/v1/reps/{rep_id}/out-of-office", tags=tag, summary="A rep's absences")
    def absences(rep_id: str, session: ReadSession) -> Any:
        if session.get(RepRow, rep_id) is None:
            return _not_found("rep", rep_id)
        return [AbsenceOut.model_validate(a) for a in _absences(session, rep_id)]

    @router.post(
        "/v1/reps/{rep_id}/out-of-office",
        tags=tag,
        status_code=201,
        summary="Out of office on: now (or from starts_at) until switched off (or ends_at)",
    )
    def out_of_office_on(
        rep_id: str,
        session: DbSession,
        body: Annotated[AbsenceIn, Body()] = AbsenceIn(),  # noqa: B008
        actor: Actor = "api",
    ) -> Any:
        if session.get(RepRow, rep_id) is None:
            return _not_found("rep", rep_id)
        now = clock()
        starts_at = body.starts_at or now
        if body.ends_at is not None and body.ends_at <= starts_at:
            return problem(422, "body.ends_at", "must be after starts_at")
        absence = RepAbsenceRow(
            rep_id=rep_id, starts_at=starts_at, ends_at=body.ends_at, note=body.note, created_at=now
        )
        session.add(absence)
        session.flush()
        out = AbsenceOut.model_validate(absence)
        audit(
            session,
            now=now,
            actor=actor,
            entity="rep",
            entity_id=rep_id,
            action="out_of_office_on",
            before=None,
            after=out.model_dump(mode="json"),
        )
        return out

    @router.delete(
        "/v1/reps/{rep_id}/out-of-office",
        tags=tag,
        summary="Out of office off: ends the absences running now (future ones stay)",
    )
    def out_of_office_off(rep_id: str, session: DbSession, actor: Actor = "api") -> Any:
        if session.get(RepRow, rep_id) is None:
            return _not_found("rep", rep_id)
        now = clock()
        ended = []
        for absence in _absences(session, rep_id):
            if absence.starts_at <= now and (absence.ends_at is None or now < absence.ends_at):
                before = AbsenceOut.model_validate(absence).model_dump(mode="json")
                absence.ends_at = now
                after = AbsenceOut.model_validate(absence)
                ended.append(after)
                audit(
                    session,
                    now=now,
                    actor=actor,
                    entity="rep",
                    entity_id=rep_id,
                    action="out_of_office_off",
                    before=before,
                    after=after.model_dump(mode="json"),
                )
        if not ended:
            return problem(409, "rep_id", f"rep {rep_id!r} is not out of office now")
        return ended


def _other_routes(router: APIRouter, clock: Clock) -> None:
    @router.get("/v1/audit", tags=["audit"], summary="Configuration changes, newest first")
    def audit_log(
        session: ReadSession,
        entity: str | None = None,
        entity_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[ConfigChange]:
        query = select(ConfigChangeRow).order_by(col(ConfigChangeRow.id).desc()).limit(limit)
        if entity:
            query = query.where(col(ConfigChangeRow.entity) == entity)
        if entity_id:
            query = query.where(col(ConfigChangeRow.entity_id) == entity_id)
        return [ConfigChange.model_validate(row) for row in session.execute(query).scalars()]

    @router.get("/v1/sla-policy", tags=["sla"], summary="The follow-up SLA policy")
    def get_policy(session: ReadSession) -> SlaPolicyIn:
        return _policy_out(session)

    @router.put("/v1/sla-policy", tags=["sla"], summary="Change the follow-up SLA policy")
    def put_policy(body: SlaPolicyIn, session: DbSession, actor: Actor = "api") -> SlaPolicyIn:
        now = clock()
        before = _policy_out(session).model_dump(mode="json")
        row = session.get(SlaPolicyRow, 1) or SlaPolicyRow(id=1, updated_at=now)
        row.follow_up_hours = {str(grade): hours for grade, hours in body.follow_up_hours.items()}
        row.warning_fraction = body.warning_fraction
        row.max_reassignments = body.max_reassignments
        row.updated_at = now
        session.add(row)
        audit(
            session,
            now=now,
            actor=actor,
            entity="sla_policy",
            entity_id="sla_policy",
            action="update",
            before=before,
            after=body.model_dump(mode="json"),
        )
        return body

    @router.post(
        "/v1/routing:simulate",
        tags=["simulation"],
        summary="Where the latest scored leads would go under a proposed configuration",
    )
    def simulate_routing(body: SimulationIn, request: Request, session: ReadSession) -> Any:
        settings = request.app.state.runtime.settings
        limit = getattr(settings, "simulate_max_leads", 5_000)
        try:
            return simulating.run(session, body=body, now=clock(), max_leads=limit)
        except Invalid as error:
            return _invalid(error)

    @router.get("/v1/teams/{team_id}/queue", tags=["teams"], summary="Leads waiting for the team")
    def queue(team_id: str, session: ReadSession) -> list[QueuedLead]:
        query = (
            select(AssignmentRow)
            .where(col(AssignmentRow.team_id) == team_id, col(AssignmentRow.state) == "queued")
            .order_by(col(AssignmentRow.routed_at))
        )
        return [
            QueuedLead(
                lead_id=row.lead_id,
                assignment_id=row.id,
                grade=row.grade,
                rule=row.rule,
                explanation=row.explanation,
                queued_at=row.routed_at,
            )
            for row in session.execute(query).scalars()
        ]

    @router.get(
        "/v1/leads/{lead_id}/routing",
        tags=["leads"],
        summary="A lead's assignments, with the rule, explanation, skipped reps, SLA and feedback",
    )
    def lead_routing(lead_id: uuid.UUID, session: ReadSession) -> Any:
        lead = session.get(RoutedLeadRow, lead_id)
        feedback = repository.lead_feedback(session, lead_id=lead_id)
        if lead is None:
            if feedback:
                return problem(
                    404,
                    "path.lead_id",
                    "not routed yet; feedback about it is kept",
                    feedback=[
                        FeedbackOut.model_validate(f).model_dump(mode="json") for f in feedback
                    ],
                )
            return problem(404, "path.lead_id", f"routing has no lead {lead_id}")
        return LeadRouting(
            lead_id=lead.lead_id,
            grade=lead.grade,
            previous_grade=lead.previous_grade,
            state=lead.state,
            recycled=lead.recycled,
            scored_at=lead.scored_at,
            current_assignment_id=lead.current_assignment_id,
            assignments=[
                AssignmentOut.model_validate(a)
                for a in repository.lead_assignments(session, lead_id=lead_id)
            ],
            feedback=[FeedbackOut.model_validate(f) for f in feedback],
        )


def _policy_out(session: Session) -> SlaPolicyIn:
    policy = repository.load_policy(session)
    return SlaPolicyIn(
        follow_up_hours={
            grade: amount.total_seconds() / 3600 for grade, amount in policy.follow_up.items()
        },
        warning_fraction=policy.warning_fraction,
        max_reassignments=policy.max_reassignments,
    )
