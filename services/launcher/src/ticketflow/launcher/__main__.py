"""`ticketflow up`: the Temporal dev server and every ticketflow service, started and stopped as one.

Order: dev server (persistent, ``<data dir>/temporal.db``) -> its search attributes checked ->
core-worker, agent-worker (both queues), projection, api -> each waited for (workers: polling
their task queues; projection: its gRPC port; api: /readyz and its gRPC port) -> a summary.
Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stops the services first, then the dev server;
if any process dies, the rest are stopped and the exit code is 1. If the launcher itself is killed,
its children get SIGTERM (their parent-death signal, Linux), and the next `ticketflow up` on the
same data dir stops any that still run (listed in ``<data dir>/ticketflow-up.state.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO

from temporalio.api.enums.v1 import TaskQueueType
from ticketflow.contracts import names

from ._probes import TemporalPollers, http_ok, tcp_open
from .devserver import (
    DEFAULT_TEMPORAL_PORT,
    UI_PORT_OFFSET,
    SearchAttributeConflictError,
    TemporalBinaryNotFoundError,
    dev_server_command,
    ensure_search_attributes,
    parse_address,
    port_is_free,
    temporal_binary,
)
from .supervisor import ChildSpec, Stage, Supervisor, SupervisorError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TOKEN_FILE = "approver-token"
LOCK_FILE = "ticketflow-up.lock"
STATE_FILE = "ticketflow-up.state.json"  # the running children; see statefile.py
SERVICES = ("core-worker", "agent-worker", "projection", "api")

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
  TICKETFLOW_APPROVER_TOKENS     name:token,...   unset: a dev token is made, printed and
                                                  kept in <data dir>/approver-token
Every other TICKETFLOW_* variable (policy, agent knobs) passes through to the services.
Two stacks can run side by side with different ports and data dirs.
"""


class UsageError(Exception):
    """A setting is wrong or a port is taken: the message says what to change."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    temporal_port: int
    namespace: str
    ui_port: int | None
    http_port: int
    grpc_port: int
    projection_host: str
    projection_port: int
    external_temporal: str | None  # an address when not starting the dev server
    approver_tokens: str | None

    @property
    def temporal_address(self) -> str:
        return self.external_temporal or f"127.0.0.1:{self.temporal_port}"

    @property
    def projection_address(self) -> str:
        return f"{self.projection_host}:{self.projection_port}"


def _int_env(env: dict[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{key}={raw!r} is not a port number") from None
    if not 0 < value < 65536:
        raise UsageError(f"{key}={value} is outside 1..65535")
    return value


def _address_env(env: dict[str, str], key: str, default: str) -> tuple[str, int]:
    raw = env.get(key, "").strip() or default
    try:
        return parse_address(raw)
    except ValueError as err:
        raise UsageError(f"{key}: {err}") from None


def settings_from(args: argparse.Namespace, env: dict[str, str]) -> Settings:
    data_dir = Path(args.data_dir or env.get("TICKETFLOW_DATA_DIR") or "var").expanduser()
    t_host, t_port = _address_env(
        env, "TICKETFLOW_TEMPORAL_ADDRESS", f"127.0.0.1:{DEFAULT_TEMPORAL_PORT}"
    )
    external = None
    if args.external_temporal:
        external = f"{t_host}:{t_port}"
    elif t_host not in LOOPBACK:
        raise UsageError(
            f"TICKETFLOW_TEMPORAL_ADDRESS={t_host}:{t_port} is not on this machine, and "
            "`ticketflow up` runs its own dev server on 127.0.0.1: set it to 127.0.0.1:<port>, "
            "or add --external-temporal to use that Temporal server instead"
        )
    p_host, p_port = _address_env(env, "TICKETFLOW_PROJECTION_ADDRESS", "127.0.0.1:50052")
    if p_host not in LOOPBACK:
        raise UsageError(
            f"TICKETFLOW_PROJECTION_ADDRESS={p_host}:{p_port}: `ticketflow up` runs the projection "
            "on this machine; set it to 127.0.0.1:<port>"
        )
    ui_port = None
    if not args.headless and not external:
        ui_port = args.temporal_ui_port or t_port + UI_PORT_OFFSET
        if ui_port > 65535:
            raise UsageError(
                f"the Temporal UI port would be {ui_port} (TICKETFLOW_TEMPORAL_ADDRESS port + "
                f"{UI_PORT_OFFSET}): pass --temporal-ui-port or --headless"
            )
    return Settings(
        data_dir=data_dir.resolve(),
        temporal_port=t_port,
        namespace=env.get("TICKETFLOW_NAMESPACE", "").strip() or "default",
        ui_port=ui_port,
        http_port=_int_env(env, "TICKETFLOW_HTTP_PORT", 8000),
        grpc_port=_int_env(env, "TICKETFLOW_GRPC_PORT", 50051),
        projection_host="127.0.0.1" if p_host == "localhost" else p_host,
        projection_port=p_port,
        external_temporal=external,
        approver_tokens=env.get("TICKETFLOW_APPROVER_TOKENS", "").strip() or None,
    )


def check_ports(s: Settings) -> None:
    """Fail before starting anything when a port is taken, naming the setting to change."""
    wanted: list[tuple[str, str, int]] = [
        ("127.0.0.1", "TICKETFLOW_HTTP_PORT", s.http_port),
        ("127.0.0.1", "TICKETFLOW_GRPC_PORT", s.grpc_port),
        (s.projection_host, "TICKETFLOW_PROJECTION_ADDRESS", s.projection_port),
    ]
    if not s.external_temporal:
        wanted.insert(0, ("127.0.0.1", "TICKETFLOW_TEMPORAL_ADDRESS", s.temporal_port))
        if s.ui_port is not None:
            ui_setting = "--temporal-ui-port (default: the TICKETFLOW_TEMPORAL_ADDRESS port + 1000)"
            wanted.insert(1, ("127.0.0.1", ui_setting, s.ui_port))
    seen: dict[int, str] = {}
    for _, setting, port in wanted:
        if port in seen:
            raise UsageError(f"{setting} and {seen[port]} both use port {port}: change one")
        seen[port] = setting
    for host, setting, port in wanted:
        if not port_is_free(host, port):
            raise UsageError(
                f"port {port} on {host} is in use ({setting}). Stop what listens there "
                f"(`ss -ltnp 'sport = :{port}'` shows it) or change {setting}"
            )


def lock_data_dir(data_dir: Path) -> IO[str]:
    """One `ticketflow up` per data dir (two dev servers on one SQLite file would corrupt it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / LOCK_FILE, "a+")  # held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise UsageError(
            f"another `ticketflow up` (pid {holder}) is using the data dir {data_dir}: stop it, "
            "or give this one its own --data-dir (or TICKETFLOW_DATA_DIR) and ports"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def dev_approver_token(data_dir: Path) -> tuple[str, bool]:
    """The dev approver token from ``<data dir>/approver-token``, made on first use (mode 0600).

    Returns (token, created).
    """
    path = data_dir / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        token = path.read_text().strip()
        if token:
            return token, False
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token, True


def service_commands(bin_dir: Path) -> dict[str, list[str]]:
    commands = {
        "core-worker": [str(bin_dir / "ticketflow-core-worker")],
        "agent-worker": [str(bin_dir / "ticketflow-agent-worker"), "--queue", "both"],
        "projection": [str(bin_dir / "ticketflow-projection")],
        "api": [str(bin_dir / "ticketflow-api")],
    }
    missing = [argv[0] for argv in commands.values() if not os.access(argv[0], os.X_OK)]
    if missing:
        raise UsageError(
            f"not installed: {', '.join(missing)}: run `uv sync --all-packages` (or `./dev up`)"
        )
    return commands


def up(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    try:
        s = settings_from(args, env)
        lock = lock_data_dir(s.data_dir)
        sup = Supervisor(
            grace_period=args.grace_period,
            name_width=12,
            poll_interval=0.25,
            state_file=s.data_dir / STATE_FILE,
            state_owner="`ticketflow up`",
        )
        # With the lock held, no launcher runs on this data dir: whatever its state file lists
        # and still runs was left by one that was killed (and holds the ports checked next).
        sup.stop_stale_children()
        check_ports(s)
        bin_dir = Path(args.bin_dir).absolute() if args.bin_dir else Path(sys.executable).parent
        commands = service_commands(bin_dir)
        temporal = None if s.external_temporal else temporal_binary()
    except (UsageError, TemporalBinaryNotFoundError) as err:
        print(f"ticketflow: {err}", file=sys.stderr)
        return 2

    token_note = "from TICKETFLOW_APPROVER_TOKENS"
    api_env_extra: dict[str, str] = {}
    if s.approver_tokens is None:
        token, created = dev_approver_token(s.data_dir)
        api_env_extra["TICKETFLOW_APPROVER_TOKENS"] = f"dev:{token}"
        token_note = f"dev:{token}  ({'new, ' if created else ''}kept in {s.data_dir / TOKEN_FILE})"

    service_env = {
        **env,
        "TICKETFLOW_TEMPORAL_ADDRESS": s.temporal_address,
        "TICKETFLOW_NAMESPACE": s.namespace,
        "TICKETFLOW_DATA_DIR": str(s.data_dir),
        "TICKETFLOW_HTTP_PORT": str(s.http_port),
        "TICKETFLOW_GRPC_PORT": str(s.grpc_port),
        "TICKETFLOW_PROJECTION_ADDRESS": s.projection_address,
    }
    pollers = TemporalPollers(s.temporal_address, s.namespace)
    started_at, started_wall = time.monotonic(), time.time()
    wf, act = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY

    def polling(*queues: tuple[str, TaskQueueType.ValueType]) -> Callable[[], bool]:
        # Pollers seen since this launch: a dev server we start knows no older ones, and with an
        # external server this ignores workers of an earlier run.
        return lambda: pollers.polled_since(queues, started_wall)

    services = [
        ChildSpec(
            "core-worker",
            commands["core-worker"],
            env=service_env,
            ready=polling((names.CORE_QUEUE, wf)),
            ready_what=f"polling {names.CORE_QUEUE}",
        ),
        ChildSpec(
            "agent-worker",
            commands["agent-worker"],
            env=service_env,
            ready=polling((names.AGENT_QUEUE, act), (names.AGENT_FALLBACK_QUEUE, act)),
            ready_what=f"polling {names.AGENT_QUEUE} and {names.AGENT_FALLBACK_QUEUE}",
        ),
        ChildSpec(
            "projection",
            commands["projection"],
            env=service_env,
            ready=_all(
                lambda: tcp_open(s.projection_host, s.projection_port),
                polling((names.PROJECTION_QUEUE, act)),
            ),
            ready_what=f"gRPC on {s.projection_address}, polling {names.PROJECTION_QUEUE}",
        ),
        ChildSpec(
            "api",
            commands["api"],
            env={**service_env, **api_env_extra},
            # The port first: each /readyz call is a line in the api's access log.
            ready=_all(
                lambda: tcp_open("127.0.0.1", s.grpc_port),
                lambda: http_ok(f"http://127.0.0.1:{s.http_port}/readyz"),
            ),
            ready_what=f"gRPC on port {s.grpc_port}, http://127.0.0.1:{s.http_port}/readyz",
        ),
    ]

    def search_attributes_stage() -> None:
        deadline = time.monotonic() + args.ready_timeout
        try:
            added = asyncio.run(ensure_search_attributes(s.temporal_address, s.namespace, deadline))
        except (TimeoutError, SearchAttributeConflictError) as err:
            raise SupervisorError(str(err)) from err
        if added:
            sup.log(f"registered search attributes {', '.join(added)} in namespace {s.namespace}")

    def summary() -> None:
        took = time.monotonic() - started_at
        ui = f"http://127.0.0.1:{s.ui_port}" if s.ui_port else "(off)"
        temporal_note = (
            "external" if s.external_temporal else f"dev server, {s.data_dir}/temporal.db"
        )
        lines = [
            "",
            f"ticketflow is up ({took:.1f}s). Ctrl-C stops everything.",
            f"  HTTP API      http://127.0.0.1:{s.http_port}   docs: http://127.0.0.1:{s.http_port}/docs",
            f"  gRPC API      127.0.0.1:{s.grpc_port}   ticketflow.v1.TicketService",
            f"  Projection    {s.projection_address}   read model gRPC",
            f"  Temporal      {s.temporal_address}   namespace {s.namespace} ({temporal_note})",
            f"  Temporal UI   {ui}",
            f"  Data dir      {s.data_dir}",
            f"  Approver      {token_note}",
            "",
        ]
        for line in lines:
            sup.emit("", line)

    stages: list[Stage] = []
    if temporal is not None:
        command = dev_server_command(
            db_filename=s.data_dir / "temporal.db",
            port=s.temporal_port,
            ui_port=s.ui_port,
            namespace=s.namespace,
            headless=s.ui_port is None,
            binary=temporal,
        )
        stages.append(
            [
                ChildSpec(
                    "temporal",
                    command,
                    env=env,
                    ready=lambda: tcp_open("127.0.0.1", s.temporal_port),
                    ready_what=f"127.0.0.1:{s.temporal_port}",
                    stop_wave=1,  # after the services, so workers shut down cleanly
                    quiet_when_stopping=True,  # its shutdown warnings say nothing useful
                )
            ]
        )
    stages += [search_attributes_stage, services, summary]
    what = ["Temporal dev server"] * (temporal is not None) + list(SERVICES)
    sup.log(f"starting {', '.join(what)}; data dir {s.data_dir}")
    try:
        return sup.run(stages, ready_timeout=args.ready_timeout)
    finally:
        pollers.close()
        lock.close()


def _all(*probes: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: all(probe() for probe in probes)


def build_parser() -> argparse.ArgumentParser:
    try:
        dist_version = version("ticketflow")
    except PackageNotFoundError:  # pragma: no cover (running from a source tree)
        dist_version = "unknown"
    parser = argparse.ArgumentParser(
        prog="ticketflow",
        description="ticketflow: support tickets resolved by an AI agent, risky ones approved by "
        "a human, on Temporal. `ticketflow up` runs the whole system on this machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {dist_version}")
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
    up_parser.set_defaults(func=up)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
