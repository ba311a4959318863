"""Ports for the servers the harness and `leadflow up` start."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from shared import ports


def test_a_free_port_is_below_the_range_the_kernel_gives_outgoing_connections() -> None:
    low, _ = ports.ephemeral_range()
    chosen = {ports.free_port() for _ in range(20)}
    assert all(ports.LOWEST <= port < low for port in chosen)
    assert len(chosen) > 1  # not the same one every time
    for port in chosen:  # and free: a server can bind it
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def listening_beside_a_free_port() -> socket.socket:
    """A server listening on a port whose next one is free."""
    while True:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", server.getsockname()[1] + 1))
            except OSError:
                server.close()
                continue
        server.listen()
        return server


def test_a_port_taken_by_a_listening_server_is_not_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    with listening_beside_a_free_port() as server:
        taken = int(server.getsockname()[1])
        # The two ports are the only ones below the range.
        monkeypatch.setattr(ports, "LOWEST", taken)
        monkeypatch.setattr(ports, "ephemeral_range", lambda: (taken + 2, 65535))
        assert {ports.free_port() for _ in range(10)} == {taken + 1}


def test_the_range_is_read_from_the_kernel_and_defaults_to_linuxs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = tmp_path / "ip_local_port_range"
    settings.write_text("40000\t50000\n")
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", settings)
    assert ports.ephemeral_range() == (40000, 50000)
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", tmp_path / "absent")
    assert ports.ephemeral_range() == ports.LINUX_EPHEMERAL_RANGE
