"""connect(): retries with progress lines until Temporal answers, a stop ends the wait, a deadline
raises TemporalUnreachable; a real dev server (already up, or started late) yields a working client.

"Returns promptly" is asserted as "returns at all": without the stop, each of these waits would go
on forever (no give_up_after_s), so only the per-test timeout bounds them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from ticketflow.contracts import DATA_CONVERTER
from ticketflow.runtime import TemporalUnreachable, connect
from ticketflow.testkit import DevServer, eventually_async, free_port

NAMESPACE = "default"


def nowhere() -> str:
    """An address where nothing listens: each attempt is refused at once."""
    return f"127.0.0.1:{free_port()}"


async def works(client: Client) -> None:
    assert await client.service_client.check_health()
    assert client.data_converter is DATA_CONVERTER
    assert client.namespace == NAMESPACE


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A TCP server that accepts and never answers: a connect attempt to it stays in flight.

    Yields its address and an event set once a connection has been accepted.
    """
    accepted = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        accepted.set()

    server = await asyncio.start_server(hold, "127.0.0.1", free_port())
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}", accepted
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_keeps_retrying_and_reports_each_failed_attempt() -> None:
    address = nowhere()
    lines: list[str] = []
    stop = asyncio.Event()
    task = asyncio.create_task(connect(address, NAMESPACE, stop=stop, progress=lines.append))
    try:
        await eventually_async(lambda: _at_least(lines, 3), what="three progress lines")
        assert not task.done()
    finally:
        stop.set()
    assert await task is None
    for attempt, line in enumerate(lines[:3], start=1):
        assert line.startswith(f"waiting for Temporal at {address} (attempt {attempt}, next in ")


async def test_stop_during_the_backoff_returns_none() -> None:
    lines: list[str] = []
    stop = asyncio.Event()

    def progress(line: str) -> None:
        lines.append(line)
        stop.set()  # the first failed attempt is followed by a backoff sleep: stop it there

    assert await connect(nowhere(), NAMESPACE, stop=stop, progress=progress) is None
    assert len(lines) == 1


async def test_stop_during_an_attempt_returns_none(
    silent_server: tuple[str, asyncio.Event],
) -> None:
    address, accepted = silent_server
    lines: list[str] = []
    stop = asyncio.Event()
    task = asyncio.create_task(connect(address, NAMESPACE, stop=stop, progress=lines.append))
    await asyncio.wait_for(accepted.wait(), timeout=30)
    stop.set()
    assert await task is None
    # No failed attempt was reported: the stop ended the attempt itself, not the sleep after it.
    assert lines == []


async def test_a_stop_set_while_nothing_listens_is_never_an_error() -> None:
    stop = asyncio.Event()
    stop.set()
    assert await connect(nowhere(), NAMESPACE, stop=stop, give_up_after_s=3600) is None


async def test_gives_up_after_the_allowed_time_naming_the_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = nowhere()
    caplog.set_level(logging.WARNING, logger="ticketflow.runtime")
    with pytest.raises(TemporalUnreachable) as raised:
        await connect(address, NAMESPACE, give_up_after_s=1.0)
    message = str(raised.value)
    assert f"Temporal at {address} (namespace {NAMESPACE}) did not answer within 1s" in message
    assert raised.value.__cause__ is not None
    # Without a progress callback, each failed attempt is a warning of ticketflow.runtime.
    warnings = [r.getMessage() for r in caplog.records if r.name == "ticketflow.runtime"]
    assert warnings and all(w.startswith(f"waiting for Temporal at {address}") for w in warnings)


async def test_returns_a_working_client_of_a_running_server(dev_env: WorkflowEnvironment) -> None:
    address = dev_env.client.service_client.config.target_host
    lines: list[str] = []
    client = await connect(address, NAMESPACE, stop=asyncio.Event(), progress=lines.append)
    assert client is not None
    await works(client)
    assert lines == []


async def test_temporal_started_after_connect_began(tmp_path: Path) -> None:
    server = DevServer(port=free_port(), log_path=tmp_path / "temporal.log")
    lines: list[str] = []
    task = asyncio.create_task(
        connect(server.address, NAMESPACE, stop=asyncio.Event(), progress=lines.append)
    )
    try:
        await eventually_async(lambda: _at_least(lines, 1), what="a progress line")
        assert not task.done()
        await asyncio.to_thread(server.start)
        client = await task
        assert client is not None
        await works(client)
        assert all(line.startswith(f"waiting for Temporal at {server.address}") for line in lines)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(server.stop)


async def _at_least(items: list[str], count: int) -> bool:
    return len(items) >= count
