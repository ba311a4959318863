"""Prometheus metrics of the event runtime, labelled by service and logical topic."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "leadflow_events_consumed",
    "Records handled to completion by a consumer (duplicates included).",
    ["service", "topic"],
)
EVENTS_DUPLICATE = Counter(
    "leadflow_events_duplicate",
    "Records whose event id was already processed: skipped with no second effect.",
    ["service", "topic"],
)
EVENTS_PUBLISHED = Counter(
    "leadflow_events_published",
    "Events the outbox relay published and the broker acknowledged.",
    ["service", "topic"],
)
EVENTS_FAILED = Counter(
    "leadflow_events_failed",
    "Handler attempts that raised (a record retried three times counts three).",
    ["service", "topic"],
)
EVENTS_DEAD_LETTERED = Counter(
    "leadflow_events_dead_lettered",
    "Records sent to the dead-letter topic after their last attempt or as malformed.",
    ["service", "topic"],
)
HANDLER_SECONDS = Histogram(
    "leadflow_handler_seconds",
    "Time from the start of a batch's transaction to its commit, per record.",
    ["service", "topic"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CONSUMER_LAG = Gauge(
    "leadflow_consumer_lag",
    "Records on the partition not yet consumed by this service (high water mark - position).",
    ["service", "topic", "partition"],
)
# The parts of a hop, a millisecond to seconds: where a lead's latency goes between topics.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONSUMER_WAIT_SECONDS = Histogram(
    "leadflow_consumer_wait_seconds",
    "Time from a record's being produced (its timestamp) to the start of its batch's handling:"
    " on the broker, in the fetch, behind the batch before it.",
    ["service", "topic"],
    buckets=_LATENCY_BUCKETS,
)
CONSUMER_BATCH_SECONDS = Histogram(
    "leadflow_consumer_batch_seconds",
    "Each step of a batch: transaction (decode, handlers, database commit, in a worker thread)"
    " and offset_commit (the partitions' offsets to Kafka, while the next batch is handled).",
    ["service", "step"],
    buckets=_LATENCY_BUCKETS,
)
OUTBOX_DELAY_SECONDS = Histogram(
    "leadflow_outbox_delay_seconds",
    "Time from an event's being added to the outbox, inside its transaction, to the broker's"
    " acknowledgement of its record.",
    ["service"],
    buckets=_LATENCY_BUCKETS,
)
OUTBOX_PENDING = Gauge(
    "leadflow_outbox_pending",
    "Events written to the outbox and not yet acknowledged by the broker.",
    ["service"],
)
HEAP_FROZEN_OBJECTS = Gauge(
    "leadflow_heap_frozen_objects",
    "Objects the garbage collector froze once the process had started (shared.heap): no"
    " collection traverses them.",
)
