"""Settings read from the environment (prefix ``LEADFLOW_``), with embedded defaults.

Two layers: :class:`PlatformSettings` is what every process shares (the broker, the topic
namespace, where local data lives); each service subclasses :class:`ServiceSettings` with its
own prefix (``LEADFLOW_INGEST_`` ...) for what only it owns: its database and its port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class PlatformSettings(BaseSettings):
    """What every Leadflow process shares."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore")

    # The plain KAFKA_BOOTSTRAP_SERVERS is honoured too: it is what ops teams already set.
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    # How clients authenticate to the cluster (Confluent Cloud: SASL_SSL + PLAIN; MSK and
    # Strimzi: SASL_SSL + SCRAM, or SSL with client certificates).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # PEM files; without a CA file the system's trusted CAs verify the brokers.
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    # Prefixed to every physical topic name: lets several systems (or tests) share a cluster.
    topic_namespace: str = ""
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    data_dir: Path = Path(".data")
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "leadflow")
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    @model_validator(mode="after")
    def _absolute_paths(self) -> PlatformSettings:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.cache_dir = self.cache_dir.expanduser().resolve()
        return self


KEEP_ALIVE_SECONDS = 75
# A fetch this size holds a full batch of events (500 records of 1-2 KB): what a consumer
# that waits for fuller batches asks the broker to gather before answering.
FULL_BATCH_BYTES = 1 << 20
# How long scoring and routing, on the way to leads.routed, let the broker gather a batch.
# Measured at 200 leads/s (python -m bench pipeline's paced run): a record taken at once
# puts p99 accept -> routed at ~1 s; 25 ms, at ~0.3-0.6 s (10 ms: ~0.5-0.9 s; 50 ms:
# ~0.6 s). When traffic is light, each lead waits for up to 25 ms on each of the two hops.
ROUTED_PATH_FETCH_WAIT_MS = 25


# Bounds of the settings services give defaults of their own. A subclass that redeclares a
# field with a plain default drops the parent's constraints (pydantic), so both use these.
FetchMinBytes = Annotated[int, Field(ge=1)]
FetchMaxWaitMs = Annotated[int, Field(ge=0)]
LingerMs = Annotated[int, Field(ge=0, le=1_000)]


class ServiceSettings(BaseSettings):
    """Base of each service's own settings; subclasses set ``env_prefix`` and the port."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    # Default: a SQLite file under the platform data dir, one per service.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    consumer_group: str = ""
    # A failing record is tried this many times in all before it goes to the dead-letter topic.
    handler_max_attempts: int = Field(default=4, ge=1)
    handler_backoff_initial_ms: int = Field(default=200, ge=0)
    handler_backoff_max_ms: int = Field(default=5_000, ge=0)
    consumer_max_batch: int = Field(default=500, ge=1)
    # Kafka's fetch.min.bytes and fetch.max.wait.ms: the broker answers a consumer's fetch
    # once this many bytes are waiting or the wait is over. One byte (Kafka's default) hands
    # each record over at once, in batches as small as the traffic. The services on the way
    # to leads.routed (scoring, routing) wait 25 ms for a fuller batch; those off it
    # (reporting, delivery) wait longer. Each pays its transaction, offset commit and outbox
    # cycle once per batch rather than per record.
    consumer_fetch_min_bytes: FetchMinBytes = 1
    consumer_fetch_max_wait_ms: FetchMaxWaitMs = 500
    outbox_poll_interval_ms: int = Field(default=1_000, ge=10)
    # How long the relay, woken by a commit, waits before it reads the outbox, so that the
    # commits of those milliseconds go out with it (Kafka's linger.ms). No wait by default: a
    # consumer's commits come a batch at a time already; ingest's, a request at a time.
    outbox_linger_ms: LingerMs = 0
    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_retention_hours: int = Field(default=72, ge=0)
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # How long an idle HTTP connection is kept open. Longer than the idle timeout of the
    # clients and load balancers in front (60 s for many), so that it is always the client
    # that closes it: a server closing first races the client's next request on it, which
    # then fails without an answer (uvicorn's own default is 5 s, httpx's keeps 5 s too).
    http_keep_alive_seconds: int = Field(default=KEEP_ALIVE_SECONDS, ge=1)
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    @model_validator(mode="after")
    def _defaults_from_platform(self) -> ServiceSettings:
        if not self.database_url:
            path = self.platform.data_dir / f"{self.service_name}.db"
            self.database_url = f"sqlite:///{path}"
        if not self.consumer_group:
            self.consumer_group = f"leadflow-{self.service_name}"
        return self
