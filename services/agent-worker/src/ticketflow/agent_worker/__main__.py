"""``ticketflow-agent-worker [--queue primary|fallback|both]``: the agent worker process.

SIGTERM/SIGINT stop polling and give in-flight model calls ``GRACEFUL_SHUTDOWN_TIMEOUT`` to finish;
a second signal cancels them at once (``ticketflow.runtime.run_service``).
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from ticketflow.contracts import ModelTier
from ticketflow.runtime import load_settings, pollers, run_service, setup_service
from ticketflow.runtime.healthcheck import check_polling, run_check

from .settings import Settings
from .worker import DIST_NAME, VERSION, QueueChoice, serve, task_queue_for


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
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "healthcheck"],
        default="serve",
        help="serve (the default), or healthcheck: exit 0 when Temporal lists an agent worker of "
        "this host polling one of the agent queues in the last minute and a half, else 1 (the "
        "image's HEALTHCHECK; any of the two, since it cannot know the worker's --queue)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> NoReturn:
    args = parse_args(argv)
    settings = load_settings(Settings, DIST_NAME)
    if args.command == "healthcheck":
        queues = [(task_queue_for(tier), pollers.ACTIVITY) for tier in ModelTier]
        run_check(
            DIST_NAME,
            lambda: check_polling(
                settings.temporal_address,
                settings.namespace,
                queues,
                identity_prefix=f"{DIST_NAME}/",
                any_queue=True,
            ),
        )
    setup_service(settings, "agent-worker")
    run_service(DIST_NAME, lambda stop: serve(settings, args.queue, stop=stop))


if __name__ == "__main__":
    main()
