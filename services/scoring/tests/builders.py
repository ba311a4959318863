"""Small rulebooks and leads for tests: a minimal valid document, any part overridable."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from typing import Any

from services.scoring.domain.document import parse_document
from services.scoring.domain.engine import Rulebook, compile_rulebook
from services.scoring.domain.facts import TouchpointFacts

MINIMAL: dict[str, Any] = {
    "name": "test",
    "fit": {"rules": []},
    "engagement": {"rules": []},
    "grades": {
        "fit_bands": {"high": 50, "low": None},
        "engagement_bands": {"high": 20, "low": None},
        "matrix": {"high": {"high": "A", "low": "B"}, "low": {"high": "C", "low": "D"}},
    },
}


def document(**sections: Any) -> dict[str, Any]:
    """MINIMAL with top-level sections replaced (``fit={...}``, ``grades={...}``)."""
    data = copy.deepcopy(MINIMAL)
    data.update(copy.deepcopy(sections))
    return data


def rulebook(version: int = 1, **sections: Any) -> Rulebook:
    return compile_rulebook(parse_document(document(**sections)), version=version)


def touch(kind: str, at: datetime, **fields: Any) -> TouchpointFacts:
    return TouchpointFacts(touchpoint_id=uuid.uuid4(), type=kind, occurred_at=at, **fields)
