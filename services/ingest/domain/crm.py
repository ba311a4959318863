"""What the CRMs send, read into lead fields, record ids and status changes. Pure parsing
of already-authenticated payloads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

from services.ingest.domain.normalize import RawValue
from shared.contracts import FeedbackStatus, RejectionReason

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SF_OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SF_SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_SALESFORCE_NOTIFICATIONS = 100

SALESFORCE_ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}">'
    "<soapenv:Body>"
    f'<notificationsResponse xmlns="{SF_OUTBOUND}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)


class UnreadablePayload(ValueError):
    """An authentic request whose body is not what the provider documents."""


@dataclass(frozen=True)
class StatusChange:
    status: FeedbackStatus
    rejection_reason: RejectionReason | None = None
    note: str | None = None


@dataclass(frozen=True)
class CrmRecord:
    """One person as a CRM sent it."""

    provider: str
    record_id: str
    event_id: str
    fields: dict[str, RawValue] = field(default_factory=dict)
    attributes: dict[str, RawValue] = field(default_factory=dict)
    status: StatusChange | None = None
    occurred_at: str | None = None


def is_superseded(version: datetime | None, applied: datetime | None) -> bool:
    """True when a CRM record's version is older than the one already applied.

    Versions without a time can't be ordered and are applied as they come; the same time
    again (a second change in the same second, or a redelivery under a new id) is applied.
    """
    return version is not None and applied is not None and version < applied


# ------------------------------------------------------------------ HubSpot

HUBSPOT_PROPERTIES: dict[str, str] = {
    "email": "email", "firstname": "first_name", "lastname": "last_name", "phone": "phone",
    "mobilephone": "mobile", "jobtitle": "title", "company": "company", "website": "website",
    "industry": "industry", "country": "country", "state": "region", "city": "city",
    "zip": "postal_code", "numemployees": "employees", "numberofemployees": "employees",
    "annualrevenue": "annual_revenue", "utm_source": "utm_source", "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign", "utm_term": "utm_term", "utm_content": "utm_content",
}  # fmt: skip
# HubSpot's default lead status and lifecycle stage values, as reported to sales.
HUBSPOT_LEAD_STATUS: dict[str, StatusChange] = {
    "ATTEMPTED_TO_CONTACT": StatusChange("contacted"),
    "CONNECTED": StatusChange("contacted"),
    "IN_PROGRESS": StatusChange("accepted"),
    "OPEN_DEAL": StatusChange("converted"),
    "UNQUALIFIED": StatusChange("rejected", "wrong_target"),
    "BAD_TIMING": StatusChange("rejected", "no_timeframe"),
}
HUBSPOT_LIFECYCLE: dict[str, StatusChange] = {
    "salesqualifiedlead": StatusChange("accepted"),
    "opportunity": StatusChange("converted"),
    "customer": StatusChange("won"),
}
_HUBSPOT_IDS = ("hs_object_id", "vid", "canonical-vid", "objectId", "id")


def _hubspot_value(value: Any) -> RawValue:
    if isinstance(value, Mapping):  # {"value": "...", "versions": [...]}
        value = value.get("value")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def hubspot_contact(body: Any, *, event_id: str) -> CrmRecord:
    """A workflow "Send a webhook" body: a contact with all or chosen properties, either as
    ``{"vid": 1, "properties": {"email": {"value": ...}}}`` or flat ``{"email": ...}``."""
    if not isinstance(body, Mapping):
        raise UnreadablePayload("a JSON object with the contact's properties is expected")
    properties = body.get("properties")
    flat: dict[str, RawValue] = {}
    if isinstance(properties, Mapping):
        flat.update({str(k): _hubspot_value(v) for k, v in properties.items()})
    flat.update({str(k): _hubspot_value(v) for k, v in body.items() if k != "properties"})
    record_id = next((str(flat[k]) for k in _HUBSPOT_IDS if flat.get(k) not in (None, "")), None)
    if record_id is None:
        raise UnreadablePayload("no contact id (hs_object_id, vid or objectId)")
    fields: dict[str, RawValue] = {}
    attributes: dict[str, RawValue] = {}
    for name, value in flat.items():
        if name in HUBSPOT_PROPERTIES:
            fields[HUBSPOT_PROPERTIES[name]] = value
        elif (
            name not in _HUBSPOT_IDS
            and value not in (None, "")
            and not name.startswith(("hs_", "canonical-", "is-contact", "portal-id", "profile-"))
        ):
            attributes[name] = value
    status = None
    lead_status = str(flat.get("hs_lead_status") or "").upper()
    lifecycle = str(flat.get("lifecyclestage") or "").lower()
    if lifecycle in HUBSPOT_LIFECYCLE:
        status = HUBSPOT_LIFECYCLE[lifecycle]
    elif lead_status in HUBSPOT_LEAD_STATUS:
        status = HUBSPOT_LEAD_STATUS[lead_status]
    return CrmRecord("hubspot", record_id, event_id, fields, attributes, status)


# ------------------------------------------------------------------ Salesforce

SALESFORCE_FIELDS: dict[str, str] = {
    "Email": "email", "FirstName": "first_name", "LastName": "last_name", "Phone": "phone",
    "MobilePhone": "mobile", "Title": "title", "Company": "company", "Website": "website",
    "Industry": "industry", "Country": "country", "CountryCode": "country", "State": "region",
    "StateCode": "region", "City": "city", "PostalCode": "postal_code",
    "NumberOfEmployees": "employees", "AnnualRevenue": "annual_revenue",
    "LeadSource": "source",
}  # fmt: skip
# The standard Lead Status picklist.
SALESFORCE_STATUS: dict[str, StatusChange] = {
    "working - contacted": StatusChange("contacted"),
    "working": StatusChange("contacted"),
    "contacted": StatusChange("contacted"),
    "qualified": StatusChange("accepted"),
    "closed - converted": StatusChange("converted"),
    "converted": StatusChange("converted"),
    "unqualified": StatusChange("rejected", "wrong_target"),
    "closed - not converted": StatusChange("rejected", "other"),
}


@dataclass(frozen=True)
class SalesforceMessage:
    organization_id: str
    notifications: list[CrmRecord]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def salesforce_notifications(body: bytes) -> SalesforceMessage:
    """An Outbound Message: a SOAP ``notifications`` of up to 100 ``Notification``s, each
    with its own ``Id`` (stable across redeliveries) and an ``sObject`` (Lead, Contact)."""
    try:
        root: Element = ElementTree.fromstring(body)
    except Exception as error:  # defusedxml raises several types for hostile or broken XML
        raise UnreadablePayload(f"not a SOAP message: {error}") from None
    message = root.find(f"{{{SOAP_ENV}}}Body/{{{SF_OUTBOUND}}}notifications")
    if message is None:
        raise UnreadablePayload("no soapenv:Body/notifications element")
    organization = (message.findtext(f"{{{SF_OUTBOUND}}}OrganizationId") or "").strip()
    items = message.findall(f"{{{SF_OUTBOUND}}}Notification")
    if len(items) > MAX_SALESFORCE_NOTIFICATIONS:
        raise UnreadablePayload(f"more than {MAX_SALESFORCE_NOTIFICATIONS} notifications")
    records = []
    for item in items:
        notification_id = (item.findtext(f"{{{SF_OUTBOUND}}}Id") or "").strip()
        sobject = item.find(f"{{{SF_OUTBOUND}}}sObject")
        if not notification_id or sobject is None:
            raise UnreadablePayload("a Notification without Id or sObject")
        values: dict[str, str] = {}
        for child in sobject:
            if child.get(f"{{{XSI}}}nil") == "true":
                continue
            values[_local(child.tag)] = (child.text or "").strip()
        record_id = values.pop("Id", "")
        if not record_id:
            raise UnreadablePayload(f"notification {notification_id} has no sf:Id")
        fields: dict[str, RawValue] = {}
        attributes: dict[str, RawValue] = {}
        for name, value in values.items():
            if name in SALESFORCE_FIELDS:
                fields.setdefault(SALESFORCE_FIELDS[name], value)
            elif name not in ("Status", "IsConverted", "LastModifiedDate", "CreatedDate"):
                attributes[name] = value
        status = None
        if values.get("IsConverted", "").lower() == "true":
            status = StatusChange("converted")
        elif values.get("Status", "").lower() in SALESFORCE_STATUS:
            status = SALESFORCE_STATUS[values["Status"].lower()]
        records.append(
            CrmRecord(
                "salesforce",
                record_id,
                notification_id,
                fields,
                attributes,
                status,
                values.get("LastModifiedDate"),
            )
        )
    return SalesforceMessage(organization_id=organization, notifications=records)


# ------------------------------------------------------------------ Pipedrive


def _primary(values: Any) -> RawValue:
    if isinstance(values, list) and values:
        chosen = next((v for v in values if isinstance(v, Mapping) and v.get("primary")), values[0])
        return _hubspot_value(chosen) if isinstance(chosen, Mapping) else str(chosen)
    return _hubspot_value(values)


@dataclass(frozen=True)
class PipedriveEvent:
    entity: str  # person, lead, deal ...
    action: str  # create/added, change/updated, delete/deleted
    entity_id: str
    data: Mapping[str, Any]


def pipedrive_event(body: Any) -> PipedriveEvent:
    """Webhooks v2 (``meta.entity``, ``data``) and v1 (``meta.object``, ``current``)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("meta"), Mapping):
        raise UnreadablePayload("a Pipedrive webhook has a meta object")
    meta = body["meta"]
    entity = str(meta.get("entity") or meta.get("object") or "")
    action = str(meta.get("action") or "")
    data = body.get("data") if "data" in body else body.get("current")
    entity_id = meta.get("entity_id") or meta.get("id") or (data or {}).get("id")
    if not entity or entity_id in (None, ""):
        raise UnreadablePayload("meta names no entity and id")
    return PipedriveEvent(entity, action, str(entity_id), data if isinstance(data, Mapping) else {})


def pipedrive_person(event: PipedriveEvent, *, event_id: str) -> CrmRecord:
    data = event.data
    fields: dict[str, RawValue] = {
        "email": _primary(data.get("emails", data.get("email"))),
        "phone": _primary(data.get("phones", data.get("phone"))),
        "first_name": _hubspot_value(data.get("first_name")),
        "last_name": _hubspot_value(data.get("last_name")),
        "title": _hubspot_value(data.get("job_title")),
        "company": _hubspot_value(data.get("org_name")),
    }
    if not fields["first_name"] and not fields["last_name"] and data.get("name"):
        fields["full_name"] = _hubspot_value(data.get("name"))
    return CrmRecord(
        "pipedrive",
        event.entity_id,
        event_id,
        {k: v for k, v in fields.items() if v not in (None, "")},
        {},
    )


def pipedrive_deal_status(event: PipedriveEvent) -> tuple[str, StatusChange] | None:
    """A deal won or lost: (the person's id, the change)."""
    status = str(event.data.get("status") or "")
    person = event.data.get("person_id")
    if isinstance(person, Mapping):
        person = person.get("value")
    if person in (None, "") or status not in ("won", "lost"):
        return None
    reason = event.data.get("lost_reason")
    return str(person), StatusChange(status, None, str(reason) if reason else None)  # type: ignore[arg-type]
