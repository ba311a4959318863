"""The order in which the consumer handles one fetch's records (no broker needed)."""

from __future__ import annotations

from shared.kafka.consumer import in_time_order
from shared.testing.kafka_tools import ConsumedRecord


def record(topic: str, offset: int, timestamp: int) -> ConsumedRecord:
    return ConsumedRecord(topic, 0, offset, None, None, [], timestamp)


def coordinates(records: list[ConsumedRecord]) -> list[tuple[str, int]]:
    return [(each.topic, each.offset) for each in records]


def test_partitions_are_interleaved_by_the_time_their_records_were_written() -> None:
    routed = [record("leads.routed", 0, 1_000), record("leads.routed", 1, 3_000)]
    feedback = [record("leads.feedback", 0, 2_000), record("leads.feedback", 1, 4_000)]
    assert coordinates(in_time_order([feedback, routed])) == [
        ("leads.routed", 0),
        ("leads.feedback", 0),
        ("leads.routed", 1),
        ("leads.feedback", 1),
    ]


def test_a_partition_keeps_its_own_order_whatever_its_timestamps_say() -> None:
    # Two producers with clocks apart wrote to one partition: its offsets still rule.
    skewed = [record("leads.scored", 0, 5_000), record("leads.scored", 1, 1_000)]
    other = [record("leads.routed", 0, 3_000)]
    assert coordinates(in_time_order([skewed, other])) == [
        ("leads.routed", 0),
        ("leads.scored", 0),
        ("leads.scored", 1),
    ]


def test_records_written_in_the_same_millisecond_keep_the_fetch_order() -> None:
    first = [record("leads.routed", 0, 1_000)]
    second = [record("leads.feedback", 0, 1_000)]
    assert coordinates(in_time_order([first, second])) == [
        ("leads.routed", 0),
        ("leads.feedback", 0),
    ]
