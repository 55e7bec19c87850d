"""``ticketflow-projection serve``: the gRPC read API and the Temporal worker in one process.

The read API starts first and does not depend on Temporal: it serves the read model from disk while
the worker is still connecting, or reconnecting after Temporal went away (DESIGN.md "Read paths").
The worker keeps retrying the connection and restarts after a fatal error, with backoff. On
SIGTERM/SIGINT, health turns NOT_SERVING, then the worker (its in-flight activities get a grace
period) and the gRPC server (in-flight calls finish) stop together.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from importlib.metadata import version
from socket import gethostname

from temporalio.client import Client
from temporalio.worker import Worker
from ticketflow.contracts import DATA_CONVERTER, names

from .activities import ProjectionActivities
from .grpc_api import ReadApiServer
from .settings import Settings
from .store import ReadModel

__all__ = ["VERSION", "serve"]

VERSION = version("ticketflow-projection")
log = logging.getLogger("ticketflow.projection")

_GRACE_S = 5.0


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (by default: until SIGTERM or SIGINT)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    store = ReadModel(settings.readmodel_path)
    api = ReadApiServer(store, settings.projection_address)
    await api.start()
    print(
        f"projection {VERSION}: gRPC read API on {api.bound_address}; "
        f"read model {settings.readmodel_path}",
        flush=True,
    )
    with ThreadPoolExecutor(
        max_workers=settings.projection_max_concurrent_activities,
        thread_name_prefix="record-outcome",
    ) as pool:
        worker = asyncio.create_task(_run_worker(settings, store, pool, stop))
        try:
            await stop.wait()
        finally:
            print("projection: shutting down", flush=True)
            stop.set()
            await asyncio.gather(worker, api.stop(_GRACE_S), return_exceptions=True)
    print("projection: stopped", flush=True)


async def _run_worker(
    settings: Settings, store: ReadModel, pool: ThreadPoolExecutor, stop: asyncio.Event
) -> None:
    """Connect, poll `ticketflow-projection` until ``stop``; on any failure retry with backoff."""
    acts = ProjectionActivities(store)
    failures = 0
    while not stop.is_set():
        connecting = asyncio.create_task(
            Client.connect(
                settings.temporal_address,
                namespace=settings.namespace,
                data_converter=DATA_CONVERTER,
                connect_timeout=timedelta(seconds=5),
            )
        )
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stop.is_set():  # SIGTERM while connecting: do not wait for the attempt to end
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            return
        try:
            client = connecting.result()
        except Exception as err:
            failures += 1
            log.warning(
                "waiting for Temporal at %s (attempt %d): %s",
                settings.temporal_address,
                failures,
                err,
            )
            await _pause(stop, failures)
            continue
        worker = Worker(
            client,
            task_queue=names.PROJECTION_QUEUE,
            activities=[acts.record_outcome],
            activity_executor=pool,
            max_concurrent_activities=settings.projection_max_concurrent_activities,
            identity=f"projection-{VERSION}@{gethostname()}",
            graceful_shutdown_timeout=timedelta(seconds=_GRACE_S),
        )
        print(
            f"projection: worker polling '{names.PROJECTION_QUEUE}' on {settings.temporal_address}",
            flush=True,
        )
        failures = 0
        running = asyncio.create_task(worker.run())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            if not running.done():
                await worker.shutdown()
            try:
                await running
            except Exception as err:
                log.warning("worker ended with an error during shutdown: %s", err)
            return
        stopping.cancel()
        failures += 1
        log.error("worker stopped (%s); restarting", running.exception() or "no error")
        await _pause(stop, failures)


async def _pause(stop: asyncio.Event, failures: int) -> None:
    """Back off (0.5 s, 1 s, ... 5 s) but wake at once on ``stop``."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=min(5.0, 0.5 * failures))
    except TimeoutError:
        pass
