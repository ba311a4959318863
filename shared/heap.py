"""The garbage collector of a service process, set for a server that runs for days.

CPython's cyclic collector traverses every container object it tracks in a full
collection. Once its modules, ORM mappings and schemas are loaded, a service holds ~150,000
of them, nearly all for good. Under the end-to-end bench's load each service ran a full
collection every few seconds, 100-600 ms each on this 2-core machine, with the event loop
and the handler thread stopped: the five services spent 10-11 s in collections in a
50-second run, and the tail of accept -> routed was made of those pauses.
"""

from __future__ import annotations

import gc

from shared.observability.metrics import HEAP_FROZEN_OBJECTS

# A young collection every 10,000 net allocations rather than CPython's 700: a batch of 500
# records allocates thousands of objects that live as long as the batch, and every young
# collection during it promoted them to the older generations, whose filling sets off the
# full collections. The older generations are collected every 20 of the younger's passes
# (CPython: 10).
YOUNG_THRESHOLD = 10_000
OLDER_THRESHOLD = 20


def settle() -> None:
    """Call once the service is loaded, before it serves: collect what start-up left behind,
    then freeze the rest (no collection traverses it again; reference counting still frees
    what is released) and collect the young less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD)
    HEAP_FROZEN_OBJECTS.set(gc.get_freeze_count())
