"""Waiting that a shutdown can interrupt."""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stopping`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def wake_or_stop(wake: asyncio.Event, stopping: asyncio.Event, seconds: float) -> None:
    """Wait until ``wake`` or ``stopping`` is set, ``seconds`` at most (a worker's idle wait:
    woken when there is work, polling anyway)."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
