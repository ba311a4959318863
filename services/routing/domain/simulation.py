"""Replaying leads through a proposed configuration, without touching the live state.

Leads are routed one after another, oldest first, as they were scored, with a round robin
that starts fresh and loads that grow with each simulated assignment (``count_loads``) on
top of the ``initial_loads`` given. Availability (active, out of office) is judged at one
moment, ``now``: "if this configuration were live now, where would these leads go?".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.routing.domain.decision import Decision, decide
from services.routing.domain.model import LeadFacts, RoutingConfig
from services.routing.domain.round_robin import Rotation


@dataclass(frozen=True)
class Simulated:
    lead: LeadFacts
    decision: Decision


@dataclass(frozen=True)
class SimulationResult:
    leads: tuple[Simulated, ...]
    # Leads each rep would have received.
    load: Mapping[str, int]
    outcomes: Mapping[str, int]


def simulate(
    leads: Sequence[LeadFacts],
    *,
    config: RoutingConfig,
    now: datetime,
    initial_loads: Mapping[str, int] | None = None,
    count_loads: bool = True,
) -> SimulationResult:
    rotations: dict[str, Rotation] = {}
    loads: Counter[str] = Counter(initial_loads or {})
    received: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    results = []
    for lead in leads:
        decision = decide(lead, config=config, rotations=rotations, loads=loads, now=now)
        if decision.rotation is not None and decision.rotation_team_id is not None:
            rotations[decision.rotation_team_id] = decision.rotation
        if decision.rep_id is not None:
            received[decision.rep_id] += 1
            if count_loads:
                loads[decision.rep_id] += 1
        outcomes[decision.outcome] += 1
        results.append(Simulated(lead, decision))
    return SimulationResult(
        leads=tuple(results),
        load=dict(sorted(received.items())),
        outcomes=dict(sorted(outcomes.items())),
    )
