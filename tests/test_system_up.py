"""`leadflow up` (what `make run` calls): the whole system comes up, and goes down cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from shared.ports import free_port
from shared.system import SERVICES

pytestmark = pytest.mark.e2e


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Output:
    """Collects a process's output lines in a thread, so the test can wait for one."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} after {timeout}s:\n" + "\n".join(self.lines))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def test_leadflow_up_runs_every_service_and_stops_them_all(tmp_path: Path) -> None:
    ports = {name: free_port() for name in SERVICES}
    environment = {
        **os.environ,
        "LEADFLOW_DATA_DIR": str(tmp_path / ".data"),
        "LEADFLOW_TOPIC_NAMESPACE": f"up{uuid.uuid4().hex[:8]}",
        **{f"LEADFLOW_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "up"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(process)
    try:
        output.wait_for("Ctrl-C stops everything.", timeout=240)
        for name, port in ports.items():
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            assert ready.json() == {"status": "ready", "checks": {"database": "ok", "kafka": "ok"}}
            assert f"{name:<10} http://127.0.0.1:{port}" in output.text
            # Its start-up heap frozen out of the garbage collector's passes (shared.heap).
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            frozen = re.search(r"^leadflow_heap_frozen_objects (\S+)$", metrics, re.M)
            assert frozen is not None, name
            assert float(frozen.group(1)) > 10_000, name
            assert (tmp_path / ".data" / f"{name}.db").exists()
        service_pids = [int(pid) for pid in re.findall(r"/docs, pid (\d+), log", output.text)]
        assert len(service_pids) == len(SERVICES)
        broker_pid = re.search(r"\(local, pid (\d+)", output.text)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        returncode = process.wait(120)
    assert returncode == 0, output.text
    output.wait_for("Stopped.", timeout=5)
    for pid in service_pids:
        assert not alive(pid), f"service pid {pid} still running"
    if broker_pid:
        assert not alive(int(broker_pid.group(1))), "the local broker is still running"
