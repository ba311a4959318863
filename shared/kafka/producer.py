"""The one way Leadflow produces: acks from every in-sync replica, idempotent."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer


def create_producer(
    bootstrap_servers: str, *, client_id: str, options: dict[str, Any] | None = None
) -> AIOKafkaProducer:
    """``options``: connection settings from :func:`shared.kafka.client_options.client_options`."""
    return AIOKafkaProducer(
        **(options or {}),
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        # Retries after a lost ack must not duplicate or reorder: the broker dedups by sequence.
        enable_idempotence=True,
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )
