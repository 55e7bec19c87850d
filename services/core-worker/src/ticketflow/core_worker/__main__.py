"""``ticketflow-core-worker``: runs the ticket workflow and the side-effect activities until
SIGTERM/SIGINT (a second signal stops it without waiting); ``ticketflow-core-worker migrate``
brings the ledger store's schema to this release and exits."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from ticketflow.contracts import names
from ticketflow.runtime import (
    EXIT_FAILED,
    ServiceError,
    load_settings,
    pollers,
    run_service,
    setup_service,
)
from ticketflow.runtime.healthcheck import check_polling, run_check

from ._open import migrate
from ._store import LedgerStore
from .settings import Settings
from .worker import DIST_NAME, IDENTITY_PREFIX, VERSION, serve

EPILOG = """\
storage settings (environment):
  TICKETFLOW_LEDGER_URL         the refund ledger and reply outbox: sqlite:///<file> (relative:
                                under TICKETFLOW_DATA_DIR; default sqlite:///ledger.db) or
                                postgresql://<user>:<password>@<host>:<port>/<database>
  TICKETFLOW_MIGRATE_ON_START   true/false: migrate the ledger's schema at start. Unset: yes on
                                SQLite; no on PostgreSQL (run `ticketflow-core-worker migrate`
                                first; the worker refuses to start on a store that is behind)
"""


def _migrate(settings: Settings) -> NoReturn:
    store = LedgerStore(settings.ledger_store_url)
    try:
        print(f"{DIST_NAME}: {migrate(store)}", flush=True)
    except ServiceError as err:
        print(f"{DIST_NAME}: {err}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_FAILED) from None
    finally:
        store.close()
    # A one-shot command with nothing running in the background: a plain exit is enough.
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(
        prog=DIST_NAME,
        description="Temporal worker for the ticket workflow, the refund ledger and the reply "
        "outbox. Configured by TICKETFLOW_* environment variables (see README).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "migrate",
        help="bring the ledger store's schema (TICKETFLOW_LEDGER_URL) to this release, then exit",
        description="Apply the ledger store's pending schema migrations (forward-only, "
        "idempotent, safe to run from several hosts at once) and exit: 0 when done or already "
        "current, 1 with what to check when the store cannot be reached.",
    )
    commands.add_parser(
        "healthcheck",
        help="exit 0 when Temporal lists a core worker of this host polling "
        f"'{names.CORE_QUEUE}' (workflows and activities) in the last minute and a half, else 1 "
        "(the image's HEALTHCHECK)",
    )
    args = parser.parse_args(argv)
    settings = load_settings(Settings, DIST_NAME)
    if args.command == "healthcheck":
        queues = [(names.CORE_QUEUE, pollers.WORKFLOW), (names.CORE_QUEUE, pollers.ACTIVITY)]
        run_check(
            DIST_NAME,
            lambda: check_polling(
                settings.temporal_address,
                settings.namespace,
                queues,
                identity_prefix=IDENTITY_PREFIX,
            ),
        )
    # A one-off command serves no metrics (the worker on this host may hold the port).
    setup_service(settings, "core-worker", serve_metrics=args.command != "migrate")
    # Alembic narrates every step at INFO ("Context impl ..."); our own line says what was done.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    if args.command == "migrate":
        _migrate(settings)
    run_service(DIST_NAME, lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()
