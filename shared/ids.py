"""Random (version 4) UUIDs for rows and events, without a system call for each.

``uuid.uuid4()`` reads 16 bytes from the OS, and CPython releases the GIL around that read.
A thread that makes ids while another thread of the process is busy (an import chunk or a
consumer batch in ``asyncio.to_thread`` while the event loop publishes the outbox) then waits
to take the GIL back, up to the switch interval (5 ms) each time: measured here, ~1.7 µs an id
alone and ~200 µs beside a busy thread. ``new_uuid`` reads the OS once for 256 ids, into a
buffer of its thread, and the child of a fork starts a buffer of its own (a buffer copied into
it would hand out its parent's next ids again).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

IDS_PER_READ = 256

# The version (4) and variant (RFC 4122) bits, as uuid.UUID(bytes=..., version=4) sets them.
_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_4 = (0x8000 << 48) | (4 << 76)


class _Buffer(threading.local):
    def __init__(self) -> None:
        self.ids: Iterator[int] = iter(())


_buffer = _Buffer()


def _read() -> Iterator[int]:
    random = os.urandom(16 * IDS_PER_READ)
    return iter(
        [
            int.from_bytes(random[start : start + 16]) & _KEEP | _VERSION_4
            for start in range(0, len(random), 16)
        ]
    )


def new_uuid() -> uuid.UUID:
    """A random UUID (version 4), as ``uuid.uuid4()`` makes."""
    value = next(_buffer.ids, None)
    if value is None:
        _buffer.ids = _read()
        value = next(_buffer.ids)
    return uuid.UUID(int=value)


def _forget_in_child() -> None:
    _buffer.ids = iter(())


os.register_at_fork(after_in_child=_forget_in_child)
