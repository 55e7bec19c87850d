"""Temporal's failures as the api's errors (`errors.py`), translated in this one place.

Every call of `TicketGateway` runs inside `TemporalErrors.translated()`: what a call expects (a
missing workflow, a query no worker answered, a refused update) it turns into an `ApiError` itself;
whatever is left (an unreachable server, a timed-out deadline, a refusing server) becomes the same
503 here, so the service layer and its transports never see a Temporal exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from .errors import ApiError, NoLiveAnswer, TemporalRefused, TemporalUnavailable, Unavailable

__all__ = [
    "UNREACHABLE",
    "TemporalErrors",
    "is_connect_failure",
    "is_no_poller",
    "outage_behind",
    "reason",
]

log = logging.getLogger("ticketflow.api.temporal")

# Statuses meaning "the server (or the way to it) is not answering", not "your request is wrong".
UNREACHABLE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


def is_connect_failure(exc: BaseException) -> bool:
    """The lazy client reports a refused or timed-out connection as a RuntimeError from the bridge."""
    return isinstance(exc, RuntimeError) and "client connect" in str(exc).lower()


def is_no_poller(exc: RPCError) -> bool:
    """The server's "no worker polls this task queue" answer to a query.

    FAILED_PRECONDITION "no poller seen for task queue recently, worker may be down" (Temporal's
    matching service): the normal state right after Temporal restarts, until the workers poll
    again, and while no worker runs at all. Not a refusal of the call: no worker answered yet.
    """
    return exc.status == RPCStatusCode.FAILED_PRECONDITION and "poller" in exc.message.lower()


def outage_behind(exc: BaseException | None) -> TemporalUnavailable | None:
    """The `TemporalUnavailable` behind an error, if any: itself, or its cause (a decision whose
    answer did not come because Temporal went away is `DecisionOutcomeUnknown` caused by one)."""
    while exc is not None:
        if isinstance(exc, TemporalUnavailable):
            return exc
        exc = exc.__cause__
    return None


def reason(exc: BaseException) -> str:
    """A short reason for an error's details: the RPC status and message, or "timed out"."""
    if isinstance(exc, RPCError):
        return f"{exc.status.name}: {exc.message}"
    return "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__


class TemporalErrors:
    """The translation of one Temporal server's failures (its address and namespace in messages)."""

    def __init__(self, address: str, namespace: str) -> None:
        self.address = address
        self.namespace = namespace

    @asynccontextmanager
    async def translated(self, deadline_s: float | None = None) -> AsyncIterator[None]:
        """Run the body (under ``deadline_s`` when given) and translate what it lets escape.

        An `ApiError` passes as it is; a timeout or connect failure is `TemporalUnavailable`; any
        other RPC error is what `refused` says.
        """
        try:
            if deadline_s is None:
                yield
            else:
                async with asyncio.timeout(deadline_s):
                    yield
        except ApiError:
            raise
        except (TimeoutError, RPCTimeoutOrCancelledError) as exc:
            raise TemporalUnavailable(self.address, "timed out") from exc
        except RPCError as exc:
            raise self.refused(exc) from exc
        except RuntimeError as exc:
            if is_connect_failure(exc):
                raise TemporalUnavailable(self.address, "connection failed") from exc
            raise

    def refused(self, exc: RPCError) -> ApiError:
        """An RPC error nobody expected: the server is away, no worker polls yet (`NoLiveAnswer`,
        logged as a warning), or it refuses (a deployment problem, logged as an error)."""
        if exc.status in UNREACHABLE:
            return TemporalUnavailable(self.address, reason(exc))
        if self._namespace_missing(exc):
            return self._no_namespace()
        if is_no_poller(exc):
            log.warning("Temporal at %s: no worker polls yet: %s", self.address, reason(exc))
            return NoLiveAnswer(
                f"no worker answered yet on Temporal at {self.address} ({reason(exc)}); try "
                "later (is the core worker running?)"
            )
        # INVALID_ARGUMENT here is never the caller's fault (inputs are validated before); the
        # usual cause is a search attribute that was not registered on this server.
        log.error("Temporal at %s refused a call: %s", self.address, reason(exc))
        return TemporalRefused(self.address, reason(exc))

    def is_not_found(self, exc: RPCError) -> bool:
        """NOT_FOUND of the workflow asked about; a missing namespace raises `Unavailable` instead."""
        if self._namespace_missing(exc):
            raise self._no_namespace() from exc
        return exc.status == RPCStatusCode.NOT_FOUND

    @staticmethod
    def _namespace_missing(exc: RPCError) -> bool:
        # NOT_FOUND also means "no such namespace": a deployment error, not a missing ticket.
        return exc.status == RPCStatusCode.NOT_FOUND and "namespace" in exc.message.lower()

    def _no_namespace(self) -> Unavailable:
        return Unavailable(f"namespace {self.namespace!r} not found on Temporal at {self.address}")
