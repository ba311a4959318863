"""Settings of the delivery service (environment prefix ``LEADFLOW_DELIVERY_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class DeliverySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_DELIVERY_", extra="ignore")

    service_name: str = "delivery"
    port: int = 8085
