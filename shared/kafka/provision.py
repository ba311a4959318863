"""Where is Kafka? One answer for the services, the tests, the benchmarks and the CLI.

In order:
1. ``KAFKA_BOOTSTRAP_SERVERS`` (or ``LEADFLOW_KAFKA_BOOTSTRAP_SERVERS``) is set: that cluster.
2. A Docker engine answers: a broker in a container, through testcontainers.
3. Otherwise: Apache Kafka's own jars from Maven Central, run locally (:mod:`local_broker`).

``LEADFLOW_KAFKA_PROVIDER`` (``external``, ``docker``, ``local``) forces one of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shared.kafka.local_broker import LocalKafka
from shared.settings import PlatformSettings

Provider = Literal["external", "docker", "local"]
# Confluent's image is the one testcontainers' KafkaContainer knows how to start in KRaft mode.
DOCKER_KAFKA_IMAGE = os.environ.get("LEADFLOW_KAFKA_DOCKER_IMAGE", "confluentinc/cp-kafka:7.9.0")


@dataclass
class ProvisionedKafka:
    bootstrap_servers: str
    provider: Provider
    local: LocalKafka | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path | None:
        return self.local.log_path if self.local else None

    def describe(self) -> str:
        where = f"Kafka at {self.bootstrap_servers} ({self.provider}"
        if self.local and self.local.pid:
            where += f", pid {self.local.pid}, log {self.log_path}"
        return where + ")"


def docker_available(timeout: float = 2.0) -> bool:
    """True when a Docker engine answers a ping; False, quickly, when there is none."""
    try:
        import docker

        client = docker.from_env(timeout=int(max(1, timeout)))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def choose_provider(settings: PlatformSettings, *, docker_probe: bool = True) -> Provider:
    forced = os.environ.get("LEADFLOW_KAFKA_PROVIDER", "").strip().lower()
    if forced:
        if forced not in ("external", "docker", "local"):
            raise ValueError(f"LEADFLOW_KAFKA_PROVIDER={forced!r}: use external, docker or local")
        if forced == "external" and not settings.kafka_bootstrap_servers:
            raise ValueError("LEADFLOW_KAFKA_PROVIDER=external needs KAFKA_BOOTSTRAP_SERVERS")
        return forced  # type: ignore[return-value]
    if settings.kafka_bootstrap_servers:
        return "external"
    if docker_probe and docker_available():
        return "docker"
    return "local"


@contextmanager
def kafka_bootstrap(
    settings: PlatformSettings | None = None, *, local_sasl_users: dict[str, str] | None = None
) -> Iterator[ProvisionedKafka]:
    """Yield a reachable Kafka; stop whatever this call started when the block ends.

    Call it from the main thread: the local broker is tied to the thread that starts it.
    ``local_sasl_users`` opens a SASL/PLAIN listener for them on a local broker (tests).
    """
    settings = settings or PlatformSettings()
    provider = choose_provider(settings)
    if provider == "external":
        assert settings.kafka_bootstrap_servers
        yield ProvisionedKafka(settings.kafka_bootstrap_servers, "external")
    elif provider == "docker":
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(DOCKER_KAFKA_IMAGE).with_kraft() as container:
            yield ProvisionedKafka(container.get_bootstrap_server(), "docker")
    else:
        broker = LocalKafka(
            cache_dir=settings.cache_dir,
            runs_dir=settings.data_dir / "kafka",
            partitions=settings.topic_partitions,
            sasl_users=local_sasl_users,
        )
        broker.start()
        try:
            yield ProvisionedKafka(broker.bootstrap_servers, "local", local=broker)
        finally:
            broker.stop()
