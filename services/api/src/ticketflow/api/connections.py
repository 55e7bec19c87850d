"""Slow and surplus HTTP clients: bounded in time and count, and counted, never logged one by one.

uvicorn bounds an idle kept-alive connection (`timeout_keep_alive`) but not a request that is being
sent: a client that sends half its headers, or a body slower than a trickle, holds a socket and a
file descriptor for as long as it likes. A few hundred of them used to exhaust the descriptors and
take `/healthz` down with them. Here a subclass of uvicorn's h11 protocol (`config.http` takes a
protocol class) adds, per connection:

- a header deadline: a new connection, or the next request on a kept-alive one once its first byte
  arrives, must complete its request headers within `header_timeout_s`;
- a body deadline: once the headers are in, the declared body must arrive within `body_timeout_s`
  (a total, not a rate: bodies are at most `TICKETFLOW_MAX_BODY_BYTES`, 64 KiB by default);
- a connection limit: at `max_connections` open connections a new one evicts the connection that
  has waited longest for its client (a request not yet complete, or an idle kept-alive one), as
  nginx reuses its idle connections when it runs out. Only when every connection is busy with a
  request the server is working on is the new one closed at once.

A timed-out or evicted client that has sent part of a request gets a JSON error (408
`request_timeout`, 503 `too_many_connections`) with `Connection: close`; one that has sent nothing
is just closed. Eviction, rather than uvicorn's `limit_concurrency` (a 503 for every request past
the limit, `/healthz` included), keeps the probes answering while slow clients hold every other
slot: a probe completes its request in milliseconds, so it is never the one waiting longest.

Each refusal is counted by `RefusalLog`, which writes at most one line per interval, never a line
(let alone a traceback) per connection. That includes asyncio's own complaint when `accept()` runs
out of descriptors anyway (a burst arriving faster than the limit closes them): Python 3.11 goes on
calling `accept()` after the first EMFILE, up to the listen backlog (uvicorn's 2048) times, and
logs each failure with a traceback (CPython issue 151615), which is what once wrote 78 MB of log
in 25 s. `count_accept_failures` routes them into the same summary; asyncio still pauses accepting
for 1 s, and meanwhile the limit closes the surplus.

Why a protocol subclass rather than another server with such deadlines (hypercorn, granian): the
api's process plumbing (graceful drain of both servers, port 0 and the startup line, one log
format, the process tests) is built on uvicorn, and a per-read idle timeout alone would still let a
client that sends a byte now and then hold its connection. This subclass relies on
`H11Protocol`'s attributes (`conn`, `cycle`, `transport`, `on_response_complete`), which the tests
here exercise through real sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import error_body
from .settings import Settings

__all__ = [
    "ConnectionGuard",
    "HttpLimits",
    "RefusalLog",
    "count_accept_failures",
    "descriptor_limit",
    "grpc_max_connections",
    "guarded_protocol",
    "http_limits",
]

log = logging.getLogger("ticketflow.api.connections")

# Each kind of refusal as the summary line counts it ("12 closed: request headers ...").
HEADER_TIMEOUT = "closed: request headers not complete in time"
BODY_TIMEOUT = "closed: request body not complete in time"
EVICTED = "evicted at the connection limit (waited longest for their client)"
AT_LIMIT = "closed at once at the connection limit (every connection busy)"
NO_DESCRIPTOR = "failed accept() calls: out of file descriptors (asyncio retries after 1 s)"


def descriptor_limit() -> int:
    """This process's soft RLIMIT_NOFILE (every socket costs one)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


# Unless set, HTTP may hold half of the descriptors and gRPC a quarter; the rest is for everything
# else (Temporal, the read model, the event loop: about 25 when idle) and for a burst of accepts
# that arrives before the limit closes the surplus.
_HTTP_SHARE, _HTTP_MAX = 2, 4096
_GRPC_SHARE, _GRPC_MAX = 4, 1024
_MIN_CONNECTIONS = 16


def _share(divisor: int, ceiling: int) -> int:
    return max(_MIN_CONNECTIONS, min(ceiling, descriptor_limit() // divisor))


def http_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(
        max_connections=settings.http_max_connections or _share(_HTTP_SHARE, _HTTP_MAX),
        header_timeout_s=settings.http_header_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
    )


def grpc_max_connections(settings: Settings) -> int:
    return settings.grpc_max_connections or _share(_GRPC_SHARE, _GRPC_MAX)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_connections: int
    header_timeout_s: float
    body_timeout_s: float

    def describe(self) -> str:
        return (
            f"at most {self.max_connections} connections, request headers within "
            f"{self.header_timeout_s:g} s, body within {self.body_timeout_s:g} s"
        )


class RefusalLog:
    """Counts refusals by kind; logs the first at once, then one summary line per interval."""

    def __init__(self, what: str, interval_s: float = 10.0, logger: logging.Logger = log) -> None:
        self._what = what
        self._interval = interval_s
        self._log = logger
        self._counts: Counter[str] = Counter()
        self._last: float | None = None  # loop time of the last line
        self._timer: asyncio.TimerHandle | None = None

    def count(self, kind: str) -> None:
        self._counts[kind] += 1
        if self._timer is not None:
            return  # a summary is already due
        loop = asyncio.get_running_loop()
        if self._last is None or loop.time() - self._last >= self._interval:
            self.flush()
        else:
            self._timer = loop.call_at(self._last + self._interval, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._counts:
            return
        kinds = "; ".join(f"{n} {kind}" for kind, n in self._counts.most_common())
        now = asyncio.get_running_loop().time()
        since = "" if self._last is None else f" in the last {round(now - self._last, 1):g} s"
        self._log.warning("%s refused%s: %s", self._what, since, kinds)
        self._counts.clear()
        self._last = now

    def close(self) -> None:
        """Log what is still counted (at shutdown)."""
        self.flush()


class ConnectionGuard:
    """The open connections of one HTTP server, and those waiting for their client, oldest first."""

    def __init__(self, limits: HttpLimits, refusals: RefusalLog) -> None:
        self.limits = limits
        self.refusals = refusals
        self.open: set[GuardedH11Protocol] = set()
        self.waiting: OrderedDict[GuardedH11Protocol, None] = OrderedDict()

    def admit(self, conn: GuardedH11Protocol) -> bool:
        if len(self.open) >= self.limits.max_connections:
            if not self.waiting:
                self.refusals.count(AT_LIMIT)
                return False
            oldest = next(iter(self.waiting))
            self.refusals.count(EVICTED)
            oldest.close_with(503, "too_many_connections", "too many connections; try again")
        self.open.add(conn)
        return True

    def forget(self, conn: GuardedH11Protocol) -> None:
        self.open.discard(conn)
        self.waiting.pop(conn, None)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and the limit of a `ConnectionGuard`."""

    guard: ClassVar[ConnectionGuard]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._timer: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # "headers" or "body" while waiting for the client
        if not self.guard.admit(self):
            transport.close()
            return
        self._wait("headers", arm=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def _follow(self) -> None:
        """Set the deadline for what the connection now waits for (h11 knows where it stands)."""
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # The next request. A kept-alive connection without a byte of it is idle: uvicorn's
            # keep-alive timer closes it. Its first byte starts the header deadline.
            started = bool(self.conn.trailing_data[0])
            if self._phase != "headers":
                self._wait("headers", arm=started)
            elif self._timer is None and started:
                self._arm(self.guard.limits.header_timeout_s, HEADER_TIMEOUT)
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._wait("body", arm=True)
        else:  # the request is in: the server is working on it, the client waits for us
            self._cancel_timer()
            self._phase = None
            self.guard.waiting.pop(self, None)

    def _wait(self, phase: str, *, arm: bool) -> None:
        self._cancel_timer()
        if self._phase is None:  # now waiting for the client: the newest in line
            self.guard.waiting[self] = None
        self._phase = phase
        if arm:
            limits = self.guard.limits
            if phase == "headers":
                self._arm(limits.header_timeout_s, HEADER_TIMEOUT)
            else:
                self._arm(limits.body_timeout_s, BODY_TIMEOUT)

    def _arm(self, seconds: float, kind: str) -> None:
        self._timer = self.loop.call_later(seconds, self._timed_out, kind, seconds)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, kind: str, seconds: float) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        self.guard.refusals.count(kind)
        part = "headers" if kind is HEADER_TIMEOUT else "body"
        self.close_with(408, "request_timeout", f"request {part} not received within {seconds:g} s")

    def close_with(self, status: int, code: str, message: str) -> None:
        """Close now; first answer `status` if the client sent part of a request and has no
        answer started (one that has sent nothing, or an idle kept-alive one, is just closed)."""
        self._cancel_timer()
        self.guard.forget(self)
        cycle = self.cycle
        if self._phase == "body":
            answer = cycle is not None and not cycle.response_started
        else:
            answer = self._phase == "headers" and bool(self.conn.trailing_data[0])
        self._phase = None
        if answer:
            self.transport.write(_raw_response(status, code, message))
        if cycle is not None and not cycle.response_complete:
            # The app (if it runs) now reads `http.disconnect` and its answer goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """A protocol class for `uvicorn.Config(http=...)` whose connections `guard` watches."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})


def _raw_response(status: int, code: str, message: str) -> bytes:
    # Written past h11: for a request h11 has not parsed yet it has nothing to answer.
    body = json.dumps(error_body(code, message)).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


def count_accept_failures(
    loop: asyncio.AbstractEventLoop, refusals: RefusalLog
) -> Callable[[], None]:
    """Count asyncio's "accept() out of system resource" in `refusals` instead of logging a
    traceback for each; everything else goes to the handler that was there. Returns the undo."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == "socket.accept() out of system resource":
            refusals.count(NO_DESCRIPTOR)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return lambda: loop.set_exception_handler(previous)
