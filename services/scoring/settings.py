"""Settings of the scoring service (environment prefix ``LEADFLOW_SCORING_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_SCORING_", extra="ignore")

    service_name: str = "scoring"
    port: int = 8082
