"""Slow HTTP clients: header and body deadlines, the connection limit, and the refusal summary.

The api's own uvicorn server (`__main__._http_server`, the protocol of `connections.py`) runs in
this event loop on a loopback port, and raw sockets play the clients.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from ticketflow.api import Settings, create_app
from ticketflow.api.__main__ import _http_server, _Server
from ticketflow.api.connections import (
    AT_LIMIT,
    NO_DESCRIPTOR,
    ConnectionGuard,
    HttpLimits,
    RefusalLog,
    count_accept_failures,
)
from ticketflow.api.read_model_client import NoReadModelClient
from ticketflow.testkit import eventually_async

HALF_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: appl"


@asynccontextmanager
async def http_server(settings: Settings, **limits: Any) -> AsyncIterator[tuple[int, _Server]]:
    """The api's HTTP server (port 0) with `limits` (Settings fields); yields (port, server)."""
    settings = settings.model_copy(update={"http_port": 0, **limits})
    app = create_app(settings, read_model_client=NoReadModelClient())
    server = _http_server(app, settings, "127.0.0.1:0")
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        assert not task.done(), "uvicorn stopped"
        return server.started

    try:
        await eventually_async(started, what="the HTTP server to start")
        yield server.servers[0].sockets[0].getsockname()[1], server
    finally:
        server.should_exit = True
        await task


async def connect(
    port: int, first: bytes = b""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if first:
        writer.write(first)
        await writer.drain()
    return reader, writer


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    async with asyncio.timeout(30):
        while chunk := await reader.read(65536):
            data += chunk
    return data


def error_of(response: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"connection: close" in head.lower(), head
    return status, json.loads(body)["error"]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One response with a Content-Length body; the connection stays open."""
    async with asyncio.timeout(30):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        return int(head.split(b" ", 2)[1]), await reader.readexactly(length)


async def test_half_sent_headers_get_408_and_the_connection_is_closed(settings: Settings) -> None:
    async with http_server(settings, http_header_timeout_s=1.0) as (port, _):
        reader, writer = await connect(port, HALF_HEADERS)
        status, error = error_of(await read_to_eof(reader))
        writer.close()
    assert status == 408
    assert error["code"] == "request_timeout"
    assert error["message"] == "request headers not received within 1 s"


async def test_a_silent_connection_is_closed_without_an_answer(settings: Settings) -> None:
    async with http_server(settings, http_header_timeout_s=1.0) as (port, _):
        reader, writer = await connect(port)
        assert await read_to_eof(reader) == b""
        writer.close()


async def test_a_body_short_of_its_content_length_gets_408(settings: Settings) -> None:
    request = (
        b"POST /tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n" + b'{"customer_id": '
    )
    async with http_server(settings, http_body_timeout_s=1.0) as (port, _):
        reader, writer = await connect(port, request)
        status, error = error_of(await read_to_eof(reader))
        writer.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200  # and the server lives on
    assert status == 408
    assert error == {
        "code": "request_timeout",
        "message": "request body not received within 1 s",
        "details": [],
    }


async def test_the_next_request_on_a_kept_alive_connection_has_a_header_deadline(
    settings: Settings,
) -> None:
    async with http_server(settings, http_header_timeout_s=1.0) as (port, _):
        reader, writer = await connect(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await read_response(reader))[0] == 200
        writer.write(HALF_HEADERS)
        status, error = error_of(await read_to_eof(reader))
        writer.close()
    assert (status, error["code"]) == (408, "request_timeout")


async def test_a_slow_but_progressing_upload_within_the_deadlines_succeeds(
    settings: Settings, fake_worker: None, helpers
) -> None:
    body = json.dumps(helpers.submission()).encode()
    head = (
        b"POST /tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    # Headers in two pieces (within 1 s), then the body in six over about 1.8 s: longer than the
    # header deadline, which no longer applies, and well within the body's.
    async with http_server(settings, http_header_timeout_s=1.0, http_body_timeout_s=20.0) as (
        port,
        _,
    ):
        reader, writer = await connect(port, head[:20])
        await asyncio.sleep(0.2)
        writer.write(head[20:])
        step = len(body) // 6 + 1
        for i in range(0, len(body), step):
            await asyncio.sleep(0.3)
            writer.write(body[i : i + step])
            await writer.drain()
        status, answer = await read_response(reader)
        writer.close()
    assert status == 202, answer
    assert json.loads(answer)["ticket_id"] == json.loads(body)["ticket_id"]


async def test_at_the_connection_limit_the_client_waiting_longest_makes_room(
    settings: Settings,
) -> None:
    async with http_server(settings, http_max_connections=3, http_header_timeout_s=60.0) as (
        port,
        server,
    ):
        slow = [await connect(port, HALF_HEADERS) for _ in range(3)]

        # The server has all three, each with part of a request.
        async def all_three_in() -> bool:
            guard = server.guard
            return len(guard.open) == 3 and all(c.conn.trailing_data[0] for c in guard.open)

        await eventually_async(all_three_in, what="three half-sent requests")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200
        # The oldest was closed to make room, long before its header deadline (60 s).
        status, error = error_of(await read_to_eof(slow[0][0]))
        assert (status, error["code"]) == (503, "too_many_connections")
        assert len(server.guard.open) <= 3
        for _, writer in slow:
            writer.close()


async def test_when_every_connection_is_busy_a_new_one_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = ConnectionGuard(
        HttpLimits(max_connections=1, header_timeout_s=1, body_timeout_s=1),
        RefusalLog("HTTP connections"),
    )
    # One connection whose request the server is working on: open, not waiting for its client.
    busy, new = object(), object()
    guard.open.add(busy)  # type: ignore[arg-type]
    assert not guard.admit(new)  # type: ignore[arg-type]
    assert guard.open == {busy}
    assert [r.getMessage() for r in caplog.records] == [f"HTTP connections refused: 1 {AT_LIMIT}"]


async def test_refusals_are_summarised_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "ticketflow.api.connections")
    refusals = RefusalLog("HTTP connections", interval_s=0.2)
    for _ in range(100):
        refusals.count("closed: test")
    refusals.count("evicted: test")

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "ticketflow.api.connections"]

    # The first at once, then one line for the rest of the interval.
    await eventually_async(lambda: asyncio.sleep(0, len(lines()) == 2), what="the summary")
    assert lines() == [
        "HTTP connections refused: 1 closed: test",
        "HTTP connections refused in the last 0.2 s: 99 closed: test; 1 evicted: test",
    ]
    refusals.close()
    assert len(lines()) == 2


async def test_accept_failures_are_counted_not_logged_with_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    refusals = RefusalLog("HTTP connections", interval_s=60)
    undo = count_accept_failures(loop, refusals)
    try:
        for _ in range(2048):  # what Python 3.11 reports for one burst of pending connections
            loop.call_exception_handler(
                {
                    "message": "socket.accept() out of system resource",
                    "exception": OSError(24, "Too many open files"),
                }
            )
        refusals.close()
    finally:
        undo()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"HTTP connections refused: 1 {NO_DESCRIPTOR}",
        f"HTTP connections refused in the last 0 s: 2047 {NO_DESCRIPTOR}",
    ]
    assert not any(r.exc_info for r in caplog.records)
