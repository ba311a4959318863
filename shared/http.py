"""The FastAPI side every service shares: the app factory, probes, metrics, the request's
unit of work, and the request size cap."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.outbox import Outbox
from shared.service import ServiceRuntime

HTTP_REQUESTS = Counter(
    "leadflow_http_requests", "HTTP requests answered.", ["service", "method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "leadflow_http_request_seconds",
    "Time to answer an HTTP request.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def runtime_of(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def _unit_of_work(request: Request) -> Iterator[Session]:
    """The one place a request commits. Events added to the outbox go out after the commit."""
    runtime = runtime_of(request)
    with runtime.db.transaction() as session:
        yield session
    runtime.relay.notify()


# scope="function": the commit happens before the response is sent, so a client is never
# told 2xx for something that then failed to commit.
DbSession = Annotated[Session, Depends(_unit_of_work, scope="function")]


def _read_only(request: Request) -> Iterator[Session]:
    with runtime_of(request).db.read() as session:
        yield session


# For routes that only read (reports, lookups): on SQLite they never wait behind writers.
ReadSession = Annotated[Session, Depends(_read_only)]


def _outbox(request: Request) -> Outbox:
    return runtime_of(request).outbox


RequestOutbox = Annotated[Outbox, Depends(_outbox)]

probes = APIRouter(tags=["operations"])


@probes.get("/healthz", summary="Liveness: the process answers")
async def healthz(request: Request) -> dict[str, str]:
    return {"status": "ok", "service": runtime_of(request).name}


@probes.get("/readyz", summary="Readiness: database and broker reachable")
async def readyz(request: Request) -> JSONResponse:
    checks = await runtime_of(request).readiness()
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@probes.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestSizeLimit:
    """Refuse bodies over the cap with 413, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        received = 0
        refused = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not response_started:
                    # Answer now; the app sees the client gone and stops reading.
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 is already on its way; the app's answer is dropped
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        body = (
            b'{"detail":[{"loc":["body"],"msg":"request body is larger than '
            + str(self.max_bytes).encode()
            + b' bytes","type":"too_large"}]}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RefuseNul:
    """A 422 for a NUL character in a query parameter or in the path, naming it: PostgreSQL
    cannot hold one in a text value, so a lookup by it would fail in the database."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            loc = self._nul_at(scope)
            if loc is not None:
                detail = {
                    "loc": loc,
                    "msg": "must not contain NUL characters",
                    "type": "value_error",
                }
                await JSONResponse({"detail": [detail]}, status_code=422)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _nul_at(scope: Scope) -> list[str] | None:
        if "\x00" in scope.get("path", ""):
            return ["path"]
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if "\x00" in name or "\x00" in value:
                    return ["query", name.replace("\x00", "")]
        return None


class HttpMetrics:
    """Counts and times requests by route template (not raw path: ids would explode labels)."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_SECONDS.labels(self.service, method, template).observe(
                time.perf_counter() - started
            )


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """The service's ASGI app. With ``manage_runtime`` its lifespan starts and stops the
    runtime (Kafka producer, relay, consumers, workers)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            await runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                await runtime.stop()

    definition = runtime.definition
    app = FastAPI(
        title=f"Leadflow {definition.name}",
        description=definition.description,
        version="1",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.include_router(probes)
    for router in definition.routers:
        app.include_router(router)
    app.add_middleware(RefuseNul)
    app.add_middleware(RequestSizeLimit, max_bytes=runtime.settings.max_request_bytes)
    app.add_middleware(HttpMetrics, service=definition.name)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app


async def _http_error(request: Request, error: Exception) -> Response:
    """The framework's own 4xx in the shape of every other error: FastAPI answers a body it
    cannot read (not UTF-8, say) with ``{"detail": "There was an error parsing the body"}``
    and Starlette a path no route matches with ``{"detail": "Not Found"}``. A detail that is
    already a list of errors, or any other status, is left as it is."""
    assert isinstance(error, StarletteHTTPException)
    if isinstance(error.detail, str) and error.status_code in _FRAMEWORK_ERROR_LOCATIONS:
        response = problem(
            error.status_code, _FRAMEWORK_ERROR_LOCATIONS[error.status_code], error.detail
        )
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        return response
    return await http_exception_handler(request, error)


# Where the framework's own errors are: a body it could not parse; a path or a method that
# no route takes.
_FRAMEWORK_ERROR_LOCATIONS = {400: "body", 404: "path", 405: "path"}


# An id that is a database integer, in a path: out of the column's range it is a 422 naming
# the parameter, not an error of the database (PostgreSQL's INTEGER is 32 bits).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def problem(status: int, field: str, message: str, **extra: Any) -> JSONResponse:
    """A 4xx in FastAPI's own validation shape: which field, and why."""
    detail = {"loc": field.split("."), "msg": message, "type": "value_error", **extra}
    return JSONResponse({"detail": [detail]}, status_code=status)
