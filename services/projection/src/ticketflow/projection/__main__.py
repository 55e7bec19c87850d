"""`ticketflow-projection [serve]` runs the service; `ticketflow-projection rebuild` re-derives the view;
`ticketflow-projection migrate` brings the read model's schema to this release's.

Configured by TICKETFLOW_* environment variables (see settings.py and README.md). Exit codes come
from ticketflow.runtime: 0 done, 1 failed (the message says what to do next), 2 bad settings or
arguments, 130 stopped by a second signal.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import NoReturn

from sqlalchemy import exc as sa_exc
from ticketflow.runtime import (
    ServiceError,
    TemporalUnreachable,
    connect,
    load_settings,
    run_service,
    setup_service,
)
from ticketflow.runtime.healthcheck import check_grpc, reach_host, run_check
from ticketflow.storage import (
    SchemaMismatch,
    current_revision,
    is_transient,
    open_engine,
    upgrade,
)

from .rebuild import RebuildReport, RebuildRunning, rebuild
from .runner import VERSION, serve
from .schema import MIGRATIONS, UnsupportedSchema
from .settings import Settings
from .store import is_sqlite_corruption

PROG = "ticketflow-projection"

ENV_HELP = """environment (all optional):
  TICKETFLOW_TEMPORAL_ADDRESS    127.0.0.1:7233   Temporal frontend
  TICKETFLOW_NAMESPACE           default          Temporal namespace
  TICKETFLOW_DATA_DIR            ./var            holds readmodel.db
  TICKETFLOW_READMODEL_URL       sqlite:///readmodel.db  the read model: a SQLite file (relative:
                                                  under the data dir) or
                                                  postgresql://user:password@host:port/db
  TICKETFLOW_MIGRATE_ON_START    (unset)          migrate the read model at start; unset: yes on
                                                  SQLite, no on PostgreSQL (run `migrate`)
  TICKETFLOW_PROJECTION_ADDRESS  127.0.0.1:50052  where the api reaches the read API; also
                                                  where it listens, for each of the two below
                                                  left unset
  TICKETFLOW_PROJECTION_HOST     (the address's)  host the gRPC read API binds (0.0.0.0 in the
                                                  images)
  TICKETFLOW_PROJECTION_PORT     (the address's)  port it binds (0: any free port)
  TICKETFLOW_READMODEL_TOKEN     (unset)          set: every read call needs the metadata
                                                  'authorization: Bearer <token>' (the api sends
                                                  its own TICKETFLOW_READMODEL_TOKEN); unset: open
  TICKETFLOW_PROJECTION_MAX_CONCURRENT_ACTIVITIES  8  activity slots (SQLite writers)
  TICKETFLOW_LOG_LEVEL           INFO             DEBUG, INFO, WARNING, ERROR or CRITICAL
  TICKETFLOW_LOG_FORMAT          auto             json, text, or auto (text on a terminal)
  TICKETFLOW_METRICS_PORT        unset            Prometheus /metrics port (unset: none)
  TICKETFLOW_METRICS_HOST        127.0.0.1        metrics bind address
  TICKETFLOW_GAUGE_INTERVAL_S    15               approval-queue gauges' refresh period
  OTEL_EXPORTER_OTLP_ENDPOINT    unset            export trace spans over OTLP there
"""


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The read model of finished tickets: a Temporal worker on "
        "'ticketflow-projection' that records each outcome into SQLite, and a gRPC read API.",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=VERSION)
    sub = parser.add_subparsers(dest="command", metavar="{serve,rebuild,migrate,healthcheck}")
    sub.add_parser(
        "serve",
        help="run the worker and the gRPC read API until SIGTERM (the default)",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_parser(
        "healthcheck",
        help="exit 0 when this host's read API answers the gRPC health check SERVING, else 1 "
        "(the image's HEALTHCHECK)",
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_parser(
        "migrate",
        help="bring the read model's schema to this release's (idempotent; a deploy runs it)",
        description="Runs the read model's pending migrations in one transaction (PostgreSQL: "
        "under an advisory lock, so replicas may all run it). Adopts a SQLite file that an older "
        "release made.",
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
        "--concurrency",
        type=_at_least_one,
        default=16,
        help="results fetched at once (default 16)",
    )
    rb.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for Temporal before giving up (default 10)",
    )
    return parser


async def _serve(settings: Settings, stop: asyncio.Event) -> None:
    try:
        await serve(settings, stop)
    except OSError as err:  # the gRPC address cannot be bound
        raise ServiceError(
            f"{err}\nset TICKETFLOW_PROJECTION_HOST and TICKETFLOW_PROJECTION_PORT (or "
            "TICKETFLOW_PROJECTION_ADDRESS) to a free host:port and start again"
        ) from err
    except SchemaMismatch as err:
        raise ServiceError(str(err)) from err
    except Exception as err:
        _raise_store_error(settings, err)


def _store_error(settings: Settings, err: Exception) -> Exception:
    """What to say about a read model that cannot be used; ``err`` itself if it is not one."""
    shown = settings.readmodel_store.shown
    if isinstance(err, UnsupportedSchema) or is_sqlite_corruption(err):
        return ServiceError(
            f"the read model {settings.readmodel_store.sqlite_path} cannot be used: {err}\n"
            f"re-derive it from Temporal with `{PROG} rebuild`"
        )
    if isinstance(err, sa_exc.DBAPIError):
        cause = (str(err.orig).strip().splitlines() or [type(err.orig).__name__])[0]
        if is_transient(err):
            return ServiceError(
                f"the read model at {shown} cannot be reached: {cause}\n"
                "start the database, or set TICKETFLOW_READMODEL_URL to where it is"
            )
        return ServiceError(
            f"the read model at {shown} cannot be used: {cause}\n"
            "check TICKETFLOW_READMODEL_URL (database, user, password) and the user's rights"
        )
    return err


def _raise_store_error(settings: Settings, err: Exception) -> NoReturn:
    mapped = _store_error(settings, err)
    if mapped is err:
        raise err
    raise mapped from err


async def _migrate(settings: Settings) -> None:
    def work() -> None:
        store = settings.readmodel_store
        print(f"migrate: read model at {store.shown}", flush=True)
        engine = open_engine(store)
        try:
            before = current_revision(engine, MIGRATIONS)
            print(f"migrate: at revision {before or 'none (no schema yet)'}", flush=True)
            before, after = upgrade(engine, MIGRATIONS)
        finally:
            engine.dispose()
        if before == after:
            print(f"migrate: already at revision {after}, nothing to do", flush=True)
        else:
            print(f"migrate: upgraded {before or 'none'} -> {after}", flush=True)

    try:
        await asyncio.to_thread(work)
    except SchemaMismatch as err:
        raise ServiceError(str(err)) from err
    except Exception as err:
        _raise_store_error(settings, err)


async def _rebuild(settings: Settings, args: argparse.Namespace, stop: asyncio.Event) -> None:
    def progress(line: str) -> None:
        print(line, flush=True)

    async def connect_and_rebuild() -> RebuildReport:
        progress(
            f"rebuild: reading closed tickets from Temporal at {settings.temporal_address} "
            f"(namespace {settings.namespace})"
        )
        client = await connect(
            settings.temporal_address,
            settings.namespace,
            give_up_after_s=args.connect_timeout,
            progress=lambda line: progress(f"rebuild: {line}"),
        )
        assert client is not None  # no stop event: it returns a client or raises
        return await rebuild(
            client,
            settings.readmodel_store,
            drop_unretained=args.drop_unretained,
            concurrency=args.concurrency,
            progress=progress,
            migrate=settings.migrates_on_start,
        )

    work = asyncio.create_task(connect_and_rebuild())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        work.cancel()  # a no-op once done; the swap itself is never abandoned (see rebuild.py)
    try:
        report = await work
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # a second signal
        raise ServiceError("stopped before the swap; nothing was changed") from None
    except (UnsupportedSchema, SchemaMismatch) as err:
        raise ServiceError(f"{err}; nothing was changed") from err
    except RebuildRunning as err:
        raise ServiceError(f"{err}\nnothing was changed") from err
    except TemporalUnreachable as err:
        raise ServiceError(
            f"Temporal is unreachable: {err}\nnothing was changed; start Temporal "
            "(`ticketflow up`) or set TICKETFLOW_TEMPORAL_ADDRESS"
        ) from err
    except ServiceError:
        raise
    except Exception as err:
        _raise_store_error(settings, err)
    for line in report.lines():
        progress(line)


def main(argv: list[str] | None = None) -> NoReturn:
    """The process entry point; `run_service` ends the process."""
    args = _parser().parse_args(argv)
    settings = load_settings(Settings, PROG)
    if args.command == "healthcheck":
        host, _, port = settings.listen_address.rpartition(":")
        address = f"{reach_host(host.strip('[]'))}:{port}"
        run_check(PROG, lambda: check_grpc(address))
    # A one-off command serves no metrics (the projection on this host may hold the port).
    setup_service(settings, "projection", serve_metrics=args.command not in ("migrate", "rebuild"))
    if args.command == "migrate":
        run_service(f"{PROG} migrate", lambda stop: _migrate(settings))
    if args.command == "rebuild":
        run_service(f"{PROG} rebuild", lambda stop: _rebuild(settings, args, stop))
    run_service(PROG, lambda stop: _serve(settings, stop))


if __name__ == "__main__":
    main()
