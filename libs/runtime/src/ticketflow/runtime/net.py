"""Addresses and TCP ports on this host: parse ``host:port``, probe a port, wait for one to open."""

from __future__ import annotations

import socket
import subprocess
import time

__all__ = ["parse_address", "port_is_free", "port_is_open", "wait_for_port"]


def parse_address(address: str, *, default_port: int | None = None) -> tuple[str, int]:
    """Split "host:port" (or "[v6]:port"); raise ValueError with the offending text."""
    host, sep, port_text = address.strip().rpartition(":")
    if not sep:
        host, port_text = address.strip(), ""
    host = host.removeprefix("[").removesuffix("]")
    if not port_text:
        if default_port is None:
            raise ValueError(f"{address!r} has no port (expected host:port)")
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{address!r}: port {port_text!r} is not a number") from None
    if not host or not 0 < port < 65536:
        raise ValueError(f"{address!r} is not host:port with a port in 1..65535")
    return host, port


def port_is_free(host: str, port: int) -> bool:
    """True when a server could bind ``host:port`` now (SO_REUSEADDR, as servers use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_is_open(host: str, port: int, *, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str,
    port: int,
    deadline: float,
    *,
    process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
    interval: float = 0.05,
) -> None:
    """Poll until ``host:port`` accepts connections.

    ``deadline`` is a ``time.monotonic()`` instant. Raises ``TimeoutError`` past it, and
    ``RuntimeError`` at once if ``process`` (the server expected to open the port) has exited.
    """
    while True:
        if port_is_open(host, port, timeout=max(0.05, min(0.5, deadline - time.monotonic()))):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"the process meant to listen on {host}:{port} exited with code {process.returncode}"
            )
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} yet (deadline passed)")
        time.sleep(interval)
