"""The runner keeps the worker going: a fatal error restarts it after a backoff, and a stop
request ends both the worker and a backoff under way. Temporal is replaced by a stand-in
``_run_worker`` (the process tests cover the real connection)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from ticketflow import testkit
from ticketflow.projection import runner
from ticketflow.projection.activities import ProjectionActivities
from ticketflow.projection.settings import Settings
from ticketflow.projection.store import ReadModelStore


async def keep_running(store: ReadModelStore, stop: asyncio.Event) -> asyncio.Task[None]:
    settings = Settings(temporal_address="127.0.0.1:7233", data_dir=store.path.parent)
    pool = ThreadPoolExecutor(max_workers=1)
    task = asyncio.create_task(runner._keep_worker_running(settings, store, pool, stop))
    task.add_done_callback(lambda _: pool.shutdown(wait=False))
    return task


async def test_a_fatal_error_restarts_the_worker(
    sqlite_store: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[str] = []

    async def run_worker(
        settings: Settings,
        activities: ProjectionActivities,
        pool: ThreadPoolExecutor,
        stop: asyncio.Event,
    ) -> None:
        runs.append("run")
        if len(runs) < 3:
            raise RuntimeError("worker died (injected)")
        await stop.wait()  # the third run is healthy until the stop

    monkeypatch.setattr(runner, "_FIRST_RESTART_BACKOFF_S", 0.01)
    monkeypatch.setattr(runner, "_run_worker", run_worker)
    stop = asyncio.Event()
    task = await keep_running(sqlite_store, stop)

    async def third_run() -> bool:
        assert not task.done(), task
        return len(runs) == 3

    await testkit.eventually_async(third_run, what="the third worker run")
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    assert runs == ["run"] * 3


async def test_a_stop_ends_the_backoff(
    sqlite_store: ReadModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[str] = []

    async def run_worker(*args: object) -> None:
        runs.append("run")
        raise RuntimeError("worker died (injected)")

    # A backoff far longer than the test's timeout: only the stop can end it.
    monkeypatch.setattr(runner, "_FIRST_RESTART_BACKOFF_S", 3600.0)
    monkeypatch.setattr(runner, "_MAX_RESTART_BACKOFF_S", 3600.0)
    monkeypatch.setattr(runner, "_run_worker", run_worker)
    stop = asyncio.Event()
    task = await keep_running(sqlite_store, stop)

    async def failed_once() -> bool:
        return runs == ["run"]

    await testkit.eventually_async(failed_once, what="the first worker run failing")
    stop.set()
    await asyncio.wait_for(task, timeout=30)
    assert runs == ["run"]  # no run after the stop
