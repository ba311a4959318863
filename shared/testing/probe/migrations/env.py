from shared.db.alembic_env import run
from shared.testing.probe.models import metadata

run(metadata)
