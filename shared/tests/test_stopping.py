"""Waits that a shutdown can interrupt."""

from __future__ import annotations

import asyncio

from shared.stopping import wake_or_stop


def _tasks_left() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


def test_wake_or_stop_returns_when_woken_when_stopped_or_when_the_time_is_up() -> None:
    async def scenario() -> list[str]:
        seen = []
        for name in ("wake", "stop", "time"):
            wake, stopping = asyncio.Event(), asyncio.Event()
            loop = asyncio.get_running_loop()
            if name == "wake":
                loop.call_later(0.05, wake.set)
            elif name == "stop":
                loop.call_later(0.05, stopping.set)
            waiting = asyncio.ensure_future(
                wake_or_stop(wake, stopping, 0.2 if name == "time" else 60)
            )
            await asyncio.wait_for(waiting, 10)  # the event missed: 60 s, a timeout here
            await asyncio.sleep(0)  # the cancelled waiters finish
            assert not _tasks_left(), _tasks_left()  # nothing left waiting behind it
            seen.append(name)
        return seen

    assert asyncio.run(scenario()) == ["wake", "stop", "time"]
