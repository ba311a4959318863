"""What any door hands to capture: the fields it read and where they came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.ingest.domain.normalize import RawValue
from shared.contracts import Door


@dataclass(frozen=True)
class Submission:
    fields: Mapping[str, RawValue]
    door: Door
    source: str
    touchpoint_type: str
    attributes: Mapping[str, RawValue] = field(default_factory=dict)
    campaign: str | None = None
    reference: str | None = None
    # (provider, record id) when a CRM sent it.
    crm_record: tuple[str, str] | None = None
