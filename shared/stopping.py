"""Waiting that a shutdown can interrupt."""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stopping`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
