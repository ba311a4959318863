"""The routing service as the runtime runs it: the composition root.

:func:`build_definition` wires the handlers, the API and the SLA worker to one clock;
``DEFINITION`` uses the system clock, tests build one with a clock they control.
"""

from __future__ import annotations

from pathlib import Path

from services.routing.api import build_router
from services.routing.clock import Clock, system_clock
from services.routing.handlers import build_handlers
from services.routing.models import ERASURES, TABLES, metadata
from services.routing.settings import RoutingSettings
from services.routing.timers import sla_worker
from shared.erasure import outbox_purger
from shared.service import ConsumerSpec, ServiceDefinition


def build_definition(*, clock: Clock = system_clock) -> ServiceDefinition:
    return ServiceDefinition(
        name="routing",
        description=(
            "Assigns graded leads to reps or nurture under a follow-up SLA, and publishes "
            "leads.routed and leads.sla."
        ),
        settings=RoutingSettings,
        metadata=metadata,
        tables=TABLES,
        migrations_dir=Path(__file__).parent / "migrations",
        routers=(build_router(clock),),
        consumers=(ConsumerSpec(handlers=build_handlers(clock)),),
        workers=(sla_worker(clock), outbox_purger(ERASURES)),
    )


DEFINITION = build_definition()
