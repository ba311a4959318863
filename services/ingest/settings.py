"""Settings of the ingest service (environment prefix ``LEADFLOW_INGEST_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_INGEST_", extra="ignore")

    service_name: str = "ingest"
    port: int = 8081
