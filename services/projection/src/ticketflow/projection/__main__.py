"""`ticketflow-projection`: records finished tickets into the read model until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from importlib.metadata import version
from socket import gethostname

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.worker import Worker
from ticketflow.contracts import DATA_CONVERTER, names

from .activities import ProjectionActivities
from .settings import Settings
from .store import ReadModel

VERSION = version("ticketflow-projection")
log = logging.getLogger("ticketflow.projection")


async def _connect(settings: Settings) -> Client:
    attempt = 0
    while True:
        attempt += 1
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.namespace,
                data_converter=DATA_CONVERTER,
            )
        except Exception as err:
            log.warning(
                "waiting for Temporal at %s (attempt %d): %s",
                settings.temporal_address,
                attempt,
                err,
            )
            await asyncio.sleep(min(5.0, 0.5 * attempt))


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = await _connect(settings)
    acts = ProjectionActivities(ReadModel(settings.readmodel_path))
    with ThreadPoolExecutor(max_workers=settings.projection_max_concurrent_activities) as pool:
        worker = Worker(
            client,
            task_queue=names.PROJECTION_QUEUE,
            activities=[acts.record_outcome],
            activity_executor=pool,
            max_concurrent_activities=settings.projection_max_concurrent_activities,
            identity=f"projection-{VERSION}@{gethostname()}",
            graceful_shutdown_timeout=timedelta(seconds=5),
        )
        print(
            f"projection {VERSION}: polling '{names.PROJECTION_QUEUE}' on "
            f"{settings.temporal_address}; read model {settings.readmodel_path}",
            flush=True,
        )
        async with worker:
            await stop.wait()
            print("projection: shutting down", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ticketflow-projection",
        description="Records each finished ticket into the SQLite read model. "
        "Configured by TICKETFLOW_* environment variables (see README).",
    )
    parser.add_argument("--version", action="version", version=VERSION)
    parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
    except ValidationError as err:
        sys.exit(f"projection: invalid settings:\n{err}")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
