"""The `ticketflow` command line: its help, its settings and options, and its exit codes.

`ticketflow tickets ...` (the operator CLI over the api) is ``tickets_cli``; its exit codes are in
its help. `ticketflow up`'s exit codes: 0 after a requested stop (Ctrl-C, SIGTERM, SIGHUP,
SIGQUIT); ``EXIT_FAILED`` (1) when a process died, did not become ready or a start step failed;
``EXIT_BAD_SETTINGS`` (2) when nothing was started because a setting, an option, the data dir or
a port was wrong (the message says what to change).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError
from pathlib import Path
from typing import Any

from ticketflow.runtime import (
    EXIT_BAD_SETTINGS,
    EXIT_FAILED,
    load_settings,
    package_version,
    setup_logging,
)

from .config import LauncherSettings, UpOptions, UsageError
from .tickets_cli import add_tickets_parser, run_tickets
from .up import up

__all__ = ["EXIT_BAD_SETTINGS", "EXIT_FAILED", "EXIT_OK", "PROG", "build_parser", "main"]

PROG = "ticketflow"
EXIT_OK = 0

UP_DESCRIPTION = """\
Start the Temporal dev server (persistent: <data dir>/temporal.db) and every ticketflow service
(core-worker, agent-worker on both queues, projection, api) on 127.0.0.1, wait until each is
ready, print where everything listens, and run until Ctrl-C, SIGTERM or SIGHUP, which stops them
all. If one process dies, the others are stopped and the exit code is 1. Processes that a killed
earlier `ticketflow up` left running on the same data dir are stopped first.
"""

ENV_HELP = """\
environment (all optional):
  TICKETFLOW_TEMPORAL_ADDRESS    127.0.0.1:7233   the dev server listens on this port
                                                  (its web UI on port + 1000)
  TICKETFLOW_NAMESPACE           default
  TICKETFLOW_DATA_DIR            ./var            temporal.db, ledger.db, readmodel.db,
                                                  approver-token
  TICKETFLOW_HTTP_PORT           8000             HTTP API (docs at /docs)
  TICKETFLOW_GRPC_PORT           50051            gRPC ticketflow.v1.TicketService
  TICKETFLOW_PROJECTION_ADDRESS  127.0.0.1:50052  the projection's gRPC read API
  TICKETFLOW_APPROVER_TOKENS     name:token,...   unset: a dev token is made and kept in
                                                  <data dir>/approver-token (not printed)
  TICKETFLOW_VIEWER_TOKENS       name:token,...   set: reads need a viewer's or an approver's
                                                  token; unset: reads are open (dev default)
  TICKETFLOW_READMODEL_TOKEN     token            api -> projection; unset: one is made for
                                                  each run (given to those two only)
  TICKETFLOW_LEDGER_URL          sqlite:///ledger.db     the core worker's store (under the
  TICKETFLOW_READMODEL_URL       sqlite:///readmodel.db  data dir), or postgresql://...
  TICKETFLOW_LOG_LEVEL           INFO             the launcher's and the services' log level
  TICKETFLOW_LOG_FORMAT          auto             json, text; auto: text on a terminal
  TICKETFLOW_METRICS_PORT        9000             first of 5 metrics ports (Temporal, api,
                                                  core, agent, projection)
Every other TICKETFLOW_* variable (policy, agent knobs, TICKETFLOW_MIGRATE_ON_START) passes through
to the services.
Two stacks can run side by side with different ports and data dirs.

exit codes: 0 stopped on request, 1 a process died or did not become ready, 2 nothing started
(a setting, the data dir or a port is wrong: the message says what to change)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="ticketflow: support tickets resolved by an AI agent, risky ones approved by "
        "a human, on Temporal. `ticketflow up` runs the whole system on this machine; "
        "`ticketflow tickets` lists, shows, approves and rejects tickets through its api.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    up_parser = commands.add_parser(
        "up",
        help="start the Temporal dev server and every service; Ctrl-C stops them all",
        description=UP_DESCRIPTION,
        epilog=ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up_parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the state lives (default: $TICKETFLOW_DATA_DIR, else ./var)",
    )
    up_parser.add_argument(
        "--external-temporal",
        action="store_true",
        help="start no dev server: use the Temporal server at TICKETFLOW_TEMPORAL_ADDRESS "
        "(its search attributes are registered if missing)",
    )
    up_parser.add_argument(
        "--temporal-ui-port",
        type=int,
        metavar="PORT",
        help="port of the Temporal web UI (default: the Temporal port + 1000)",
    )
    up_parser.add_argument("--headless", action="store_true", help="run no Temporal web UI")
    up_parser.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long each step may take to become ready (default: 60)",
    )
    up_parser.add_argument(
        "--grace-period",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long a process may take to stop after SIGTERM before SIGKILL (default: 10)",
    )
    up_parser.add_argument(
        "--bin-dir",
        metavar="DIR",
        help="where the services' console scripts are (default: next to this Python)",
    )
    add_tickets_parser(commands)
    return parser


def up_options(args: argparse.Namespace) -> UpOptions:
    return UpOptions(
        external_temporal=args.external_temporal,
        headless=args.headless,
        temporal_ui_port=args.temporal_ui_port,
        ready_timeout=args.ready_timeout,
        grace_period=args.grace_period,
        bin_dir=Path(args.bin_dir) if args.bin_dir else None,
    )


def load_launcher_settings(args: argparse.Namespace) -> LauncherSettings:
    """The environment, with ``--data-dir`` over ``TICKETFLOW_DATA_DIR``; exits 2 if it is bad."""
    overrides: dict[str, Any] = {"data_dir": args.data_dir} if args.data_dir else {}
    return load_settings(LauncherSettings, PROG, overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "tickets":
        return run_tickets(args)
    settings = load_launcher_settings(args)
    setup_logging(settings.log_level, settings.log_format, service="launcher")
    try:
        return up(settings, up_options(args))
    except UsageError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_BAD_SETTINGS


def _version() -> str:
    try:
        return package_version("ticketflow")
    except PackageNotFoundError:  # pragma: no cover (running from a source tree)
        return "unknown"
