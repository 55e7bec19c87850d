"""``ticketflow-projection serve``: the process that runs the gRPC read API and the Temporal worker.

The read API starts first and does not depend on Temporal: it serves the read model from disk while
the worker is still connecting, or reconnecting after Temporal went away (docs/architecture.md,
"Read paths"). The worker waits for Temporal (``ticketflow.runtime.connect``) and, after a fatal
error, starts again with backoff that a stop request interrupts. On SIGTERM/SIGINT health turns
NOT_SERVING, then the worker (its in-flight activities get a grace period) and the gRPC server
(in-flight calls finish) stop together; a second signal stops both at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from socket import gethostname

from temporalio.worker import Worker
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter
from ticketflow.contracts import names
from ticketflow.runtime import connect, package_version

from .activities import ProjectionActivities
from .gauges import publish_ticket_gauges
from .grpc_api import ReadApiServer
from .settings import Settings
from .store import ReadModelStore

__all__ = ["VERSION", "serve"]

VERSION = package_version("ticketflow-projection")
log = logging.getLogger("ticketflow.projection")

_GRACE_S = 5.0
_FIRST_RESTART_BACKOFF_S = 0.5
_MAX_RESTART_BACKOFF_S = 5.0


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set, then stop gracefully (see the module docstring)."""
    store = ReadModelStore(settings.readmodel_store, migrate=settings.migrates_on_start)
    try:
        await _serve_store(settings, store, stop)
    finally:
        store.close()


async def _serve_store(settings: Settings, store: ReadModelStore, stop: asyncio.Event) -> None:
    token = settings.readmodel_token.get_secret_value() or None
    api = ReadApiServer(store, settings.listen_address, token=token)
    await api.start()
    print(
        f"projection {VERSION}: gRPC read API on {api.bound_address}; "
        f"read model {settings.readmodel_store.shown}",
        flush=True,
    )
    if api.needs_token:
        print("projection: the read API needs the read-model token", flush=True)
    else:
        print(
            "projection: WARNING: the read API is open to anyone who reaches "
            f"{api.bound_address} (set TICKETFLOW_READMODEL_TOKEN on the projection and the api)",
            flush=True,
        )
    with ThreadPoolExecutor(
        max_workers=settings.projection_max_concurrent_activities,
        thread_name_prefix="record-outcome",
    ) as pool:
        worker = asyncio.create_task(_keep_worker_running(settings, store, pool, stop))
        try:
            await stop.wait()
        except asyncio.CancelledError:  # a second signal: do not wait for anything
            worker.cancel()
            await asyncio.gather(worker, api.stop(0), return_exceptions=True)
            raise
        print("projection: shutting down", flush=True)
        await asyncio.gather(worker, api.stop(_GRACE_S), return_exceptions=True)
    print("projection: stopped", flush=True)


async def _keep_worker_running(
    settings: Settings, store: ReadModelStore, pool: ThreadPoolExecutor, stop: asyncio.Event
) -> None:
    """Run the worker until ``stop``; after a fatal error start it again, with backoff."""
    activities = ProjectionActivities(store)

    async def pause(seconds: float) -> None:
        # The backoff ends early on a stop; the next attempt then returns at once.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    def report(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.error("worker stopped (%s); restarting in %.1fs", error, delay)

    restarts = AsyncRetrying(
        retry=retry_if_exception_type(Exception),
        wait=wait_exponential_jitter(
            initial=_FIRST_RESTART_BACKOFF_S, max=_MAX_RESTART_BACKOFF_S, jitter=0.25
        ),
        sleep=pause,
        before_sleep=report,
    )
    async for attempt in restarts:
        with attempt:
            if not stop.is_set():
                await _run_worker(settings, activities, pool, stop)


async def _run_worker(
    settings: Settings,
    activities: ProjectionActivities,
    pool: ThreadPoolExecutor,
    stop: asyncio.Event,
) -> None:
    """Connect, poll ``ticketflow-projection`` until ``stop``; raise if the worker fails."""
    client = await connect(settings.temporal_address, settings.namespace, stop=stop)
    if client is None:  # stopped while waiting for Temporal
        return
    worker = Worker(
        client,
        task_queue=names.PROJECTION_QUEUE,
        activities=[activities.record_outcome],
        activity_executor=pool,
        max_concurrent_activities=settings.projection_max_concurrent_activities,
        identity=f"projection-{VERSION}@{gethostname()}",
        graceful_shutdown_timeout=timedelta(seconds=_GRACE_S),
    )
    print(
        f"projection: worker polling '{names.PROJECTION_QUEUE}' on {settings.temporal_address}",
        flush=True,
    )
    running = asyncio.create_task(worker.run())
    stopping = asyncio.create_task(stop.wait())
    gauges = asyncio.create_task(publish_ticket_gauges(client, stop, settings.gauge_interval_s))
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        running.cancel()
        raise
    finally:
        stopping.cancel()
        gauges.cancel()
    if stop.is_set():
        if not running.done():
            await worker.shutdown()
        try:
            await running
        except Exception as err:
            log.warning("worker ended with an error during shutdown: %s", err)
        return
    await running  # raises the worker's fatal error
    raise RuntimeError("the worker stopped by itself")
