"""Free loopback ports for test servers, chosen so that nothing else grabs them first."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from ticketflow.runtime.devserver import UI_PORT_OFFSET
from ticketflow.runtime.net import port_is_free

__all__ = ["free_port", "free_port_block"]

_handed_out: set[int] = set()
_rng = random.Random()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free now and that this process has not handed out before.

    Chosen BELOW the kernel's ephemeral range: the OS gives ports from that range to every
    outgoing connection and to every bind(0) (the dev server picks its internal ports that way),
    so a port taken from it could be grabbed by any busy process between this call and the
    server's bind. Below it, only a process binding that very number could take it. Room is left
    above each port for the dev server's web UI (frontend port + UI_PORT_OFFSET).
    """
    low, _ = _ephemeral_range()
    lo = 10_000 if low > 12_000 + UI_PORT_OFFSET else 1_024
    hi = low - 1 - UI_PORT_OFFSET if low - 1 - UI_PORT_OFFSET > lo + 1_000 else 9_999
    for _ in range(1_000):
        port = _rng.randint(lo, hi)
        if port not in _handed_out and port_is_free(host, port):
            _handed_out.add(port)
            return port
    # Crowded machine: fall back to the OS's pick, which may repeat a port it gave before.
    while (port := _os_pick(host)) in _handed_out:
        pass
    _handed_out.add(port)
    return port


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive free ports (``ticketflow up``'s metrics ports)."""
    for _ in range(1_000):
        base = free_port(host)
        rest = range(base + 1, base + count)
        if all(p not in _handed_out and p < 65536 and port_is_free(host, p) for p in rest):
            _handed_out.update(rest)
            return base
    raise RuntimeError(f"no {count} consecutive free ports on {host}")


def _os_pick(host: str) -> int:
    """A free port of the OS's choosing (from its ephemeral range)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
