"""Settings of the delivery service (environment prefix ``LEADFLOW_DELIVERY_``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.delivery.domain.breaker import CircuitBreaker
from services.delivery.domain.retry import RetrySchedule
from shared.settings import FULL_BATCH_BYTES, FetchMaxWaitMs, FetchMinBytes, ServiceSettings


class DeliverySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_DELIVERY_", extra="ignore")

    service_name: str = "delivery"
    port: int = 8085
    # Fuller batches from the broker, at most half a second late: receivers are called
    # by the dispatcher, which looks for due messages as often.
    consumer_fetch_min_bytes: FetchMinBytes = FULL_BATCH_BYTES
    consumer_fetch_max_wait_ms: FetchMaxWaitMs = 500

    # ------------------------------------------------------------------ webhooks
    # How long a message is retried, from its first attempt (Standard Webhooks: days).
    retry_window_hours: float = Field(default=24.0, ge=24.0)
    retry_jitter: float = Field(default=0.2, ge=0.0, lt=1.0)
    # Consecutive failures of a receiver after which its subscription is paused.
    breaker_threshold: int = Field(default=10, ge=1)
    request_timeout_seconds: float = Field(default=15.0, gt=0)
    # Messages in flight at once (per instance), and how often to look for due ones.
    dispatch_concurrency: int = Field(default=16, ge=1)
    dispatch_poll_interval_ms: int = Field(default=500, ge=10)
    # A claimed message is another instance's again if not settled by then.
    lease_seconds: int = Field(default=120, ge=1)
    response_excerpt_chars: int = Field(default=1000, ge=0)

    # ------------------------------------------------------------------ CRM write-back
    # A provider is written back to when its credentials are set.
    hubspot_access_token: SecretStr | None = None
    hubspot_base_url: str = "https://api.hubapi.com"
    salesforce_access_token: SecretStr | None = None
    # The org's My Domain URL, e.g. https://acme.my.salesforce.com
    salesforce_instance_url: str | None = None
    salesforce_api_version: str = "v62.0"
    pipedrive_api_token: SecretStr | None = None
    # The company domain, e.g. https://acme.pipedrive.com
    pipedrive_base_url: str = "https://api.pipedrive.com"

    def retry_schedule(self) -> RetrySchedule:
        return RetrySchedule(
            window=timedelta(hours=self.retry_window_hours), jitter=self.retry_jitter
        )

    def breaker(self) -> CircuitBreaker:
        return CircuitBreaker(threshold=self.breaker_threshold)
