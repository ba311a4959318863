"""Settings of the reporting service (environment prefix ``LEADFLOW_REPORTING_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_REPORTING_", extra="ignore")

    service_name: str = "reporting"
    port: int = 8084
