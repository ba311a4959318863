"""The loop back to marketing: why sales rejected leads, per campaign and per source.

A rejected lead counts once, under the reason of its latest rejection. A lead rejected for
``no_timeframe`` (not in market now) is recycled to nurture.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from services.reporting.domain.filters import Filters
from services.reporting.domain.leads import NO_CAMPAIGN, Lead

NO_SOURCE = "(none)"


@dataclass(frozen=True, slots=True)
class ReasonCount:
    reason: str
    leads: int


@dataclass(frozen=True, slots=True)
class Rejections:
    key: str  # the campaign or the source
    rejected: int
    recycled: int
    reasons: list[ReasonCount]  # most frequent first, then by name


@dataclass(frozen=True, slots=True)
class Loop:
    rejected: int
    recycled: int
    reasons: list[ReasonCount]
    by_campaign: list[Rejections]
    by_source: list[Rejections]


def _reasons(leads: list[Lead]) -> list[ReasonCount]:
    counts = Counter(lead.rejection_reason for lead in leads if lead.rejection_reason)
    return [
        ReasonCount(reason, count)
        for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def _grouped(leads: list[Lead], key: str) -> list[Rejections]:
    groups: dict[str, list[Lead]] = {}
    for lead in leads:
        label = (lead.campaign or NO_CAMPAIGN) if key == "campaign" else (lead.source or NO_SOURCE)
        groups.setdefault(label, []).append(lead)
    return [
        Rejections(
            key=label,
            rejected=len(members),
            recycled=sum(1 for lead in members if lead.recycled),
            reasons=_reasons(members),
        )
        for label, members in sorted(groups.items())
    ]


def loop(leads: list[Lead], filters: Filters) -> Loop:
    rejected = [lead for lead in filters.select(leads) if lead.rejection_reason is not None]
    return Loop(
        rejected=len(rejected),
        recycled=sum(1 for lead in rejected if lead.recycled),
        reasons=_reasons(rejected),
        by_campaign=_grouped(rejected, "campaign"),
        by_source=_grouped(rejected, "source"),
    )
