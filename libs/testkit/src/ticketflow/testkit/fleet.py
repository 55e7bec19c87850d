"""In-process Temporal workers for a test: add them, start them all, stop them all.

``start()`` returns only once Temporal lists each worker (by its identity) as a poller of its
queue: a worker that has been created but does not poll yet cannot take the first task, and a
test that relied on it would race (a fallback budget would run out before it polled).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from ticketflow.runtime import pollers

from .polling import eventually_async

__all__ = ["WorkerFleet", "wait_polling", "wait_until_polling"]


class WorkerFleet:
    """Workers of one test, each on its own task queue, stopped together (``async with`` works)."""

    def __init__(self, client: Client, *, max_threads: int = 8) -> None:
        self.client = client
        self._pool = ThreadPoolExecutor(max_workers=max_threads)
        self._workers: list[Worker] = []
        self._running: list[Worker] = []

    def add(
        self,
        task_queue: str,
        *,
        workflows: Sequence[type] = (),
        activities: Sequence[Callable[..., Any]] = (),
        **options: Any,
    ) -> Worker:
        """A worker on ``task_queue``; sync activities run on the fleet's thread pool. ``options``
        go to ``Worker`` (eager activities are off by default: they bypass rate-limited queues)."""
        options.setdefault("disable_eager_activity_execution", True)
        options.setdefault("identity", f"testkit-{task_queue}-{uuid.uuid4().hex[:8]}")
        if activities and any(not inspect.iscoroutinefunction(a) for a in activities):
            options.setdefault("activity_executor", self._pool)
        worker = Worker(
            self.client,
            task_queue=task_queue,
            workflows=list(workflows),
            activities=list(activities),
            **options,
        )
        self._workers.append(worker)
        return worker

    async def start(self, *, timeout: float = 30.0) -> None:
        """Start every added worker that is not running yet and wait until each one polls."""
        for worker in self._workers:
            if worker in self._running:
                continue
            await worker.__aenter__()
            self._running.append(worker)
            await wait_polling(self.client, worker, timeout=timeout)

    async def stop(self) -> None:
        while self._running:
            await self._running.pop().__aexit__(None, None, None)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> WorkerFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def wait_polling(client: Client, worker: Worker, *, timeout: float = 30.0) -> None:
    """Until Temporal lists ``worker`` (by identity) as a poller of each kind it serves."""
    config = worker.config()
    kinds = []
    if config.get("workflows"):
        kinds.append(pollers.WORKFLOW)
    if config.get("activities"):
        kinds.append(pollers.ACTIVITY)
    try:
        await wait_until_polling(
            client,
            [(worker.task_queue, kind) for kind in kinds],
            identity=config.get("identity"),
            timeout=timeout,
        )
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        # The time-skipping test server implements no DescribeTaskQueue, so there is no way to
        # see a worker poll. Its tasks wait in their queue for the first poll.


async def wait_until_polling(
    client: Client,
    queues: Sequence[tuple[str, pollers.QueueKind]],
    *,
    identity: str | None = None,
    since_epoch_s: float | None = None,
    alive: Callable[[], None] | None = None,
    timeout: float = 30.0,
) -> None:
    """Until Temporal lists a poller on every (queue, kind), optionally with ``identity`` or seen
    since ``since_epoch_s``. ``alive`` is called before each look (raise there when the process
    that should poll has died). A slow answer from a busy server is asked again, not a failure."""

    async def seen() -> bool:
        if alive is not None:
            alive()
        try:
            return await pollers.polling(
                client, queues, identity=identity, since_epoch_s=since_epoch_s
            )
        except RPCError as err:
            if err.status == RPCStatusCode.UNIMPLEMENTED:
                raise
            return False

    what = f"worker {identity or '(any)'} polling {', '.join(sorted({q for q, _ in queues}))}"
    await eventually_async(seen, timeout=timeout, what=what)
