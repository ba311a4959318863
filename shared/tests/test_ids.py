"""new_uuid: random version-4 UUIDs from a buffer per thread, and none twice across a fork."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from shared.ids import IDS_PER_READ, new_uuid


def test_ids_are_random_version_4_uuids_as_uuid4_makes() -> None:
    ids = [new_uuid() for _ in range(IDS_PER_READ * 3 + 1)]
    assert all(isinstance(each, uuid.UUID) for each in ids)
    assert {each.version for each in ids} == {4}
    assert {each.variant for each in ids} == {uuid.RFC_4122}
    assert len(set(ids)) == len(ids)
    # The other 122 bits are random: across these ids each of them is seen both ways.
    fixed = ~((0xC000 << 48) | (0xF000 << 64)) & (2**128 - 1)
    ones = 0
    zeros = 0
    for each in ids:
        ones |= each.int
        zeros |= ~each.int
    assert ones & fixed == fixed
    assert zeros & fixed == fixed


def test_threads_do_not_share_ids() -> None:
    made: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def make(into: list[uuid.UUID]) -> None:
        into.extend(new_uuid() for _ in range(IDS_PER_READ * 2))

    threads = [threading.Thread(target=make, args=(each,)) for each in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [each for ids in made for each in ids]
    assert len(set(every)) == len(every)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_does_not_hand_out_its_parents_next_ids() -> None:
    new_uuid()  # the buffer holds this thread's next ids now
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.close(read)
        os.write(write, b"".join(new_uuid().bytes for _ in range(8)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        sent = pipe.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    in_child = {uuid.UUID(bytes=sent[start : start + 16]) for start in range(0, len(sent), 16)}
    in_parent = {new_uuid() for _ in range(8)}
    assert len(in_child) == 8
    assert not in_child & in_parent
