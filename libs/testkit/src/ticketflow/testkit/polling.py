"""Wait for a condition by polling it until a deadline: never sleep a fixed time to synchronise.

A check passes when it returns a truthy value (which is returned) without raising AssertionError;
it is retried while it raises AssertionError or returns something falsy. Past the deadline the
last AssertionError (or a new one naming ``what`` and the last value) is raised.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually", "eventually_async"]

T = TypeVar("T")


def _timed_out(what: str, timeout: float, last: object) -> AssertionError:
    if isinstance(last, AssertionError):
        return AssertionError(f"timed out after {timeout:g}s waiting for {what}: {last}")
    return AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")


def eventually(
    check: Callable[[], T],
    *,
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """Call ``check`` until it passes (see the module docstring)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            last: object = check()
            if last:
                return last  # type: ignore[return-value]
        except AssertionError as err:
            last = err
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last)
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """Await ``check()`` until it passes (see the module docstring)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            last: object = await check()
            if last:
                return last  # type: ignore[return-value]
        except AssertionError as err:
            last = err
        if loop.time() >= deadline:
            raise _timed_out(what, timeout, last)
        await asyncio.sleep(interval)
