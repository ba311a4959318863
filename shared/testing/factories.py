"""Factories for contract payloads: realistic defaults, any field overridable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shared.contracts import (
    CompanySnapshot,
    LeadErasedV1,
    LeadFeedbackV1,
    LeadIngestedV1,
    LeadRoutedV1,
    LeadScoredV1,
    LeadSlaV1,
    LeadSnapshot,
    Touchpoint,
    Utm,
)


def now() -> datetime:
    return datetime.now(UTC)


def lead_snapshot(**overrides: Any) -> LeadSnapshot:
    values: dict[str, Any] = {
        "email": "ada.lovelace@analytical-engines.co.uk",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+442079460958",
        "title": "VP Engineering",
        "seniority": "vp",
        "department": "engineering",
        "company": CompanySnapshot(
            name="Analytical Engines Ltd",
            domain="analytical-engines.co.uk",
            industry="Computer Software",
            vertical="software",
            employees=240,
        ),
        "country": "GB",
        "region": "GB-LND",
        "city": "London",
        "postal_code": "EC1A 1BB",
        "source": "web_form",
        "campaign": "q4-webinar",
        "created_at": now(),
    }
    values.update(overrides)
    return LeadSnapshot(**values)


def touchpoint(**overrides: Any) -> Touchpoint:
    values: dict[str, Any] = {
        "touchpoint_id": uuid.uuid4(),
        "type": "form_submission",
        "door": "form",
        "source": "web_form",
        "campaign": "q4-webinar",
        "utm": Utm(source="linkedin", medium="paid_social", campaign="q4-webinar"),
        "occurred_at": now(),
    }
    values.update(overrides)
    return Touchpoint(**values)


def lead_ingested(
    *, lead_id: uuid.UUID | None = None, probe: str | None = None, **overrides: Any
) -> LeadIngestedV1:
    attributes = {"probe": probe} if probe is not None else {}
    values: dict[str, Any] = {
        "lead_id": lead_id or uuid.uuid4(),
        "change": "created",
        "lead": lead_snapshot(attributes=attributes),
        "touchpoint": touchpoint(),
        "touchpoint_count": 1,
    }
    values.update(overrides)
    return LeadIngestedV1(**values)


def lead_scored(**overrides: Any) -> LeadScoredV1:
    values: dict[str, Any] = {
        "lead_id": uuid.uuid4(),
        "grade": "B",
        "fit_score": 62.0,
        "engagement_score": 18.5,
        "rulebook_version": 1,
        "trigger": "touchpoint",
        "lead": lead_snapshot(),
        "scored_at": now(),
    }
    values.update(overrides)
    return LeadScoredV1(**values)


def lead_routed(**overrides: Any) -> LeadRoutedV1:
    values: dict[str, Any] = {
        "lead_id": uuid.uuid4(),
        "assignment_id": uuid.uuid4(),
        "outcome": "assigned",
        "grade": "A",
        "team_id": "emea-software",
        "rule": "territory",
        "explanation": "GB and software are covered by team emea-software",
        "routed_at": now(),
    }
    values.update(overrides)
    return LeadRoutedV1(**values)


def lead_sla(**overrides: Any) -> LeadSlaV1:
    values: dict[str, Any] = {
        "lead_id": uuid.uuid4(),
        "assignment_id": uuid.uuid4(),
        "status": "warning",
        "grade": "A",
        "rep_id": "rep-1",
        "due_at": now(),
        "occurred_at": now(),
    }
    values.update(overrides)
    return LeadSlaV1(**values)


def lead_feedback(**overrides: Any) -> LeadFeedbackV1:
    values: dict[str, Any] = {
        "lead_id": uuid.uuid4(),
        "status": "accepted",
        "source": "hubspot",
        "occurred_at": now(),
    }
    values.update(overrides)
    return LeadFeedbackV1(**values)


def lead_erased(**overrides: Any) -> LeadErasedV1:
    values: dict[str, Any] = {
        "lead_id": uuid.uuid4(),
        "erasure_id": uuid.uuid4(),
        "regulation": "gdpr",
        "erased_at": now(),
    }
    values.update(overrides)
    return LeadErasedV1(**values)
