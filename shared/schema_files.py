"""The JSON Schemas of the contracts, as files under ``shared/schemas/``.

The files are what subscribers read; the models are what the code uses. ``leadflow schemas
export`` writes the files from the models, and a test fails when the two drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.contracts import PAYLOAD_TYPES, EventPayload, json_schema

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_path(payload: type[EventPayload]) -> Path:
    return SCHEMA_DIR / f"{payload.schema_name()}.json"


def render(payload: type[EventPayload]) -> str:
    return json.dumps(json_schema(payload), indent=2, sort_keys=True) + "\n"


def export() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    written = []
    for payload in PAYLOAD_TYPES:
        path = schema_path(payload)
        path.write_text(render(payload))
        written.append(path)
    return written


def drifted() -> list[str]:
    """Names of the schema files that are missing or differ from the models."""
    stale = []
    for payload in PAYLOAD_TYPES:
        path = schema_path(payload)
        if not path.exists() or path.read_text() != render(payload):
            stale.append(path.name)
    return stale


def load(cloudevents_type: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((SCHEMA_DIR / f"{cloudevents_type}.json").read_text())
    return loaded
