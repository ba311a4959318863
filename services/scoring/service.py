"""The scoring service as the runtime runs it."""

from __future__ import annotations

from pathlib import Path

from services.scoring.api import router
from services.scoring.cli import cli
from services.scoring.handlers import handlers
from services.scoring.models import ERASURES, TABLES, metadata
from services.scoring.settings import ScoringSettings
from services.scoring.workers import decay_worker, install_default_rulebook, rescore_worker
from shared.erasure import outbox_purger
from shared.service import ConsumerSpec, ServiceDefinition

DEFINITION = ServiceDefinition(
    name="scoring",
    description=(
        "Grades leads A-D from a versioned rulebook both sides agree on, with the "
        "reasons, and publishes leads.scored."
    ),
    settings=ScoringSettings,
    metadata=metadata,
    tables=TABLES,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(router,),
    consumers=(ConsumerSpec(handlers=handlers),),
    workers=(install_default_rulebook, rescore_worker, decay_worker, outbox_purger(ERASURES)),
    cli=cli,
)
