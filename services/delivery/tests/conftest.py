"""Fixtures of the delivery tests: a controllable clock, a receiver that records and answers
as scripted, the service's runtime on the test's database, and its workers run alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.delivery.handlers import handlers
from services.delivery.service import DEFINITION
from shared.cloudevents import Event
from shared.contracts import EventPayload
from shared.db import Database
from shared.kafka.consumer import HandlerContext
from shared.service import ServiceDefinition, ServiceRuntime, Worker
from shared.testing.pytest_plugin import serve_app, service_settings
from shared.topics import topic_for


@pytest.fixture
def service_definition() -> ServiceDefinition:
    return DEFINITION


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


class MiddleRandom:
    """No jitter: every delay is the schedule's own."""

    def random(self) -> float:
        return 0.5


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers as scripted: the
    answers queued for a path first, then that path's default (200)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.queued: dict[str, list[Answer]] = {}
        self.defaults: dict[str, Answer] = {}
        # Decides before the queues and defaults, when it answers something.
        self.rule: Callable[[Received], Answer | None] | None = None
        self.url = ""
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._answer,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                )
            ]
        )

    async def _answer(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        self.requests.append(
            Received(
                method=request.method,
                path=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
                headers={key.lower(): value for key, value in request.headers.items()},
                body=await request.body(),
            )
        )
        ruled = self.rule(self.requests[-1]) if self.rule else None
        queue = self.queued.get(path)
        if ruled is not None:
            answer = ruled
        elif queue:
            answer = queue.pop(0)
        else:
            answer = self.defaults.get(path, Answer())
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    def answer(self, path: str, *answers: Answer) -> None:
        self.queued.setdefault(path, []).extend(answers)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path.split("?")[0] == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    async with serve_app(server.app) as url:
        server.url = url
        yield server


def verify_as_subscriber(secret: str, request: Received, *, now: datetime | None = None) -> Any:
    """Check a delivery as a subscriber would, with the standardwebhooks library. Its
    ``verify`` compares the timestamp with the wall clock; a test that moved its clock days
    ahead checks the signature with the library's ``sign`` instead."""
    webhook = Webhook(secret)
    timestamp = int(request.headers["webhook-timestamp"])
    if now is None:
        return webhook.verify(request.body, request.headers)
    assert abs(int(now.timestamp()) - timestamp) <= 5
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    expected = webhook.sign(request.headers["webhook-id"], moment, request.body.decode())
    assert expected in request.headers["webhook-signature"].split(" ")
    return request.json()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runtime(database: Database, clock: FakeClock) -> Iterator[ServiceRuntime]:
    settings = service_settings(
        DEFINITION, database=database, dispatch_poll_interval_ms=20, breaker_threshold=4
    )
    runtime = ServiceRuntime(DEFINITION, settings)
    runtime.state["clock"] = clock
    runtime.state["random"] = MiddleRandom()
    try:
        yield runtime
    finally:
        runtime.db.dispose()


@asynccontextmanager
async def running(runtime: ServiceRuntime, worker: Worker) -> AsyncIterator[None]:
    """One background worker of the service, alone (no broker needed)."""
    stopping = asyncio.Event()
    task: asyncio.Future[None] = asyncio.ensure_future(worker(runtime, stopping))
    try:
        yield
    finally:
        stopping.set()
        await asyncio.wait_for(task, 30)


def consume(runtime: ServiceRuntime, payload: EventPayload) -> Event[EventPayload]:
    """Run the service's handler on an event in one transaction, as its consumer would."""
    event: Event[EventPayload] = Event(data=payload, source="/leadflow/test")
    handler = handlers.get(type(payload))
    assert handler is not None
    with runtime.db.transaction() as session:
        handler(
            HandlerContext(session, event, runtime.outbox, topic_for(type(payload)).name, 0, 0),
            payload,
        )
    return event


def new_lead() -> uuid.UUID:
    return uuid.uuid4()
