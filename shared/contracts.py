"""The event contracts: every payload that crosses a topic, versioned, defined once.

Each payload class is one version of one event type. Its CloudEvents ``type`` is
``<event_type>.v<version>`` (``leadflow.lead.ingested.v1``), its JSON Schema is exported to
``shared/schemas/`` and checked against the model by the tests, and the topic it travels on
is named in :mod:`shared.topics`.

Compatibility rule: inside one version only optional fields may be added (readers ignore what
they do not know); anything else is a new version class next to the old one, published side
by side until every consumer reads the new one.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Grade = Literal["A", "B", "C", "D"]
Seniority = Literal["c_level", "vp", "director", "manager", "individual"]
# How a lead reached ingest.
Door = Literal["api", "form", "import", "webhook"]
FeedbackStatus = Literal["contacted", "accepted", "rejected", "converted", "won", "lost"]
# The reasons a rep may give for rejecting a lead: the field's own words (seeds/001), fixed so
# that reporting can count them per campaign.
RejectionReason = Literal[
    "wrong_target",  # wrong target or not the decision maker
    "no_need",  # no real need / pain
    "no_timeframe",  # not in market now: recycled to nurture
    "bad_data",
    "duplicate",
    "other",
]
RoutingOutcome = Literal["assigned", "nurture", "queued"]
SlaStatus = Literal["warning", "breached", "reassigned", "escalated", "met"]
ScoreTrigger = Literal["touchpoint", "decay", "rulebook_activated", "rescore"]
# The law a person invoked to be erased (GDPR Art. 17, CCPA/CPRA 1798.105), or another ground.
Regulation = Literal["gdpr", "ccpa", "other"]

# The shared vocabulary. Not enforced by the schemas (deployments extend them), but what
# ingest emits by default and what the default rulebook and routing rules refer to.
TOUCHPOINT_TYPES: tuple[str, ...] = (
    "form_submission",  # a generic web form
    "demo_request",  # "in market" signals: weigh more in engagement
    "pricing_request",
    "contact_request",
    "content_download",  # whitepaper, ebook, case study
    "webinar_registration",
    "webinar_attendance",
    "event_attendance",  # trade show, seminar
    "email_click",
    "directory_listing",  # an industry directory's referral or listing import
    "list_import",  # a purchased or rented list
    "crm_sync",  # created or updated in the CRM
    "api",  # posted by an integration with no more specific type
)
VERTICALS: tuple[str, ...] = (
    "software",
    "it_services",
    "financial_services",
    "insurance",
    "healthcare",
    "life_sciences",
    "manufacturing",
    "retail",
    "education",
    "government",
    "professional_services",
    "media",
    "telecommunications",
    "energy",
    "real_estate",
    "construction",
    "transportation",
    "hospitality",
    "nonprofit",
    "other",
)
DEPARTMENTS: tuple[str, ...] = (
    "executive",
    "engineering",
    "it",
    "product",
    "sales",
    "marketing",
    "finance",
    "operations",
    "human_resources",
    "legal",
    "customer_support",
    "procurement",
    "other",
)

AttributeValue = str | int | float | bool | None
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Timestamp = AwareDatetime


class Contract(BaseModel):
    """Base of every nested contract model: tolerant reader, immutable value."""

    # Readers ignore fields they do not know, so a producer may add optional ones in a version.
    model_config = ConfigDict(extra="ignore", frozen=True)


class EventPayload(Contract):
    """One version of one event type. Subclasses set the two class variables."""

    event_type: ClassVar[str]
    version: ClassVar[int]

    lead_id: UUID

    @classmethod
    def cloudevents_type(cls) -> str:
        return f"{cls.event_type}.v{cls.version}"

    @classmethod
    def schema_name(cls) -> str:
        return cls.cloudevents_type()


# ---------------------------------------------------------------- the lead, as ingest knows it


class Utm(Contract):
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    term: str | None = None
    content: str | None = None


class Consent(Contract):
    """Consent flags as the person gave them; ``None`` means not asked."""

    email_marketing: bool | None = None
    phone_contact: bool | None = None
    data_processing: bool | None = None
    recorded_at: Timestamp | None = None


class CompanySnapshot(Contract):
    name: str | None = None
    domain: str | None = Field(default=None, description="Registrable domain, e.g. acme.com")
    account_id: UUID | None = Field(default=None, description="Account the lead is linked to")
    website: str | None = None
    industry: str | None = Field(default=None, description="Industry as the source wrote it")
    vertical: str | None = Field(default=None, description="Normalized vertical from the list")
    sic_code: str | None = None
    naics_code: str | None = None
    employees: int | None = Field(default=None, ge=0)
    annual_revenue: Decimal | None = Field(default=None, ge=0)


class LeadSnapshot(Contract):
    """The normalized lead as ingest holds it after the submission that caused the event."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = Field(default=None, description="E.164", pattern=r"^\+[1-9]\d{1,14}$")
    title: str | None = None
    seniority: Seniority | None = None
    department: str | None = None
    company: CompanySnapshot = Field(default_factory=CompanySnapshot)
    country: str | None = Field(
        default=None, description="ISO 3166-1 alpha-2", pattern=r"^[A-Z]{2}$"
    )
    region: str | None = Field(default=None, description="ISO 3166-2, e.g. DE-BY")
    city: str | None = None
    postal_code: str | None = None
    free_mail: bool = Field(default=False, description="Email is at a free-mail provider")
    consent: Consent = Field(default_factory=Consent)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    source: str | None = Field(default=None, description="Source of the first submission")
    campaign: str | None = Field(default=None, description="Campaign of the first submission")
    crm_ids: dict[str, str] = Field(
        default_factory=dict, description="Record id per CRM provider, e.g. {'hubspot': '651'}"
    )
    created_at: Timestamp


class Touchpoint(Contract):
    """One interaction of a person with us: every submission is one."""

    touchpoint_id: UUID
    type: Slug = Field(description="form_submission, demo_request, pricing_request, webinar, ...")
    door: Door
    source: str = Field(description="web_form, directory, purchased_list, hubspot, api, ...")
    campaign: str | None = None
    utm: Utm = Field(default_factory=Utm)
    reference: str | None = Field(default=None, description="Form id, import id or provider id")
    occurred_at: Timestamp


class LeadIngestedV1(EventPayload):
    """A submission was accepted: a new lead, or a new touchpoint on a known one."""

    event_type: ClassVar[str] = "leadflow.lead.ingested"
    version: ClassVar[int] = 1

    change: Literal["created", "merged"]
    merged_on: Literal["email", "phone"] | None = None
    lead: LeadSnapshot
    touchpoint: Touchpoint
    touchpoint_count: int = Field(ge=1)


# ---------------------------------------------------------------- scoring


class ScoreReason(Contract):
    rule: str = Field(description="Id of the rule in the rulebook")
    kind: Literal["fit", "engagement"]
    category: str = Field(default="default", description="Named score category")
    points: float
    why: str


class CategoryScore(Contract):
    category: str
    fit_score: float
    engagement_score: float
    grade: Grade


class LeadScoredV1(EventPayload):
    """A lead was (re)graded. Carries the lead snapshot so routing needs no other source."""

    event_type: ClassVar[str] = "leadflow.lead.scored"
    version: ClassVar[int] = 1

    grade: Grade
    previous_grade: Grade | None = None
    fit_score: float
    engagement_score: float
    categories: list[CategoryScore] = Field(default_factory=list)
    rulebook_version: int = Field(ge=1)
    reasons: list[ScoreReason] = Field(default_factory=list)
    trigger: ScoreTrigger
    touchpoint_id: UUID | None = None
    lead: LeadSnapshot
    scored_at: Timestamp


# ---------------------------------------------------------------- routing


class RepRef(Contract):
    rep_id: str
    name: str | None = None
    email: str | None = None
    crm_user_id: str | None = None


class SkippedCandidate(Contract):
    rep_id: str
    reason: str = Field(description="out_of_office, at_capacity, inactive, had_lead_before, ...")


class LeadRoutedV1(EventPayload):
    """A lead was assigned to a rep, put in a nurture program, or queued for its team."""

    event_type: ClassVar[str] = "leadflow.lead.routed"
    version: ClassVar[int] = 1

    assignment_id: UUID
    outcome: RoutingOutcome
    grade: Grade
    rep: RepRef | None = None
    team_id: str | None = None
    program_id: str | None = None
    rule: str = Field(description="named_account, territory, round_robin, nurture, team_queue ...")
    explanation: str
    skipped: list[SkippedCandidate] = Field(default_factory=list)
    sla_due_at: Timestamp | None = None
    reassignment_of: UUID | None = Field(default=None, description="Assignment this one replaces")
    attempt: int = Field(default=1, ge=1)
    routed_at: Timestamp


class LeadSlaV1(EventPayload):
    """The follow-up clock of an assignment moved: warned, breached, re-assigned, met."""

    event_type: ClassVar[str] = "leadflow.lead.sla"
    version: ClassVar[int] = 1

    assignment_id: UUID
    status: SlaStatus
    grade: Grade
    rep_id: str | None = None
    team_id: str | None = None
    due_at: Timestamp
    occurred_at: Timestamp


# ---------------------------------------------------------------- feedback from the CRM


class LeadFeedbackV1(EventPayload):
    """What sales did with a lead, as the CRM (or a rep through the API) reported it."""

    event_type: ClassVar[str] = "leadflow.lead.feedback"
    version: ClassVar[int] = 1

    status: FeedbackStatus
    rejection_reason: RejectionReason | None = None
    note: str | None = Field(default=None, max_length=2_000)
    opportunity_id: str | None = None
    amount: Decimal | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    source: str = Field(description="hubspot, salesforce, pipedrive, api, ...")
    crm_record_id: str | None = None
    rep_crm_user_id: str | None = None
    occurred_at: Timestamp

    @model_validator(mode="after")
    def _reason_goes_with_rejection(self) -> LeadFeedbackV1:
        if self.status == "rejected" and self.rejection_reason is None:
            raise ValueError("rejection_reason is required when status is 'rejected'")
        if self.status != "rejected" and self.rejection_reason is not None:
            raise ValueError("rejection_reason is only allowed when status is 'rejected'")
        return self


# ---------------------------------------------------------------- erasure


class LeadErasedV1(EventPayload):
    """A person asked to be erased: every reader removes or anonymises the personal data it
    holds of this lead and keeps only anonymous facts. Carries no personal data itself: the
    lead id is the only reference. A person known as several leads gives one event per lead,
    all with the same ``erasure_id``."""

    event_type: ClassVar[str] = "leadflow.lead.erased"
    version: ClassVar[int] = 1

    erasure_id: UUID = Field(description="The erasure request; the same for every lead of it")
    regulation: Regulation = Field(
        default="gdpr", description="gdpr (Art. 17), ccpa (1798.105) or other"
    )
    erased_at: Timestamp


# ---------------------------------------------------------------- the registry

PAYLOAD_TYPES: tuple[type[EventPayload], ...] = (
    LeadIngestedV1,
    LeadScoredV1,
    LeadRoutedV1,
    LeadSlaV1,
    LeadFeedbackV1,
    LeadErasedV1,
)

_BY_CLOUDEVENTS_TYPE: dict[str, type[EventPayload]] = {
    payload.cloudevents_type(): payload for payload in PAYLOAD_TYPES
}
_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_.]*\.v[1-9][0-9]*$")


class UnknownEventType(LookupError):
    """A record carries a CloudEvents type this build does not know."""


def payload_class(cloudevents_type: str) -> type[EventPayload]:
    try:
        return _BY_CLOUDEVENTS_TYPE[cloudevents_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {cloudevents_type!r}") from None


def json_schema(payload: type[EventPayload]) -> dict[str, Any]:
    """The JSON Schema of a payload as exported to ``shared/schemas/``."""
    schema = payload.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:leadflow:schemas:{payload.schema_name()}"
    schema["x-cloudevents-type"] = payload.cloudevents_type()
    return schema


def _check_registry() -> None:
    for name in _BY_CLOUDEVENTS_TYPE:
        if not _TYPE_PATTERN.match(name):
            raise AssertionError(f"bad event type name {name!r}")
    if len(_BY_CLOUDEVENTS_TYPE) != len(PAYLOAD_TYPES):
        raise AssertionError("two payload classes share a CloudEvents type")


_check_registry()


def parse_payload(cloudevents_type: str, data: bytes | str | dict[str, Any]) -> EventPayload:
    model = payload_class(cloudevents_type)
    if isinstance(data, dict):
        return model.model_validate(data)
    return model.model_validate_json(data)
