"""`ticketflow-core-worker`: runs the ticket workflow and the ledger activities until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from pydantic import ValidationError

from .settings import Settings
from .worker import VERSION, build_worker, connect


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = await connect(settings, stop)
    if client is None:
        print("core-worker: stopped before Temporal answered", flush=True)
        return
    with ThreadPoolExecutor(max_workers=settings.core_max_concurrent_activities) as executor:
        worker = build_worker(client, settings, executor)
        print(
            f"core-worker {VERSION}: polling task queue 'ticketflow' on "
            f"{settings.temporal_address} (namespace {settings.namespace}); "
            f"ledger {settings.ledger_path}",
            flush=True,
        )
        async with worker:
            await stop.wait()
            print("core-worker: shutting down", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ticketflow-core-worker",
        description="Temporal worker for the ticket workflow, refund ledger and reply outbox. "
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
        sys.exit(f"core-worker: invalid settings:\n{err}")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
