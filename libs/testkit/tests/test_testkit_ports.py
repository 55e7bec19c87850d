"""free_port: bindable now, below the ephemeral range with room for the UI, never handed out twice."""

from __future__ import annotations

import socket

import pytest
from ticketflow.runtime.devserver import UI_PORT_OFFSET
from ticketflow.testkit import free_port, ports


def bind(port: int) -> None:
    """Bind and listen on ``port`` as a server does (SO_REUSEADDR), then let it go."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()


class Repeating:
    """A stand-in for the module's random generator that draws the given numbers in order."""

    def __init__(self, *draws: int) -> None:
        self.draws = list(draws)

    def randint(self, lo: int, hi: int) -> int:
        drawn = self.draws.pop(0)
        assert lo <= drawn <= hi, (lo, drawn, hi)
        return drawn


def test_a_port_is_bindable() -> None:
    bind(free_port())


def test_ports_are_below_the_ephemeral_range_with_room_for_the_ui() -> None:
    low, _ = ports._ephemeral_range()
    if low <= 12_000 + UI_PORT_OFFSET:
        pytest.skip(f"ephemeral range starts at {low}: too low to leave room below it")
    for _ in range(50):
        assert 10_000 <= free_port() < low - UI_PORT_OFFSET


def test_never_the_same_port_twice() -> None:
    handed = [free_port() for _ in range(200)]
    assert len(set(handed)) == len(handed)


def test_a_port_drawn_again_is_skipped_while_still_free(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = free_port(), free_port()
    monkeypatch.setattr(ports, "_handed_out", set())  # as in a fresh process
    monkeypatch.setattr(ports, "_rng", Repeating(a, a, b))
    assert free_port() == a
    bind(a)  # still free: only the memory of having handed it out refuses it now
    assert free_port() == b


def test_a_busy_port_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    busy, fresh = free_port(), free_port()
    monkeypatch.setattr(ports, "_handed_out", set())  # only busyness can refuse ``busy`` now
    monkeypatch.setattr(ports, "_rng", Repeating(busy, fresh))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", busy))
        server.listen()
        assert free_port() == fresh


def test_a_crowded_machine_falls_back_to_the_os_without_repeating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ports, "port_is_free", lambda host, port: False)
    handed = [free_port() for _ in range(20)]
    assert len(set(handed)) == len(handed)
    for port in handed:
        bind(port)


def test_the_fallback_never_repeats_a_port_the_os_picks_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = free_port(), free_port()
    monkeypatch.setattr(ports, "_handed_out", set())
    monkeypatch.setattr(ports, "port_is_free", lambda host, port: False)
    picks = [a, a, b]
    monkeypatch.setattr(ports, "_os_pick", lambda host: picks.pop(0))
    assert [free_port(), free_port()] == [a, b]
