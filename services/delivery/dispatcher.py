"""The workers that send: webhook deliveries and CRM write-backs.

Each keeps up to ``dispatch_concurrency`` messages in flight. It claims due messages (the
head of each lead's stream only) in a short transaction, sends them with httpx outside any
transaction, and settles each in a transaction of its own: the attempt in the log, the next
attempt or the end, and the subscription's circuit breaker. The clock and the randomness
come from ``runtime.state`` (``clock``, ``random``) so that tests can move time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from prometheus_client import Counter

from services.delivery import repository
from services.delivery.clock import SYSTEM_CLOCK, SYSTEM_RANDOM, Clock, Randomness
from services.delivery.crm.adapters import CrmAdapter, UnusableOwner, adapters_from
from services.delivery.domain.retry import Classification, classify, parse_retry_after
from services.delivery.domain.signing import signature_headers
from services.delivery.envelope import CONTENT_TYPE
from services.delivery.settings import DeliverySettings
from shared.kafka.consumer import is_transient
from shared.observability.logs import get_logger
from shared.service import ServiceRuntime
from shared.stopping import sleep_or_stop

log = get_logger(__name__)

WEBHOOK_ATTEMPTS = Counter(
    "leadflow_delivery_webhook_attempts", "Webhook delivery attempts by outcome.", ["outcome"]
)
CRM_ATTEMPTS = Counter(
    "leadflow_delivery_crm_attempts", "CRM write-back attempts.", ["provider", "outcome"]
)
USER_AGENT = "Leadflow-Webhooks/1.0"

T = TypeVar("T")


def clock_of(runtime: ServiceRuntime) -> Clock:
    clock: Clock = runtime.state.get("clock", SYSTEM_CLOCK)
    return clock


def random_of(runtime: ServiceRuntime) -> Randomness:
    randomness: Randomness = runtime.state.get("random", SYSTEM_RANDOM)
    return randomness


def settings_of(runtime: ServiceRuntime) -> DeliverySettings:
    settings = runtime.settings
    assert isinstance(settings, DeliverySettings)
    return settings


async def pump(
    *,
    stopping: asyncio.Event,
    concurrency: int,
    poll_interval: float,
    claim: Callable[[int], Awaitable[Sequence[T]]],
    send: Callable[[T], Coroutine[Any, Any, None]],
    name: str,
) -> None:
    """Keep up to ``concurrency`` sends in flight until stopped; finish those in hand."""
    inflight: set[asyncio.Task[None]] = set()
    try:
        while not stopping.is_set():
            free = concurrency - len(inflight)
            claimed: Sequence[T] = ()
            if free > 0:
                try:
                    claimed = await claim(free)
                except Exception as error:
                    if not is_transient(error):
                        raise
                    log.warning("database unavailable, claiming later", worker=name)
            for item in claimed:
                inflight.add(asyncio.create_task(send(item), name=name))
            if inflight:
                stop: asyncio.Task[Any] = asyncio.create_task(stopping.wait())
                waiting: set[asyncio.Task[Any]] = {*inflight, stop}
                done, _ = await asyncio.wait(
                    waiting,
                    timeout=None if len(claimed) == free else poll_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                stop.cancel()
                for task in done - {stop}:
                    inflight.discard(task)
                    _log_failure(task, name)
            else:
                await sleep_or_stop(stopping, poll_interval)
    finally:
        if inflight:
            await asyncio.wait(inflight, timeout=30)
            for task in inflight:
                if task.done():
                    _log_failure(task, name)
                else:
                    task.cancel()


def _log_failure(task: asyncio.Task[Any], name: str) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("send failed", worker=name, error=repr(task.exception()))


async def _post(
    client: httpx.AsyncClient, request: Callable[[], Awaitable[httpx.Response]], excerpt: int
) -> tuple[int | None, str | None, str | None, httpx.Response | None, int]:
    started = time.perf_counter()
    try:
        response = await request()
    except httpx.HTTPError as failure:
        duration = int((time.perf_counter() - started) * 1000)
        return None, f"{type(failure).__name__}: {failure}"[:2000], None, None, duration
    duration = int((time.perf_counter() - started) * 1000)
    status = response.status_code
    error = None if 200 <= status <= 299 else f"HTTP {status}"
    return status, error, response.text[:excerpt] or None, response, duration


# ---------------------------------------------------------------------------- webhooks


async def dispatch_webhooks(runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
    settings = settings_of(runtime)
    clock = clock_of(runtime)
    schedule = settings.retry_schedule()
    breaker = settings.breaker()
    db = runtime.db
    lease = timedelta(seconds=settings.lease_seconds)

    def claim_now(limit: int) -> list[repository.ClaimedDelivery]:
        with db.transaction() as session:
            return repository.claim_deliveries(session, now=clock.now(), limit=limit, lease=lease)

    async def claim(limit: int) -> list[repository.ClaimedDelivery]:
        return await asyncio.to_thread(claim_now, limit)

    async with httpx.AsyncClient(
        timeout=settings.request_timeout_seconds,
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
    ) as client:

        async def send(claimed: repository.ClaimedDelivery) -> None:
            started_at = clock.now()
            body = claimed.body.encode()
            headers = {
                **signature_headers(
                    claimed.secret, claimed.message_id, int(started_at.timestamp()), body
                ),
                "content-type": CONTENT_TYPE,
            }
            status, error, excerpt, response, duration = await _post(
                client,
                lambda: client.post(claimed.url, content=body, headers=headers),
                settings.response_excerpt_chars,
            )
            now = clock.now()
            outcome = classify(status)
            retry_after = (
                parse_retry_after(response.headers.get("retry-after"), now) if response else None
            )
            attempt = repository.AttemptRecord(
                started_at=started_at,
                duration_ms=duration,
                status_code=status,
                error=error,
                response_excerpt=excerpt,
                retry_after=retry_after,
            )
            rand = random_of(runtime).random()

            def settle() -> str | None:
                with db.transaction() as session:
                    return repository.settle_delivery(
                        session,
                        delivery_id=claimed.id,
                        token=claimed.token,
                        attempt=attempt,
                        outcome=outcome,
                        now=now,
                        schedule=schedule,
                        breaker=breaker,
                        rand=rand,
                    )

            result = await _settle_until_done(settle, stopping)
            WEBHOOK_ATTEMPTS.labels(result or "lease_lost").inc()
            log.info(
                "webhook attempt",
                delivery_id=claimed.id,
                status_code=status,
                outcome=result,
                error=error,
            )

        await pump(
            stopping=stopping,
            concurrency=settings.dispatch_concurrency,
            poll_interval=settings.dispatch_poll_interval_ms / 1000,
            claim=claim,
            send=send,
            name="dispatch_webhooks",
        )


async def _settle_until_done(
    settle: Callable[[], str | None], stopping: asyncio.Event
) -> str | None:
    """Settle; while the database is unreachable, keep trying (the lease may run out, and
    the message is then sent again: at least once)."""
    delay = 0.2
    while True:
        try:
            return await asyncio.to_thread(settle)
        except Exception as error:
            if not is_transient(error) or stopping.is_set():
                raise
            log.warning("database unavailable, settling later", error=repr(error))
            await sleep_or_stop(stopping, delay)
            delay = min(delay * 2, 5.0)


# ---------------------------------------------------------------------------- CRM write-back

_CRM_REFUSED = Classification("retry", True, False, False)


async def write_back_assignments(runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
    settings = settings_of(runtime)
    adapters: dict[str, CrmAdapter] = runtime.state.get("crm_adapters") or adapters_from(settings)
    if not adapters:
        log.info("no CRM credentials configured: assignments are not written back")
        await stopping.wait()
        return
    clock = clock_of(runtime)
    schedule = settings.retry_schedule()
    db = runtime.db
    lease = timedelta(seconds=settings.lease_seconds)
    providers = sorted(adapters)

    def claim_now(limit: int) -> list[repository.ClaimedWriteback]:
        now = clock.now()
        with db.read() as session:
            if not repository.has_due_writebacks(session, now=now, providers=providers):
                return []
        with db.transaction() as session:
            return repository.claim_writebacks(
                session, now=now, limit=limit, lease=lease, providers=providers
            )

    async def claim(limit: int) -> list[repository.ClaimedWriteback]:
        return await asyncio.to_thread(claim_now, limit)

    async with httpx.AsyncClient(
        timeout=settings.request_timeout_seconds, follow_redirects=False
    ) as client:

        async def send(claimed: repository.ClaimedWriteback) -> None:
            adapter = adapters[claimed.provider]
            started_at = clock.now()
            permanent = False
            response: httpx.Response | None = None
            status: int | None
            error: str | None
            excerpt: str | None
            try:
                request = adapter.owner_request(claimed.record_id, claimed.owner_id)
            except UnusableOwner as unusable:
                status, error, excerpt, duration = None, str(unusable), None, 0
                permanent = True
            else:
                status, error, excerpt, response, duration = await _post(
                    client,
                    lambda: client.request(
                        request.method, request.url, headers=request.headers, json=request.json
                    ),
                    settings.response_excerpt_chars,
                )
            outcome: Classification = classify(status)
            if response is not None:
                error = adapter.error_of(response.status_code, response.content)
                if error is not None and outcome.verdict != "retry":
                    outcome = _CRM_REFUSED  # 2xx saying it failed, or 410: not done
            now = clock.now()
            attempt = repository.AttemptRecord(
                started_at=started_at,
                duration_ms=duration,
                status_code=status,
                error=error,
                response_excerpt=excerpt,
                retry_after=(
                    parse_retry_after(response.headers.get("retry-after"), now)
                    if response is not None
                    else None
                ),
            )
            rand = random_of(runtime).random()

            def settle() -> str | None:
                with db.transaction() as session:
                    return repository.settle_writeback(
                        session,
                        writeback_id=claimed.id,
                        token=claimed.token,
                        attempt=attempt,
                        outcome=outcome,
                        now=now,
                        schedule=schedule,
                        rand=rand,
                        permanent=permanent,
                    )

            result = await _settle_until_done(settle, stopping)
            CRM_ATTEMPTS.labels(claimed.provider, result or "lease_lost").inc()
            log.info(
                "crm write-back attempt",
                provider=claimed.provider,
                writeback_id=claimed.id,
                status_code=status,
                outcome=result,
                error=error,
            )

        await pump(
            stopping=stopping,
            concurrency=settings.dispatch_concurrency,
            poll_interval=settings.dispatch_poll_interval_ms / 1000,
            claim=claim,
            send=send,
            name="write_back_assignments",
        )
