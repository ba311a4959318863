"""Settings of the scoring service (environment prefix ``LEADFLOW_SCORING_``)."""

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


class ScoringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_SCORING_", extra="ignore")

    service_name: str = "scoring"
    port: int = 8082
    consumer_fetch_min_bytes: FetchMinBytes = FULL_BATCH_BYTES
    consumer_fetch_max_wait_ms: FetchMaxWaitMs = ROUTED_PATH_FETCH_WAIT_MS
    # Re-scoring after an activation: leads per transaction, and how often to look for work
    # when not woken by an activation on this replica.
    rescore_batch_size: int = Field(default=500, ge=1)
    rescore_poll_interval_ms: int = Field(default=5_000, ge=10)
    # The decay scheduler: leads per transaction, and how often it looks for due leads.
    decay_batch_size: int = Field(default=500, ge=1)
    decay_poll_interval_ms: int = Field(default=30_000, ge=10)
    # Back-tests read the history this many leads at a time.
    backtest_page_size: int = Field(default=1_000, ge=1)
