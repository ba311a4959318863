"""The probe service: a consumer of ``leads.ingested`` and one HTTP route that emits."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict

from shared.contracts import LeadIngestedV1, LeadScoredV1
from shared.http import DbSession, RequestOutbox
from shared.kafka.consumer import HandlerContext, Handlers
from shared.observability.logs import get_logger
from shared.service import ConsumerSpec, ServiceDefinition
from shared.settings import ServiceSettings
from shared.testing.factories import lead_ingested
from shared.testing.probe.models import TABLES, Effect, metadata


class ProbeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_PROBE_", extra="ignore")
    service_name: str = "probe"
    port: int = 8089


log = get_logger(__name__)
handlers = Handlers()
# How many times each event id was attempted, to script flaky handlers.
attempts: Counter[str] = Counter()


@handlers.on(LeadIngestedV1)
def record_effect(context: HandlerContext, payload: LeadIngestedV1) -> None:
    """Behaviour scripted by the ``probe`` attribute of the lead, comma-separated actions:

    ``poison`` always raises; ``flaky:N`` raises on the first N attempts; ``slow:MS`` sleeps
    that long first; ``emit`` publishes a LeadScored through the outbox; ``unique:K`` gives
    the effect a key that must be unique (a second one fails only when the transaction is
    flushed, as a constraint a handler cannot see coming would).
    """
    attempts[context.event.id] += 1
    script = str(payload.lead.attributes.get("probe") or "")
    # "slow:5,emit" -> {"slow": "5", "emit": ""}
    actions = {key: value for key, _, value in (part.partition(":") for part in script.split(","))}
    if "slow" in actions:
        time.sleep(int(actions["slow"]) / 1000)
    if "poison" in actions:
        raise ValueError("the probe was told to fail")
    if "flaky" in actions and attempts[context.event.id] <= int(actions["flaky"]):
        raise RuntimeError(f"flaky attempt {attempts[context.event.id]}")
    log.info("probe effect recorded", script=script or None)
    context.session.add(
        Effect(
            event_id=context.event.id,
            lead_id=payload.lead_id,
            note=script or None,
            unique_key=actions.get("unique") or None,
            handled_at=datetime.now(UTC),
        )
    )
    if "emit" in actions:
        context.emit(
            LeadScoredV1(
                lead_id=payload.lead_id,
                grade="A",
                fit_score=80,
                engagement_score=30,
                rulebook_version=1,
                trigger="touchpoint",
                lead=payload.lead,
                scored_at=datetime.now(UTC),
            )
        )


router = APIRouter()


class ProbeRequest(BaseModel):
    note: str


@router.post("/v1/probe", status_code=202)
def create_probe(body: ProbeRequest, session: DbSession, outbox: RequestOutbox) -> dict[str, str]:
    lead_id = uuid.uuid4()
    event = outbox.add(session, lead_ingested(lead_id=lead_id, probe=body.note))
    session.add(
        Effect(event_id=event.id, lead_id=lead_id, note=body.note, handled_at=datetime.now(UTC))
    )
    if body.note == "fail-after-write":
        raise RuntimeError("failing after the write: nothing may be committed")
    return {"lead_id": str(lead_id), "event_id": event.id}


DEFINITION = ServiceDefinition(
    name="probe",
    description="The runtime's test service.",
    settings=ProbeSettings,
    metadata=metadata,
    tables=TABLES,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(router,),
    consumers=(ConsumerSpec(handlers=handlers),),
)
