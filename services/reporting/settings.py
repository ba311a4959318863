"""Settings of the reporting service (environment prefix ``LEADFLOW_REPORTING_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import FULL_BATCH_BYTES, FetchMaxWaitMs, FetchMinBytes, ServiceSettings


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_REPORTING_", extra="ignore")

    service_name: str = "reporting"
    port: int = 8084
    # The dashboard is not on the way to a rep: reporting reads in fuller batches, which
    # costs it a second of freshness and the machine a fraction of the CPU a record.
    consumer_fetch_min_bytes: FetchMinBytes = FULL_BATCH_BYTES
    consumer_fetch_max_wait_ms: FetchMaxWaitMs = 1_000
