"""``ticketflow-agent-worker [--queue primary|fallback|both]``: the agent worker process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from pydantic import ValidationError

from .settings import Settings
from .worker import DIST_NAME, QueueChoice, package_version, serve

EXIT_BAD_SETTINGS = 2
EXIT_FAILED = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=DIST_NAME,
        description="Temporal worker for the agent activities (classify, draft_reply).",
    )
    parser.add_argument(
        "--queue",
        type=QueueChoice,
        choices=list(QueueChoice),
        default=QueueChoice.BOTH,
        help="which task queues to poll (default: both)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    return parser.parse_args(argv)


def _settings_error(err: ValidationError) -> str:
    lines = [f"{DIST_NAME}: invalid settings:"]
    for e in err.errors():
        field = ".".join(str(part) for part in e["loc"])
        lines.append(f"  TICKETFLOW_{field.upper()}={e.get('input')!r}: {e['msg']}")
    return "\n".join(lines)


async def _run(settings: Settings, queue: QueueChoice) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main_task = asyncio.current_task()

    def on_signal(signame: str) -> None:
        if stop.is_set():  # a second signal: stop waiting for in-flight calls
            print(
                f"{DIST_NAME}: {signame} again, cancelling in-flight calls",
                file=sys.stderr,
                flush=True,
            )
            if main_task is not None:
                main_task.cancel()
            return
        print(f"{DIST_NAME}: {signame}, shutting down gracefully", file=sys.stderr, flush=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    await serve(settings, queue, stop=stop)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as err:
        print(_settings_error(err), file=sys.stderr)
        sys.exit(EXIT_BAD_SETTINGS)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_run(settings, args.queue))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit(130)
    except Exception as err:
        print(f"{DIST_NAME}: fatal: {err}", file=sys.stderr)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
