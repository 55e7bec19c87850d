"""``ticketflow-core-worker``: runs the ticket workflow and the side-effect activities until
SIGTERM/SIGINT (a second signal stops it without waiting)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from ticketflow.runtime import load_settings, run_service, setup_logging

from .settings import Settings
from .worker import DIST_NAME, VERSION, serve


def main(argv: list[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(
        prog=DIST_NAME,
        description="Temporal worker for the ticket workflow, the refund ledger and the reply "
        "outbox. Configured by TICKETFLOW_* environment variables (see README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    parser.parse_args(argv)
    settings = load_settings(Settings, DIST_NAME)
    setup_logging(settings.log_level)
    run_service(DIST_NAME, lambda stop: serve(settings, stop))


if __name__ == "__main__":
    main()
