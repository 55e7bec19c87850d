"""eventually / eventually_async: retry while falsy or AssertionError, return the first truthy
value, let any other error through, and name ``what`` when the deadline passes.

Both are run through the same cases (``wait``): they promise the same semantics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from ticketflow.testkit import eventually, eventually_async

Wait = Callable[..., Awaitable[Any]]


async def wait_sync(check: Callable[[], Any], **options: Any) -> Any:
    return eventually(check, **options)


async def wait_async(check: Callable[[], Any], **options: Any) -> Any:
    async def acheck() -> Any:
        return check()

    return await eventually_async(acheck, **options)


@pytest.fixture(params=[wait_sync, wait_async], ids=["eventually", "eventually_async"])
def wait(request: pytest.FixtureRequest) -> Wait:
    return request.param  # type: ignore[no-any-return]


class Scripted:
    """A check that returns (or raises) the given results in order, one per call."""

    def __init__(self, *results: object) -> None:
        self.pending = list(results)

    def __call__(self) -> object:
        result = self.pending.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result


async def test_a_truthy_value_is_returned_at_once(wait: Wait) -> None:
    value = {"id": 7}
    check = Scripted(value)
    assert await wait(check, timeout=30, interval=0) is value


@pytest.mark.parametrize("falsy", [None, False, 0, "", [], {}])
async def test_falsy_values_are_retried(wait: Wait, falsy: object) -> None:
    check = Scripted(falsy, falsy, "done")
    assert await wait(check, timeout=30, interval=0) == "done"
    assert check.pending == []


async def test_an_assertion_error_is_retried(wait: Wait) -> None:
    check = Scripted(AssertionError("not yet"), None, AssertionError("still not"), True)
    assert await wait(check, timeout=30, interval=0) is True
    assert check.pending == []


async def test_any_other_error_is_raised_at_once(wait: Wait) -> None:
    check = Scripted(KeyError("a bug"), True)
    with pytest.raises(KeyError, match="a bug"):
        await wait(check, timeout=30, interval=0)
    assert check.pending == [True]


async def test_timeout_names_what_and_the_last_value(wait: Wait) -> None:
    with pytest.raises(AssertionError) as raised:
        await wait(lambda: [], timeout=0.1, what="the ticket list")
    assert str(raised.value) == "timed out after 0.1s waiting for the ticket list; last: []"


async def test_timeout_names_what_and_the_last_assertion(wait: Wait) -> None:
    def check() -> bool:
        raise AssertionError("status is open")

    with pytest.raises(AssertionError) as raised:
        await wait(check, timeout=0.1, what="ticket t-1 resolved")
    assert (
        str(raised.value) == "timed out after 0.1s waiting for ticket t-1 resolved: status is open"
    )


async def test_a_check_is_tried_at_least_once_even_with_no_time(wait: Wait) -> None:
    assert await wait(Scripted("yes"), timeout=0) == "yes"
