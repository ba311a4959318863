"""What happens to a lead already known to routing: a new score, or feedback from sales.

The state of a lead is the state of its current assignment:

* ``open``: assigned to a rep who has not closed it (it counts against their capacity);
* ``nurturing``: in a nurture program (or recycled there after "no timeframe");
* ``queued``: waiting in a team's queue (or escalated there), nobody assigned;
* ``closed``: rejected, converted, won or lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.routing.domain.model import SALES_GRADES

LeadState = Literal["open", "nurturing", "queued", "closed"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"rejected", "converted", "won", "lost"})


@dataclass(frozen=True)
class RescoreAction:
    route: bool
    why: str


def on_rescore(
    state: LeadState | None, *, grade: str, previous_grade: str | None, recycled: bool, trigger: str
) -> RescoreAction:
    """Whether a new score of a lead routes it (again)."""
    if state is None:
        return RescoreAction(True, "first score seen by routing")
    if state == "nurturing":
        if grade not in SALES_GRADES:
            return RescoreAction(False, "still a nurture grade")
        if recycled and trigger != "touchpoint":
            return RescoreAction(
                False, "recycled for no timeframe: back to sales only on a new touchpoint"
            )
        rose = f" from {previous_grade}" if previous_grade else ""
        return RescoreAction(True, f"pulled out of nurture: grade rose{rose} to {grade}")
    if state == "queued":
        return RescoreAction(True, "waiting in a queue: routed again")
    if state == "open":
        return RescoreAction(False, "already assigned: the rep keeps it")
    return RescoreAction(False, "closed by feedback")


FeedbackTarget = Literal["apply", "keep"]


def feedback_target(state: LeadState | None) -> FeedbackTarget:
    """Feedback about a lead that has no rep or queue item yet is kept until it has one:
    the score that assigns it may still be on its way."""
    if state is None or state == "nurturing":
        return "keep"
    return "apply"


@dataclass(frozen=True)
class FeedbackEffect:
    stops_clock: bool
    # True: followed up in time; False: late; None: there was no clock running.
    sla_met: bool | None
    closes: bool
    recycle_to_nurture: bool


def feedback_effect(
    *,
    status: str,
    rejection_reason: str | None,
    occurred_at: datetime,
    clock_running: bool,
    due_at: datetime | None,
) -> FeedbackEffect:
    """Every disposition stops the follow-up clock; terminal ones close the lead (and free
    the rep's capacity); a rejection for no timeframe recycles it to nurture."""
    met: bool | None = None
    if clock_running and due_at is not None:
        met = occurred_at <= due_at
    closes = status in TERMINAL_STATUSES
    return FeedbackEffect(
        stops_clock=clock_running,
        sla_met=met,
        closes=closes,
        recycle_to_nurture=status == "rejected" and rejection_reason == "no_timeframe",
    )
