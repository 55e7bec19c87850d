"""ticketflow.runtime.net: host:port parsing, port probes, waiting for a port to open."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from ticketflow.runtime.net import parse_address, port_is_free, port_is_open, wait_for_port
from ticketflow.testkit import free_port


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7233", ("127.0.0.1", 7233)),
        ("localhost:80", ("localhost", 80)),
        ("[::1]:50052", ("::1", 50052)),
        (" temporal:7233 ", ("temporal", 7233)),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:x", ":7233", "h:0", "h:70000"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="port"):
        parse_address(text)


def test_parse_address_default_port() -> None:
    assert parse_address("temporal", default_port=7233) == ("temporal", 7233)


def test_port_probes() -> None:
    port = free_port()
    assert port_is_free("127.0.0.1", port)
    assert not port_is_open("127.0.0.1", port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not port_is_free("127.0.0.1", port)
        assert port_is_open("127.0.0.1", port)
        wait_for_port("127.0.0.1", port, time.monotonic() + 10)


def test_wait_for_port_deadline_and_dead_process() -> None:
    port = free_port()
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", port, time.monotonic())
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])
    process.wait()
    with pytest.raises(RuntimeError, match="code 4"):
        wait_for_port("127.0.0.1", port, time.monotonic() + 60, process=process)
