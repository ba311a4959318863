from services.delivery.models import metadata
from shared.db.alembic_env import run

run(metadata)
