"""Settings of the routing service (environment prefix ``LEADFLOW_ROUTING_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_ROUTING_", extra="ignore")

    service_name: str = "routing"
    port: int = 8083
