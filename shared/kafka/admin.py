"""Creating the catalog's topics (and their dead-letter twins) on a cluster."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.topics import CATALOG, TopicNames, TopicSpec, dlq_of

DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000


def topic_requests(
    names: TopicNames,
    specs: Iterable[TopicSpec] = CATALOG,
    *,
    partitions: int,
    replication_factor: int,
) -> list[NewTopic]:
    requests = []
    for spec in specs:
        requests.append(
            NewTopic(
                names.physical(spec.name),
                partitions,
                replication_factor,
                topic_configs={"retention.ms": str(spec.retention_ms)},
            )
        )
        requests.append(
            NewTopic(
                names.physical(dlq_of(spec.name)),
                1,
                replication_factor,
                topic_configs={"retention.ms": str(DLQ_RETENTION_MS)},
            )
        )
    return requests


async def ensure_topics(
    bootstrap_servers: str,
    names: TopicNames,
    specs: Iterable[TopicSpec] = CATALOG,
    *,
    partitions: int = 6,
    replication_factor: int = 1,
    options: dict[str, Any] | None = None,
) -> list[str]:
    """Create what is missing; answer the names created. Existing topics are left as they are."""
    admin = AIOKafkaAdminClient(
        **(options or {}), bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            request
            for request in topic_requests(
                names, specs, partitions=partitions, replication_factor=replication_factor
            )
            if request.name not in existing
        ]
        created = []
        for request in wanted:
            try:
                await admin.create_topics([request])
                created.append(request.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()
