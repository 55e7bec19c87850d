"""Reach Temporal: connect with backoff that a stop request interrupts, and that says what it does.

A service that starts before Temporal (a reboot, a rolling deploy, ``ticketflow up``) waits for it
instead of crashing; a SIGTERM while it waits ends the wait at once, also in the middle of an
attempt. Retries come from tenacity (exponential backoff with jitter, capped), not a loop of ours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio.client import Client
from temporalio.converter import DataConverter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_not_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)
from ticketflow.contracts import DATA_CONVERTER

from .telemetry import temporal_runtime
from .tracing import tracing_interceptors

__all__ = ["CONNECT_ATTEMPT_TIMEOUT", "TemporalUnreachable", "connect"]

T = TypeVar("T")
log = logging.getLogger("ticketflow.runtime")

CONNECT_ATTEMPT_TIMEOUT = timedelta(seconds=5)


class TemporalUnreachable(RuntimeError):
    """Temporal did not answer within the time the caller allowed."""


class _Stopped(Exception):
    """A stop was requested while waiting: not an error, and never retried."""


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event | None) -> T:
    """``await work``, or raise ``_Stopped`` (cancelling it) as soon as ``stop`` is set."""
    if stop is None:
        return await work
    job = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({job, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not job.done():  # stopped, or we were cancelled: the attempt must not outlive us
            job.cancel()
    if job.done():
        return job.result()
    await asyncio.gather(job, return_exceptions=True)
    raise _Stopped


async def connect(
    address: str,
    namespace: str,
    *,
    stop: asyncio.Event | None = None,
    give_up_after_s: float | None = None,
    data_converter: DataConverter = DATA_CONVERTER,
    progress: Callable[[str], None] | None = None,
    max_backoff_s: float = 5.0,
) -> Client | None:
    """A client of ``namespace`` at ``address``, retrying until Temporal answers.

    Returns None when ``stop`` is set first. Raises ``TemporalUnreachable`` once
    ``give_up_after_s`` has passed (default: never give up). ``progress`` receives one line per
    failed attempt (default: a warning log line).
    """
    say = progress or (lambda line: log.warning("%s", line))

    async def sleep(seconds: float) -> None:
        if stop is None:
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise _Stopped

    def report(state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        say(
            f"waiting for Temporal at {address} (attempt {state.attempt_number}, "
            f"next in {delay:.1f}s): {error}"
        )

    retrying = AsyncRetrying(
        retry=retry_if_not_exception_type(_Stopped),
        wait=wait_exponential_jitter(initial=0.5, max=max_backoff_s, jitter=0.25),
        stop=stop_never if give_up_after_s is None else stop_after_delay(give_up_after_s),
        sleep=sleep,
        before_sleep=report,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await _unless_stopped(
                    Client.connect(
                        address,
                        namespace=namespace,
                        data_converter=data_converter,
                        # The SDK's own connect retries would hide progress and stop requests.
                        connect_timeout=CONNECT_ATTEMPT_TIMEOUT,
                        # Core log lines through Python logging, without colour codes.
                        runtime=temporal_runtime(),
                        # Spans for every call, and for the workflows and activities of the
                        # workers made from this client (they inherit its interceptors).
                        interceptors=tracing_interceptors(),
                    ),
                    stop,
                )
    except _Stopped:
        return None
    except Exception as err:
        raise TemporalUnreachable(
            f"Temporal at {address} (namespace {namespace}) did not answer within "
            f"{give_up_after_s:g}s: {err}"
        ) from err
    raise AssertionError("unreachable: tenacity either returns, retries or raises")
