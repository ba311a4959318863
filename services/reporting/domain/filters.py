"""Which leads a figure is about.

The period selects leads by the time they were created (a cohort: "the leads of Q1, and what
became of them"), except where a figure says otherwise (touchpoint volume counts touchpoints
that occurred in the period). Source and campaign are the lead's origin (its first
submission); vertical, country and region its latest known values; team and rep its owner
(the latest assignment to a rep or a team queue).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from services.reporting.domain.leads import Lead
from services.reporting.domain.periods import Period


@dataclass(frozen=True, slots=True)
class Filters:
    period: Period = field(default_factory=Period)
    source: str | None = None
    campaign: str | None = None
    vertical: str | None = None
    country: str | None = None
    region: str | None = None
    team: str | None = None
    rep: str | None = None

    def without_period(self) -> Filters:
        return replace(self, period=Period())

    def matches(self, lead: Lead) -> bool:
        wanted = (
            (self.source, lead.source),
            (self.campaign, lead.campaign),
            (self.vertical, lead.vertical),
            (self.country, lead.country),
            (self.region, lead.region),
            (self.team, lead.team_id),
            (self.rep, lead.rep_id),
        )
        if any(want is not None and want != have for want, have in wanted):
            return False
        return self.period.contains(lead.created_at)

    def select(self, leads: Iterable[Lead]) -> list[Lead]:
        return [lead for lead in leads if self.matches(lead)]
