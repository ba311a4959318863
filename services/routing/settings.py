"""Settings of the routing service (environment prefix ``LEADFLOW_ROUTING_``).

The routing rules themselves (teams, reps, territories, accounts, programs, the SLA policy)
are configuration in the database, changed through the API and audited; these settings
are only how the process runs.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import (
    FULL_BATCH_BYTES,
    ROUTED_PATH_FETCH_WAIT_MS,
    FetchMaxWaitMs,
    FetchMinBytes,
    ServiceSettings,
)


class RoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_ROUTING_", extra="ignore")

    service_name: str = "routing"
    port: int = 8083
    consumer_fetch_min_bytes: FetchMinBytes = FULL_BATCH_BYTES
    consumer_fetch_max_wait_ms: FetchMaxWaitMs = ROUTED_PATH_FETCH_WAIT_MS
    # How often the SLA worker looks for warnings and breaches that are due.
    sla_poll_interval_ms: int = Field(default=1_000, ge=10)
    # How often leads waiting in team queues are tried again.
    queue_retry_interval_ms: int = Field(default=60_000, ge=10)
    # Timers (and queued leads) handled per worker transaction.
    sla_batch_size: int = Field(default=100, ge=1)
    # The most scored leads one simulation may replay.
    simulate_max_leads: int = Field(default=5_000, ge=1)
