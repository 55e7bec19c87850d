"""A circuit breaker: after repeated failures, refuse at once instead of waiting for a dead server.

Used by `TicketGateway` around every Temporal call (`temporal.py`). The state machine only; what
counts as a failure, and what a probe is, the gateway decides:

    CLOSED ──`failure_threshold` consecutive failures──▶ OPEN ──`cooldown_s` later──▶ HALF_OPEN
      ▲                                                   ▲                              │
      └──────────────── the probe succeeded ──────────────┼──────────────────────────────┤
                                                          └────── the probe failed ──────┘

In HALF_OPEN exactly one caller is admitted as the probe; the others are refused until it ends.

Why not a library: `purgatory` (asyncio) and `pybreaker` / `aiobreaker` / `circuitbreaker` were
evaluated. None admits a single probe in half-open (all let every concurrent call through, which
is the stampede this is here to prevent), none tells the time left before the next probe (the
`Retry-After` of a refusal), and they read the wall clock (`time.time()` / `datetime.now()`), so
a clock step changes the cool-down and a test cannot inject a clock; pybreaker is built on
threads (its asyncio support goes through tornado) and aiobreaker has had no release since 2021.
This class is small, synchronous (one event loop: no await inside, so no lock) and tested with an
injected clock (`tests/test_api_circuit.py`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from enum import Enum, StrEnum

__all__ = ["Admission", "CircuitBreaker", "CircuitOpen", "CircuitState"]


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Admission(Enum):
    """What an admitted caller is: a normal call, or the probe of a half-open circuit."""

    CALL = "call"
    PROBE = "probe"


class CircuitOpen(Exception):
    """Refused without calling: the circuit is open (or half-open with its probe under way)."""

    def __init__(self, retry_after_s: int, failures: int, last_failure: str) -> None:
        super().__init__(f"circuit open after {failures} failures; retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s
        self.failures = failures
        self.last_failure = last_failure


class CircuitBreaker:
    """Consecutive-failure circuit breaker on a monotonic clock.

    `name` is what the two log lines name ("Temporal at 127.0.0.1:7233"): one when the circuit
    opens, one when it closes again; refusals and failed probes are never logged above DEBUG, so
    an outage costs two lines whatever the traffic.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if not cooldown_s > 0:
            raise ValueError("cooldown_s must be positive")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._log = logger or logging.getLogger(__name__)
        self._state = CircuitState.CLOSED
        self._failures = 0  # consecutive, while CLOSED; since opening, while not CLOSED
        self._last_failure = ""
        self._opened_at = 0.0  # when the circuit (re)opened: the cool-down starts there
        self._first_opened_at = 0.0  # when this outage began (the close line says how long)
        self._probing = False
        self._refused = 0  # calls refused since the circuit opened (the close line says how many)

    @property
    def state(self) -> CircuitState:
        """The state now: an OPEN circuit whose cool-down has passed is HALF_OPEN."""
        if self._state is CircuitState.OPEN and self._clock() >= self._opened_at + self.cooldown_s:
            self._state = CircuitState.HALF_OPEN
        return self._state

    def retry_after_s(self) -> int:
        """Whole seconds a refused caller should wait (at least 1): until the next probe when
        open, a moment when half-open or closed."""
        if self.state is CircuitState.OPEN:
            left = self._opened_at + self.cooldown_s - self._clock()
            return max(1, math.ceil(left))
        return 1

    def admit(self) -> Admission:
        """Let a call through, as a normal call or as the probe; raise `CircuitOpen` if not."""
        state = self.state
        if state is CircuitState.CLOSED:
            return Admission.CALL
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            self._log.debug("%s: circuit half-open, probing", self.name)
            return Admission.PROBE
        self._refused += 1
        raise CircuitOpen(self.retry_after_s(), self._failures, self._last_failure)

    def succeeded(self) -> None:
        """A call reached the server and it answered. Counts only while CLOSED: a call admitted
        before the circuit opened and ending late does not close it; the probe decides."""
        if self._state is CircuitState.CLOSED:
            self._failures = 0

    def failed(self, reason: str) -> None:
        """A call could not reach the server, or it timed out."""
        self._last_failure = reason
        if self._state is not CircuitState.CLOSED:
            self._failures += 1  # late, or refused meanwhile: the open line already said it
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._open()
            self._first_opened_at = self._opened_at
            self._log.warning(
                "%s: %d consecutive calls failed (last: %s); circuit open: answering 503 at "
                "once, probing every %gs until it answers",
                self.name,
                self._failures,
                reason,
                self.cooldown_s,
            )

    def probe_succeeded(self) -> None:
        """The probe reached the server: close the circuit."""
        down_for = self._clock() - self._first_opened_at
        self._log.info(
            "%s answers again: circuit closed after %.1fs open (%d calls refused, %d failed)",
            self.name,
            down_for,
            self._refused,
            self._failures,
        )
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._refused = 0
        self._probing = False

    def probe_failed(self, reason: str) -> None:
        """The probe could not reach the server: open again for another cool-down."""
        self._last_failure = reason
        self._failures += 1
        self._log.debug("%s: probe failed (%s); circuit open again", self.name, reason)
        self._open()

    def probe_abandoned(self) -> None:
        """The probe ended without a verdict (cancelled): the next caller probes instead."""
        self._probing = False

    def _open(self) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = self._clock()
        self._probing = False
