"""`ticketflow-projection [serve]` runs the service; `ticketflow-projection rebuild` re-derives the view.

Configured by TICKETFLOW_* environment variables (see settings.py and README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys

from pydantic import ValidationError

from .rebuild import TemporalUnreachable, connect_once, rebuild
from .service import VERSION, serve
from .settings import Settings
from .store import UnsupportedSchema

ENV_HELP = """environment (all optional):
  TICKETFLOW_TEMPORAL_ADDRESS    127.0.0.1:7233   Temporal frontend
  TICKETFLOW_NAMESPACE           default          Temporal namespace
  TICKETFLOW_DATA_DIR            ./var            holds readmodel.db
  TICKETFLOW_PROJECTION_ADDRESS  127.0.0.1:50052  where the gRPC read API listens
  TICKETFLOW_PROJECTION_MAX_CONCURRENT_ACTIVITIES  8  activity slots (SQLite writers)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticketflow-projection",
        description="The read model of finished tickets: a Temporal worker on "
        "'ticketflow-projection' that records each outcome into SQLite, and a gRPC read API.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=VERSION)
    sub = parser.add_subparsers(dest="command", metavar="{serve,rebuild}")
    sub.add_parser(
        "serve",
        help="run the worker and the gRPC read API until SIGTERM (the default)",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rb = sub.add_parser(
        "rebuild",
        help="re-derive readmodel.db from Temporal and swap it in atomically",
        description="Lists the closed TicketWorkflow executions, fetches each completed run's "
        "result, writes them into a fresh database next to readmodel.db and swaps it in; a "
        "running projection keeps answering. Reports the tickets it could not rebuild.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rb.add_argument(
        "--drop-unretained",
        action="store_true",
        help="drop the rows of tickets Temporal no longer has, i.e. whose workflow it describes "
        "as NOT_FOUND (default: keep them, they are the only record left); running tickets are "
        "always kept",
    )
    rb.add_argument(
        "--concurrency", type=int, default=16, help="results fetched at once (default 16)"
    )
    rb.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for Temporal before giving up (default 10)",
    )
    return parser


async def _rebuild(settings: Settings, args: argparse.Namespace) -> None:
    def progress(line: str) -> None:
        print(line, flush=True)

    progress(
        f"rebuild: reading closed tickets from Temporal at {settings.temporal_address} "
        f"(namespace {settings.namespace})"
    )
    client = await connect_once(settings.temporal_address, settings.namespace, args.connect_timeout)
    report = await rebuild(
        client,
        settings.readmodel_path,
        drop_unretained=args.drop_unretained,
        concurrency=args.concurrency,
        progress=progress,
    )
    for line in report.lines():
        progress(line)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
    except ValidationError as err:
        sys.exit(f"projection: invalid settings:\n{err}")
    if args.command == "rebuild":
        if args.concurrency < 1:
            sys.exit("rebuild: --concurrency must be at least 1")
        try:
            asyncio.run(_rebuild(settings, args))
        except UnsupportedSchema as err:
            sys.exit(f"rebuild: {err}; nothing was changed")
        except TemporalUnreachable as err:
            sys.exit(
                f"rebuild: {err}\nrebuild: nothing was changed; start Temporal (`ticketflow up`) "
                "or set TICKETFLOW_TEMPORAL_ADDRESS"
            )
        return
    try:
        asyncio.run(serve(settings))
    except OSError as err:  # the gRPC address cannot be bound
        sys.exit(f"projection: {err}")
    except (sqlite3.DatabaseError, UnsupportedSchema) as err:
        sys.exit(
            f"projection: the read model {settings.readmodel_path} cannot be used: {err}\n"
            "projection: re-derive it from Temporal with `ticketflow-projection rebuild`"
        )


if __name__ == "__main__":
    main()
