"""What rules can look at: the fields of a lead and of a touchpoint, addressed by dotted path.

A rulebook names fields as ``company.vertical`` or ``attributes.budget``; this module turns
those names into getters once, when the rulebook is compiled, and says which names exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from shared.contracts import LeadSnapshot, Touchpoint

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class TouchpointFacts:
    """One touchpoint as the engine sees it (what ``leads.ingested`` told us about it)."""

    touchpoint_id: UUID
    type: str
    occurred_at: datetime
    door: str = "api"
    source: str = "api"
    campaign: str | None = None
    reference: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None

    @classmethod
    def from_contract(cls, touchpoint: Touchpoint) -> TouchpointFacts:
        return cls(
            touchpoint_id=touchpoint.touchpoint_id,
            type=touchpoint.type,
            occurred_at=touchpoint.occurred_at,
            door=touchpoint.door,
            source=touchpoint.source,
            campaign=touchpoint.campaign,
            reference=touchpoint.reference,
            utm_source=touchpoint.utm.source,
            utm_medium=touchpoint.utm.medium,
            utm_campaign=touchpoint.utm.campaign,
            utm_term=touchpoint.utm.term,
            utm_content=touchpoint.utm.content,
        )


LeadGetter = Callable[[LeadSnapshot], Any]
TouchpointGetter = Callable[[TouchpointFacts], Any]


def _email_domain(lead: LeadSnapshot) -> str | None:
    if not lead.email or "@" not in lead.email:
        return None
    return lead.email.rsplit("@", 1)[1]


LEAD_FIELDS: dict[str, LeadGetter] = {
    "email": lambda lead: lead.email,
    "email_domain": _email_domain,
    "first_name": lambda lead: lead.first_name,
    "last_name": lambda lead: lead.last_name,
    "phone": lambda lead: lead.phone,
    "title": lambda lead: lead.title,
    "seniority": lambda lead: lead.seniority,
    "department": lambda lead: lead.department,
    "country": lambda lead: lead.country,
    "region": lambda lead: lead.region,
    "city": lambda lead: lead.city,
    "postal_code": lambda lead: lead.postal_code,
    "free_mail": lambda lead: lead.free_mail,
    "source": lambda lead: lead.source,
    "campaign": lambda lead: lead.campaign,
    "company.name": lambda lead: lead.company.name,
    "company.domain": lambda lead: lead.company.domain,
    "company.account_id": lambda lead: lead.company.account_id,
    "company.website": lambda lead: lead.company.website,
    "company.industry": lambda lead: lead.company.industry,
    "company.vertical": lambda lead: lead.company.vertical,
    "company.sic_code": lambda lead: lead.company.sic_code,
    "company.naics_code": lambda lead: lead.company.naics_code,
    "company.employees": lambda lead: lead.company.employees,
    "company.annual_revenue": lambda lead: lead.company.annual_revenue,
    "consent.email_marketing": lambda lead: lead.consent.email_marketing,
    "consent.phone_contact": lambda lead: lead.consent.phone_contact,
    "consent.data_processing": lambda lead: lead.consent.data_processing,
}
# Open-ended maps: any key after the prefix.
LEAD_FIELD_PREFIXES: dict[str, Callable[[str], LeadGetter]] = {
    "attributes.": lambda key: lambda lead: lead.attributes.get(key),
    "crm_ids.": lambda key: lambda lead: lead.crm_ids.get(key),
}

TOUCHPOINT_FIELDS: dict[str, TouchpointGetter] = {
    "type": lambda tp: tp.type,
    "door": lambda tp: tp.door,
    "source": lambda tp: tp.source,
    "campaign": lambda tp: tp.campaign,
    "reference": lambda tp: tp.reference,
    "utm.source": lambda tp: tp.utm_source,
    "utm.medium": lambda tp: tp.utm_medium,
    "utm.campaign": lambda tp: tp.utm_campaign,
    "utm.term": lambda tp: tp.utm_term,
    "utm.content": lambda tp: tp.utm_content,
}


def lead_getter(path: str) -> LeadGetter | None:
    """The getter of a lead field, or None when no such field exists."""
    getter = LEAD_FIELDS.get(path)
    if getter is not None:
        return getter
    for prefix, make in LEAD_FIELD_PREFIXES.items():
        if path.startswith(prefix) and len(path) > len(prefix):
            return make(path[len(prefix) :])
    return None


def touchpoint_getter(path: str) -> TouchpointGetter | None:
    return TOUCHPOINT_FIELDS.get(path)


def normalize(value: Any) -> str | int | float | None:
    """Values as rules compare them: strings case-folded and trimmed, numbers as numbers,
    booleans as the words ``true`` and ``false`` (so a form's ``"True"`` matches ``true``,
    and ``true`` never equals the number 1)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.strip().casefold()
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value).casefold()
    return str(value).strip().casefold()


def as_number(value: Any) -> float | None:
    """A value as a number for ranges: numbers, and strings that spell one."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None
