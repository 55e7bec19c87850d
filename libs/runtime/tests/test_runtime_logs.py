"""The Temporal SDK's core (Rust) log lines reach a service's output through Python logging, in the
one format (JSON lines: the output is a pipe or a log file, not a terminal) and without terminal
colour codes.

A real worker process (``setup_logging`` + ``connect``, as every service starts) polls a real dev
server; stopping the server makes the SDK core warn about its failing polls.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ticketflow.runtime.logs import SDK_CORE_LOGGER
from ticketflow.testkit import DevServer, ServiceProcess, json_log_lines

WORKER = """
import asyncio, sys
from temporalio import activity
from temporalio.worker import Worker
from ticketflow.runtime import connect, setup_logging

@activity.defn(name="noop")
async def noop() -> None: ...

async def main() -> None:
    setup_logging("INFO")
    client = await connect(sys.argv[1], "default")
    async with Worker(client, task_queue="ansi-check", activities=[noop]):
        print("worker polling", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.timeout(90)  # a dev server start, then the SDK core's retries before it warns
def test_sdk_core_warnings_are_plain_log_lines(tmp_path: Path) -> None:
    with DevServer(log_path=tmp_path / "temporal.log") as server:
        worker = ServiceProcess(
            [sys.executable, "-c", WORKER, server.address], {}, tmp_path / "worker.log"
        )
        try:
            worker.wait_for_output("worker polling")
            server.stop()
            # The core retries a failing poll a few times before it warns (about 10 s).
            worker.wait_for_output("poll_activity_task_queue", timeout=60)
        finally:
            worker.kill()
    output = worker.output()
    assert "\x1b[" not in output, output[-2000:]
    warned = [r for r in json_log_lines(output) if "poll_activity_task_queue" in r["message"]]
    assert warned, output[-2000:]
    assert all(r["level"] == "WARNING" and r["logger"] == SDK_CORE_LOGGER for r in warned), warned
