"""Settings of the ingest service (environment prefix ``LEADFLOW_INGEST_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.ingest.domain.normalize import NormalizationConfig
from shared.contracts import DEPARTMENTS, VERTICALS
from shared.settings import LingerMs, ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_INGEST_", extra="ignore")

    service_name: str = "ingest"
    port: int = 8081
    # Kafka's linger.ms, whose default Kafka 4.0 raised from 0 to 5 ms (KIP-1030). At 200
    # leads/s the relay otherwise runs a cycle (a read, a produce request, a mark) for
    # nearly every single-lead request.
    outbox_linger_ms: LingerMs = 5

    # Normalization
    default_country: str | None = Field(
        default=None, description="ISO alpha-2 for national phone numbers with no country"
    )
    verticals: tuple[str, ...] = VERTICALS
    departments: tuple[str, ...] = DEPARTMENTS
    industry_keywords: dict[str, str] = Field(
        default_factory=dict, description="Extra industry keyword -> vertical, JSON"
    )
    company_match_threshold: float = Field(default=90.0, ge=50, le=100)

    # Doors
    max_batch: int = Field(default=1_000, ge=1)
    # The JSON and import doors want a key from `leadflow apikey create`. False opens them
    # (a developer's machine only).
    require_api_key: bool = True
    # A key found valid is trusted this long without asking the database again: a revoked
    # key stops working within this time. 0 checks every request.
    api_key_cache_seconds: float = Field(default=10.0, ge=0, le=3_600)
    # Rows of an import a transaction captures. Each chunk pays a dozen round trips (locks,
    # look-ups, one COPY a table, commit): 2,000 rows import ~15 % faster than 500, and
    # hold the capture lock, which the batch door waits for, ~1 s instead of ~0.25.
    import_chunk_rows: int = Field(default=2_000, ge=1)
    # Each next chunk of an import is normalized in a second process while the worker
    # writes the one before (services/ingest/normalizer.py). False: all in the worker.
    import_normalizer: bool = True
    # Single-lead requests that arrive while a transaction is being written are written
    # together in the next one (group commit), at most this many.
    lead_group_max: int = Field(default=200, ge=1)
    idempotency_retention_hours: int = Field(default=72, ge=1)

    # Erasure: the HMAC key of the suppression list (hashes of erased people's email and
    # phone). Set a random secret of your own in production, and keep it: with another key
    # the list no longer recognises anyone.
    suppression_key: SecretStr = SecretStr("leadflow-development-suppression-key")

    # CRM webhooks. The URL HubSpot signs is the public one (a proxy may sit in front).
    public_base_url: str | None = None
    hubspot_client_secret: str | None = None
    salesforce_path_token: str | None = None
    salesforce_organization_ids: tuple[str, ...] = ()
    pipedrive_username: str | None = None
    pipedrive_password: str | None = None
    standard_webhooks_secret: str | None = None
    webhook_tolerance_seconds: int = Field(default=300, ge=1)

    def normalization(self) -> NormalizationConfig:
        return NormalizationConfig(
            default_country=self.default_country.upper() if self.default_country else None,
            verticals=self.verticals,
            departments=self.departments,
            industry_keywords=self.industry_keywords,
        )
