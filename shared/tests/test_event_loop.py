"""The event loop the services run on keeps their Kafka clients alive through a broker
restart: a write to a connection the broker has just closed fails as a Kafka error, which
aiokafka recovers from, not as another exception that ends its background tasks."""

from __future__ import annotations

import asyncio

import uvicorn
from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from shared.cli import EVENT_LOOP


async def write_after_the_broker_closed(bootstrap_servers: str, turns: int) -> BaseException:
    """What sending on a connection raises when its socket went away ``turns`` turns of the
    loop earlier (before or after the reader has noticed)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers)
    await client.bootstrap()
    try:
        node = next(broker.nodeId for broker in client.cluster.brokers())
        connection = await client._get_conn(node)
        assert connection is not None
        connection._writer.transport.abort()  # as on a reset by the broker
        for _ in range(turns):
            await asyncio.sleep(0)
        try:
            await connection.send(MetadataRequest(None))
        except BaseException as error:
            return error
        raise AssertionError("a send on a closed connection succeeded")
    finally:
        await client.close()


def test_on_the_services_loop_a_write_to_a_closed_kafka_connection_is_a_kafka_error(
    kafka_bootstrap_servers: str,
) -> None:
    # uvicorn's own choice of loop for the name the services give it. On uvloop, turns 1
    # and 2 raise RuntimeError ("the handler is closed").
    loop_factory = uvicorn.Config("shared.http:create_app", loop=EVENT_LOOP).get_loop_factory()
    errors = []
    for turns in range(4):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            errors.append(runner.run(write_after_the_broker_closed(kafka_bootstrap_servers, turns)))
    assert all(isinstance(error, KafkaError) for error in errors), errors
