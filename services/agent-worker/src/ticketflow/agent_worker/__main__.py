"""``ticketflow-agent-worker [--queue primary|fallback|both]``: the agent worker process.

SIGTERM/SIGINT stop polling and give in-flight model calls ``GRACEFUL_SHUTDOWN_TIMEOUT`` to finish;
a second signal cancels them at once (``ticketflow.runtime.run_service``).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from ticketflow.runtime import load_settings, run_service, setup_service

from .settings import Settings
from .worker import DIST_NAME, VERSION, QueueChoice, serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=DIST_NAME,
        description="Temporal worker for the agent activities (classify, draft_reply). "
        "Configured by TICKETFLOW_* environment variables (see README).",
    )
    parser.add_argument(
        "--queue",
        type=QueueChoice,
        choices=list(QueueChoice),
        default=QueueChoice.BOTH,
        help="which task queues to poll (default: both)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> NoReturn:
    args = parse_args(argv)
    settings = load_settings(Settings, DIST_NAME)
    setup_service(settings, "agent-worker")
    run_service(DIST_NAME, lambda stop: serve(settings, args.queue, stop=stop))


if __name__ == "__main__":
    main()
