"""The circuit breaker around Temporal: its state machine on an injected clock, and the gateway's
use of it (what counts as a failure, the probe, what a refusal says) with a stand-in client."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode
from ticketflow.api import Settings
from ticketflow.api._circuit import Admission, CircuitBreaker, CircuitOpen, CircuitState
from ticketflow.api.errors import TemporalUnavailable, TicketNotFound
from ticketflow.api.temporal import TicketGateway


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, *, threshold: int = 3, cooldown_s: float = 2.0) -> CircuitBreaker:
    return CircuitBreaker(
        "Temporal at test", failure_threshold=threshold, cooldown_s=cooldown_s, clock=clock
    )


def refused(circuit: CircuitBreaker) -> CircuitOpen:
    with pytest.raises(CircuitOpen) as info:
        circuit.admit()
    return info.value


# -- the state machine -----------------------------------------------------------------------------


def test_it_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    circuit = breaker(clock)
    circuit.failed("UNAVAILABLE")
    circuit.failed("UNAVAILABLE")
    circuit.succeeded()  # an answer in between: the count starts again
    circuit.failed("UNAVAILABLE")
    circuit.failed("UNAVAILABLE")
    assert circuit.state is CircuitState.CLOSED
    assert circuit.admit() is Admission.CALL
    circuit.failed("DEADLINE_EXCEEDED")
    assert circuit.state is CircuitState.OPEN
    refusal = refused(circuit)
    assert refusal.retry_after_s == 2
    assert refusal.failures == 3
    assert refusal.last_failure == "DEADLINE_EXCEEDED"


def test_retry_after_counts_down_to_the_probe_in_whole_seconds() -> None:
    clock = Clock()
    circuit = breaker(clock, threshold=1, cooldown_s=5.0)
    circuit.failed("UNAVAILABLE")
    assert refused(circuit).retry_after_s == 5
    clock.now += 3.5
    assert refused(circuit).retry_after_s == 2  # 1.5 s left, rounded up
    clock.now += 1.4
    assert refused(circuit).retry_after_s == 1  # never 0
    clock.now += 0.1
    assert circuit.state is CircuitState.HALF_OPEN


def test_half_open_admits_one_probe_and_refuses_the_others_until_it_ends() -> None:
    clock = Clock()
    circuit = breaker(clock, threshold=1)
    circuit.failed("UNAVAILABLE")
    clock.now += 2.0
    assert circuit.admit() is Admission.PROBE
    assert refused(circuit).retry_after_s == 1  # the probe is under way: ask again soon
    circuit.probe_succeeded()
    assert circuit.state is CircuitState.CLOSED
    assert circuit.admit() is Admission.CALL


def test_a_failed_probe_opens_it_for_another_cool_down() -> None:
    clock = Clock()
    circuit = breaker(clock, threshold=1)
    circuit.failed("UNAVAILABLE")
    clock.now += 2.0
    assert circuit.admit() is Admission.PROBE
    clock.now += 0.5
    circuit.probe_failed("UNAVAILABLE")
    assert circuit.state is CircuitState.OPEN
    assert refused(circuit).retry_after_s == 2
    clock.now += 2.0
    assert circuit.admit() is Admission.PROBE


def test_an_abandoned_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    circuit = breaker(clock, threshold=1)
    circuit.failed("UNAVAILABLE")
    clock.now += 2.0
    assert circuit.admit() is Admission.PROBE
    circuit.probe_abandoned()
    assert circuit.admit() is Admission.PROBE


def test_calls_ending_late_do_not_move_an_open_circuit() -> None:
    clock = Clock()
    circuit = breaker(clock, threshold=1)
    circuit.failed("UNAVAILABLE")
    clock.now += 1.0
    circuit.succeeded()  # admitted before it opened: the probe decides, not this
    circuit.failed("UNAVAILABLE")  # nor does this restart the cool-down
    assert circuit.state is CircuitState.OPEN
    assert refused(circuit).retry_after_s == 1
    clock.now += 1.0
    assert circuit.state is CircuitState.HALF_OPEN


def test_one_line_when_it_opens_and_one_when_it_closes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    circuit = breaker(clock)
    for _ in range(3):
        circuit.failed("UNAVAILABLE: tcp connect error")
    for _ in range(50):
        refused(circuit)
    for _ in range(3):  # three failed probes
        clock.now += 2.0
        circuit.admit()
        circuit.probe_failed("UNAVAILABLE: tcp connect error")
    clock.now += 2.0
    circuit.admit()
    circuit.probe_succeeded()
    loud = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.levelno for r in loud] == [logging.WARNING, logging.INFO]
    opened, closed = (r.getMessage() for r in loud)
    assert "3 consecutive calls failed (last: UNAVAILABLE: tcp connect error)" in opened
    assert "circuit open" in opened
    assert "answers again: circuit closed after 8.0s open (50 calls refused" in closed


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        breaker(Clock(), threshold=0)
    with pytest.raises(ValueError, match="cooldown_s"):
        breaker(Clock(), cooldown_s=0)


# -- the gateway's use of it -------------------------------------------------------------------------

UNAVAILABLE = RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b"")
NOT_FOUND = RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")


class FakeClient:
    """A Temporal client stand-in: a status query and a health check, both counted; `up` says
    whether Temporal answers; `health_gate`, when set, holds the health check until released;
    `health_asked` is set whenever it is called."""

    def __init__(self) -> None:
        self.up = False
        self.queries = 0
        self.health_checks = 0
        self.health_gate: asyncio.Event | None = None
        self.health_asked = asyncio.Event()
        self.service_client = SimpleNamespace(check_health=self.check_health)

    async def check_health(self, **_: Any) -> bool:
        self.health_checks += 1
        self.health_asked.set()
        if self.health_gate is not None:
            await self.health_gate.wait()
        if not self.up:
            raise UNAVAILABLE
        return True

    def get_workflow_handle(self, workflow_id: str) -> Any:
        async def query(*_: Any, **__: Any) -> Any:
            self.queries += 1
            raise NOT_FOUND if self.up else UNAVAILABLE

        return SimpleNamespace(query=query)


def gateway(client: FakeClient, clock: Clock) -> TicketGateway:
    settings = Settings(circuit_failures=3, circuit_cooldown_s=2.0)
    circuit = CircuitBreaker(
        "Temporal at test",
        failure_threshold=settings.circuit_failures,
        cooldown_s=settings.circuit_cooldown_s,
        clock=clock,
    )
    return TicketGateway(settings, client=client, circuit=circuit)  # type: ignore[arg-type]


async def unavailable(call: Any) -> TemporalUnavailable:
    with pytest.raises(TemporalUnavailable) as info:
        await call
    return info.value


async def test_an_open_circuit_answers_at_once_without_calling_temporal() -> None:
    client, clock = FakeClient(), Clock()
    gw = gateway(client, clock)
    for _ in range(3):
        failed = await unavailable(gw.state("t1"))
        assert failed.headers["Retry-After"] in {"1", "2"}  # 2 once this one opened it
    assert gw.circuit.state is CircuitState.OPEN
    calls = (client.queries, client.health_checks)

    for call in (gw.state("t1"), gw.check_ready()):
        refusal = await unavailable(call)
        assert refusal.code == "temporal_unavailable"
        assert refusal.message.startswith("Temporal at 127.0.0.1:7233 is unreachable")
        assert refusal.headers["Retry-After"] == "2"
        assert "not called: the last 3 calls failed" in refusal.reason
    assert (client.queries, client.health_checks) == calls


async def test_after_the_cool_down_a_health_check_probes_and_closes_it() -> None:
    client, clock = FakeClient(), Clock()
    gw = gateway(client, clock)
    for _ in range(3):
        await unavailable(gw.check_ready())
    clock.now += 2.0
    await unavailable(gw.state("t1"))  # the probe: Temporal still down, open again
    assert (client.queries, client.health_checks) == (0, 4)
    assert gw.circuit.state is CircuitState.OPEN

    client.up = True
    clock.now += 2.0
    with pytest.raises(TicketNotFound):  # the probe passes, then the call itself goes through
        await gw.state("t1")
    assert (client.queries, client.health_checks) == (1, 5)
    assert gw.circuit.state is CircuitState.CLOSED


async def test_while_the_probe_runs_the_other_callers_are_refused() -> None:
    client, clock = FakeClient(), Clock()
    gw = gateway(client, clock)
    for _ in range(3):
        await unavailable(gw.check_ready())
    clock.now += 2.0
    client.up = True
    client.health_gate = asyncio.Event()
    client.health_asked.clear()
    probe = asyncio.create_task(gw.check_ready())
    await client.health_asked.wait()
    refusal = await unavailable(gw.state("t1"))
    assert refusal.headers["Retry-After"] == "1"
    assert client.queries == 0
    client.health_gate.set()
    await probe
    assert gw.circuit.state is CircuitState.CLOSED


async def test_a_cancelled_probe_leaves_the_probe_to_the_next_caller() -> None:
    client, clock = FakeClient(), Clock()
    gw = gateway(client, clock)
    for _ in range(3):
        await unavailable(gw.check_ready())
    clock.now += 2.0
    client.health_gate = asyncio.Event()
    client.health_asked.clear()
    probe = asyncio.create_task(gw.check_ready())
    await client.health_asked.wait()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    client.up, client.health_gate = True, None
    await gw.check_ready()  # this caller probes, and closes it
    assert gw.circuit.state is CircuitState.CLOSED


async def test_answers_that_are_errors_still_count_as_temporal_answering() -> None:
    client, clock = FakeClient(), Clock()
    gw = gateway(client, clock)
    for _ in range(2):
        await unavailable(gw.state("t1"))
    client.up = True
    with pytest.raises(TicketNotFound):
        await gw.state("t1")
    client.up = False
    for _ in range(2):
        await unavailable(gw.state("t1"))
    assert gw.circuit.state is CircuitState.CLOSED  # 2 + 2 failures, not 3 in a row
