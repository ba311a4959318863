"""In order per lead and subscription (per lead and CRM for write-backs).

Messages of one *stream* go out one at a time, oldest first: a message waits until every
earlier message of its stream is delivered or given up. The repository's claim query says
the same in SQL; this is the rule it is tested against.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Unsettled:
    """A message neither delivered nor given up."""

    id: int  # insertion order: a stream's messages are created in event order
    stream: Hashable
    due_at: datetime
    leased_until: datetime | None = None  # another worker holds it until then
    held: bool = False  # its stream is paused (subscription paused or disabled)


def dispatchable(unsettled: Iterable[Unsettled], now: datetime) -> list[Unsettled]:
    """What may be sent at ``now``: the head of each stream, when due, free and not held."""
    heads: dict[Hashable, Unsettled] = {}
    for message in unsettled:
        head = heads.get(message.stream)
        if head is None or message.id < head.id:
            heads[message.stream] = message
    return sorted(
        (
            head
            for head in heads.values()
            if head.due_at <= now
            and not head.held
            and (head.leased_until is None or head.leased_until <= now)
        ),
        key=lambda message: message.id,
    )
