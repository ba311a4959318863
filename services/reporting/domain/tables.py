"""Every metric as a table (a header and rows of plain values), for CSV export."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from typing import Any
from uuid import UUID

from services.reporting.domain.attribution import Attribution
from services.reporting.domain.followup import FollowUp, SpeedWeek
from services.reporting.domain.funnel import Funnel, Stage
from services.reporting.domain.loop import Loop
from services.reporting.domain.spend import CampaignSpend
from services.reporting.domain.targets import TargetActual
from services.reporting.domain.volume import Volume

Cell = str | int | float | None
Table = tuple[list[str], list[list[Cell]]]


def cell(value: Any) -> Cell:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if value is None or isinstance(value, str | int | float):
        return value
    raise TypeError(f"no cell for {type(value).__name__}")


def records(kind: type[Any], items: list[Any]) -> Table:
    """Flat dataclasses of one type: one column per field."""
    names = [field.name for field in fields(kind)]
    return names, [[cell(getattr(item, name)) for name in names] for item in items]


def measures(item: Any, *, skip: tuple[str, ...] = ()) -> Table:
    """The scalar fields of one dataclass, one row each."""
    rows: list[list[Cell]] = [
        [field.name, cell(getattr(item, field.name))]
        for field in fields(item)
        if field.name not in skip
    ]
    return ["measure", "value"], rows


def volume_table(volume: Volume) -> Table:
    header, rows = measures(volume, skip=("grades",))
    rows += [[f"grade_{count.grade}", count.leads] for count in volume.grades]
    return header, rows


def funnel_table(funnel: Funnel) -> Table:
    return records(Stage, funnel.stages)


def follow_up_table(follow_up: FollowUp) -> Table:
    return measures(follow_up, skip=("oldest_waiting",))


def speed_table(weeks: list[SpeedWeek]) -> Table:
    return records(SpeedWeek, weeks)


def loop_table(loop: Loop) -> Table:
    rows: list[list[Cell]] = []
    for dimension, groups in (("campaign", loop.by_campaign), ("source", loop.by_source)):
        for group in groups:
            rows += [[dimension, group.key, count.reason, count.leads] for count in group.reasons]
    return ["by", "key", "reason", "leads"], rows


def attribution_table(models: list[Attribution]) -> Table:
    rows: list[list[Cell]] = [
        [model.model, row.campaign, row.opportunities, row.pipeline, row.revenue]
        for model in models
        for row in model.campaigns
    ]
    return ["model", "campaign", "opportunities", "pipeline", "revenue"], rows


def spend_table(rows: list[CampaignSpend]) -> Table:
    return records(CampaignSpend, rows)


def targets_table(rows: list[TargetActual]) -> Table:
    return records(TargetActual, rows)
