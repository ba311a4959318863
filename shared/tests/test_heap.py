"""A service process's garbage collector, settled once it has started (shared.heap)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from shared import heap
from shared.testing.metrics import metric_value


@pytest.fixture
def restored_collector() -> Iterator[None]:
    """The test process's collector as it was: settling is for a service process."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_settling_frees_start_up_garbage_and_freezes_the_rest_out_of_every_collection() -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    left, right = Node(), Node()
    left.other, right.other = right, left  # a cycle: only the collector frees it
    garbage = weakref.ref(left)
    del left, right

    heap.settle()

    assert garbage() is None  # collected first, not frozen with the rest
    assert gc.get_freeze_count() > 10_000  # the process's modules, classes, functions...
    assert len(gc.get_objects()) < 1_000  # ...which no collection traverses now
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, heap.OLDER_THRESHOLD, heap.OLDER_THRESHOLD)
    assert metric_value("leadflow_heap_frozen_objects") == gc.get_freeze_count()
