"""What a subscriber receives: the event as a CloudEvents structured-mode JSON envelope."""

from __future__ import annotations

import json

from shared.cloudevents import SPEC_VERSION, Event, format_time
from shared.contracts import EventPayload

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


def envelope(event: Event[EventPayload]) -> str:
    """The exact body sent (and signed) on every attempt: compact JSON."""
    document = {
        "specversion": SPEC_VERSION,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": format_time(event.time),
        "subject": event.subject,
        "datacontenttype": "application/json",
        "dataschema": event.dataschema,
        "data": json.loads(event.value()),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def without_data(body: str) -> str:
    """An envelope sent for a lead since erased: its attributes (id, type, time, subject)
    stay for the delivery log, its data is reduced to the lead id."""
    document = json.loads(body)
    data = document.get("data")
    lead_id = data.get("lead_id") if isinstance(data, dict) else None
    document["data"] = {"lead_id": lead_id}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
