"""The topic catalog: every topic, what travels on it, and how it is named on a cluster."""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import (
    EventPayload,
    LeadErasedV1,
    LeadFeedbackV1,
    LeadIngestedV1,
    LeadRoutedV1,
    LeadScoredV1,
    LeadSlaV1,
)

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    description: str
    payloads: tuple[type[EventPayload], ...]
    producer: str
    # Public topics are the contract with marketing automation and are kept forever, so that
    # reporting (or any subscriber) can rebuild its state by replaying from the start.
    retention_ms: int = -1


LEADS_INGESTED = TopicSpec(
    name="leads.ingested",
    description="A submission was accepted: a new lead, or a new touchpoint on a known lead.",
    payloads=(LeadIngestedV1,),
    producer="ingest",
)
LEADS_SCORED = TopicSpec(
    name="leads.scored",
    description="A lead was graded A-D, with fit, engagement and the reasons.",
    payloads=(LeadScoredV1,),
    producer="scoring",
)
LEADS_ROUTED = TopicSpec(
    name="leads.routed",
    description="A lead was assigned to a rep, sent to nurture, or queued for its team.",
    payloads=(LeadRoutedV1,),
    producer="routing",
)
LEADS_SLA = TopicSpec(
    name="leads.sla",
    description="The follow-up clock of an assignment: warning, breach, re-assignment, met.",
    payloads=(LeadSlaV1,),
    producer="routing",
)
LEADS_FEEDBACK = TopicSpec(
    name="leads.feedback",
    description="What sales did with a lead: contacted, accepted, rejected, converted, won, lost.",
    payloads=(LeadFeedbackV1,),
    producer="ingest",
)

LEADS_ERASED = TopicSpec(
    name="leads.erased",
    description=(
        "A person was erased on request (GDPR, CCPA): remove or anonymise what you hold of "
        "the lead. No personal data in it; older records of other topics still carry some."
    ),
    payloads=(LeadErasedV1,),
    producer="ingest",
)

CATALOG: tuple[TopicSpec, ...] = (
    LEADS_INGESTED,
    LEADS_SCORED,
    LEADS_ROUTED,
    LEADS_SLA,
    LEADS_FEEDBACK,
    LEADS_ERASED,
)

_BY_PAYLOAD: dict[type[EventPayload], TopicSpec] = {
    payload: spec for spec in CATALOG for payload in spec.payloads
}


def topic_for(payload: type[EventPayload]) -> TopicSpec:
    """The one topic a payload type travels on."""
    try:
        return _BY_PAYLOAD[payload]
    except KeyError:
        raise LookupError(f"{payload.__name__} is not on any topic of the catalog") from None


def dlq_of(topic: str) -> str:
    return topic + DLQ_SUFFIX


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Physical names on a cluster: the logical name behind an optional namespace."""

    namespace: str = ""

    def physical(self, logical: str) -> str:
        return f"{self.namespace}.{logical}" if self.namespace else logical

    def logical(self, physical: str) -> str:
        prefix = f"{self.namespace}." if self.namespace else ""
        if prefix and not physical.startswith(prefix):
            raise ValueError(f"topic {physical!r} is not in namespace {self.namespace!r}")
        return physical[len(prefix) :]

    def group(self, group_id: str) -> str:
        return self.physical(group_id)
