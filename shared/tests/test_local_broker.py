"""The local broker from Maven jars: KRaft on 127.0.0.1, restartable, stopped by PID."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from shared.cloudevents import Event
from shared.kafka.admin import ensure_topics
from shared.kafka.local_broker import LocalKafka, kafka_version, new_cluster_id
from shared.settings import PlatformSettings
from shared.testing import factories
from shared.testing.kafka_tools import produce, read_topic
from shared.topics import LEADS_SCORED, TopicNames


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_pom_pins_a_kafka_4_1_release() -> None:
    assert kafka_version().startswith("4.1.")


def test_cluster_ids_are_16_random_bytes_in_url_safe_base64() -> None:
    first, second = new_cluster_id(), new_cluster_id()
    assert first != second
    assert len(base64.urlsafe_b64decode(first + "==")) == 16
    assert "=" not in first


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """One in 64 random ids would: the storage tool took it for an option and failed."""
    draws = iter([b"\xfb" + bytes(15), b"\x00" * 16])  # the first encodes to "-w..."
    monkeypatch.setattr("shared.kafka.local_broker.os.urandom", lambda n: next(draws))
    assert new_cluster_id() == base64.urlsafe_b64encode(b"\x00" * 16).decode().rstrip("=")


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a JRE")
async def test_a_local_broker_survives_a_crash_and_stops_by_pid(tmp_path: Path) -> None:
    broker = LocalKafka(cache_dir=PlatformSettings().cache_dir, runs_dir=tmp_path, partitions=1)
    bootstrap = broker.start()
    try:
        assert bootstrap.startswith("127.0.0.1:")
        first_pid = broker.pid
        assert first_pid is not None
        assert alive(first_pid)
        properties = (broker.work_dir / "server.properties").read_text()  # type: ignore[operator]
        assert f"controller.quorum.voters=1@127.0.0.1:{broker.controller_port}" in properties
        assert "advertised.listeners=PLAINTEXT://127.0.0.1:" in properties

        names = TopicNames("crash")
        await ensure_topics(bootstrap, names, [LEADS_SCORED], partitions=1)
        event = Event(data=factories.lead_scored(), source="/test")
        await produce(bootstrap, names.physical("leads.scored"), [event])

        broker.restart(crash=True)  # SIGKILL, then the same ports and data
        assert not alive(first_pid)
        [record] = await read_topic(bootstrap, names.physical("leads.scored"), count=1)
        assert dict(record.headers)["ce_id"].decode() == event.id
    finally:
        pid = broker.pid
        broker.stop()
    assert pid is not None
    assert not alive(pid)
    log = broker.log_path
    assert log is not None
    assert log.exists(), "the broker log is kept after stop"
    assert "Kafka Server started" in log.read_text()
    assert not (broker.work_dir / "data").exists()  # type: ignore[operator]
