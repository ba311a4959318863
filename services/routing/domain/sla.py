"""The follow-up SLA: when a rep's clock warns and runs out, and what a breach leads to.

Follow-up time is business time in the assigned rep's working hours and time zone: with
the defaults (A: 8 business hours, that is one business day; B: 40, one working week) an A
lead routed on Friday at 16:00 to a rep working 09:00-17:00 is due on Monday at 16:00.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from services.routing.domain.business_hours import WorkingHours, add_business_time


def _default_follow_up() -> dict[str, timedelta]:
    return {"A": timedelta(hours=8), "B": timedelta(hours=40)}


@dataclass(frozen=True)
class SlaPolicy:
    # Business time to follow up, per grade; grades not listed have no clock.
    follow_up: Mapping[str, timedelta] = field(default_factory=_default_follow_up)
    # The warning goes out when this share of the follow-up time has passed.
    warning_fraction: float = 0.75
    # Re-assignments after breaches before the lead is escalated to its team instead.
    max_reassignments: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.warning_fraction < 1:
            raise ValueError("warning_fraction must be between 0 and 1")
        if self.max_reassignments < 0:
            raise ValueError("max_reassignments must not be negative")
        for grade, amount in self.follow_up.items():
            if amount <= timedelta(0):
                raise ValueError(f"follow-up time of grade {grade} must be positive")


@dataclass(frozen=True)
class SlaClock:
    warn_at: datetime
    due_at: datetime


def start_clock(
    routed_at: datetime, grade: str, hours: WorkingHours, policy: SlaPolicy
) -> SlaClock | None:
    """The warning and deadline of a lead assigned at ``routed_at``; ``None``: no SLA."""
    amount = policy.follow_up.get(grade)
    if amount is None:
        return None
    return SlaClock(
        warn_at=add_business_time(routed_at, amount * policy.warning_fraction, hours),
        due_at=add_business_time(routed_at, amount, hours),
    )


def on_breach(attempt: int, policy: SlaPolicy) -> Literal["reassign", "escalate"]:
    """What follows the breach of the ``attempt``-th assignment of a lead (1 = the first)."""
    return "reassign" if attempt <= policy.max_reassignments else "escalate"
