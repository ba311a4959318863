"""The system: which services exist, found by import path so that shared/ imports none."""

from __future__ import annotations

import importlib

from shared.service import ServiceDefinition

SERVICES: dict[str, str] = {
    "ingest": "services.ingest.service:DEFINITION",
    "scoring": "services.scoring.service:DEFINITION",
    "routing": "services.routing.service:DEFINITION",
    "reporting": "services.reporting.service:DEFINITION",
    "delivery": "services.delivery.service:DEFINITION",
}


def load(name: str) -> ServiceDefinition:
    try:
        target = SERVICES[name]
    except KeyError:
        raise LookupError(f"no service {name!r}: one of {', '.join(SERVICES)}") from None
    module_name, attribute = target.split(":")
    definition: ServiceDefinition = getattr(importlib.import_module(module_name), attribute)
    return definition


def load_all() -> list[ServiceDefinition]:
    return [load(name) for name in SERVICES]
