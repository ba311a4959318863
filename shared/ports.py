"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_RANGE = (32768, 60999)
# Below the ephemeral range and above the ports of well-known services.
LOWEST = 10_000


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands to outgoing connections (Linux; its default elsewhere)."""
    try:
        low, high = (int(value) for value in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return LINUX_EPHEMERAL_RANGE
    return low, high


def free_port() -> int:
    """A port nobody listens on right now, for a server the caller starts soon after.

    It is taken below the kernel's ephemeral range: a port the kernel picks (``bind`` to 0)
    may be handed to a client's outgoing connection before the server binds it, and the
    server then fails to start with "address already in use" (seen once in the end-to-end
    bench, whose processes open many connections). Where no such range is left, the kernel
    picks."""
    below = range(LOWEST, ephemeral_range()[0])
    for port in random.sample(below, k=min(200, len(below))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
