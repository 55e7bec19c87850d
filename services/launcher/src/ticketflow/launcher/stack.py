"""What `ticketflow up` runs: the Temporal dev server and the four services, each as a ``ChildSpec``
(its command, its environment, and the probe that says it is ready).

The launcher never imports a service: it runs their console scripts from one bin dir.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ticketflow.contracts import names
from ticketflow.runtime.devserver import dev_server_command
from ticketflow.runtime.logs import resolve_log_format
from ticketflow.runtime.pollers import ACTIVITY, WORKFLOW

from ._probes import TemporalPollers, all_of, http_ok, tcp_open
from .config import StackConfig, UsageError
from .data_dir import TEMPORAL_DB
from .supervisor import ChildSpec

__all__ = [
    "PRIVATE_UMASK",
    "SERVICES",
    "dev_server_child",
    "service_children",
    "service_commands",
    "service_env",
]

SERVICES = ("core-worker", "agent-worker", "projection", "api")

# Every child runs with this umask: what it creates in the data dir (temporal.db and its SQLite side
# files, ledger.db, readmodel.db) is 0600, a dir 0700. The services also do that themselves.
PRIVATE_UMASK = 0o077


def service_commands(bin_dir: Path) -> dict[str, list[str]]:
    """Each service's argv; ``UsageError`` if a console script is missing from ``bin_dir``."""
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


def service_env(config: StackConfig, env: Mapping[str, str]) -> dict[str, str]:
    """The launcher's environment, with the stack's addresses and data dir set explicitly, and
    the log format resolved here: the services' stderr is the launcher's pipe, so their own
    ``auto`` would always pick JSON; on a terminal a person reads the launcher's output."""
    return {
        **env,
        "TICKETFLOW_LOG_FORMAT": resolve_log_format(env.get("TICKETFLOW_LOG_FORMAT", "auto")),
        "TICKETFLOW_METRICS_HOST": "127.0.0.1",
        "TICKETFLOW_TEMPORAL_ADDRESS": config.temporal_address,
        "TICKETFLOW_NAMESPACE": config.namespace,
        "TICKETFLOW_DATA_DIR": str(config.data_dir),
        "TICKETFLOW_HTTP_PORT": str(config.http_port),
        "TICKETFLOW_GRPC_PORT": str(config.grpc_port),
        "TICKETFLOW_PROJECTION_ADDRESS": config.projection_address,
    }


def dev_server_child(config: StackConfig, binary: str, env: Mapping[str, str]) -> ChildSpec:
    """The dev server on 127.0.0.1 with its db in the data dir; ready once its port is open
    (the search-attribute stage that follows waits until it answers)."""
    command = dev_server_command(
        db_filename=config.data_dir / TEMPORAL_DB,
        port=config.temporal_port,
        ui_port=config.ui_port,
        namespace=config.namespace,
        headless=config.ui_port is None,
        binary=binary,
        metrics_port=config.metrics_ports["temporal"],
    )
    return ChildSpec(
        "temporal",
        command,
        env=env,
        ready=lambda: tcp_open("127.0.0.1", config.temporal_port),
        ready_what=f"127.0.0.1:{config.temporal_port}",
        stop_wave=1,  # after the services, so workers shut down cleanly
        quiet_when_stopping=True,  # its shutdown warnings say nothing useful
        umask=PRIVATE_UMASK,
    )


def service_children(
    config: StackConfig,
    commands: Mapping[str, list[str]],
    env: Mapping[str, str],
    pollers: TemporalPollers,
    *,
    since_epoch_s: float,
    api_env: Mapping[str, str],
    projection_env: Mapping[str, str] | None = None,
) -> list[ChildSpec]:
    """The four services, the core and agent workers at ``config.worker_nice``. Workers are ready
    when Temporal sees them poll (only pollers seen since ``since_epoch_s``: a dev server we start
    knows no older ones, and with an external server this ignores workers of an earlier run); the
    api also gets ``api_env`` (a dev token), the projection ``projection_env`` (the read-model
    token, which the api_env carries too)."""
    http, grpc = config.http_port, config.grpc_port
    ports = config.metrics_ports

    def metrics(name: str) -> dict[str, str]:
        return {"TICKETFLOW_METRICS_PORT": str(ports[name])}

    return [
        ChildSpec(
            "core-worker",
            commands["core-worker"],
            env={**env, **metrics("core-worker")},
            umask=PRIVATE_UMASK,
            ready=pollers.probe([(names.CORE_QUEUE, WORKFLOW)], since_epoch_s=since_epoch_s),
            ready_what=f"polling {names.CORE_QUEUE}",
            nice=config.worker_nice,
        ),
        ChildSpec(
            "agent-worker",
            commands["agent-worker"],
            env={**env, **metrics("agent-worker")},
            umask=PRIVATE_UMASK,
            ready=pollers.probe(
                [(names.AGENT_QUEUE, ACTIVITY), (names.AGENT_FALLBACK_QUEUE, ACTIVITY)],
                since_epoch_s=since_epoch_s,
            ),
            ready_what=f"polling {names.AGENT_QUEUE} and {names.AGENT_FALLBACK_QUEUE}",
            nice=config.worker_nice,
        ),
        ChildSpec(
            "projection",
            commands["projection"],
            env={**env, **(projection_env or {}), **metrics("projection")},
            umask=PRIVATE_UMASK,
            ready=all_of(
                lambda: tcp_open(config.projection_host, config.projection_port),
                pollers.probe([(names.PROJECTION_QUEUE, ACTIVITY)], since_epoch_s=since_epoch_s),
            ),
            ready_what=f"gRPC on {config.projection_address}, polling {names.PROJECTION_QUEUE}",
        ),
        ChildSpec(
            "api",
            commands["api"],
            env={**env, **api_env, **metrics("api")},
            umask=PRIVATE_UMASK,
            # The port first: each /readyz call is a line in the api's access log.
            ready=all_of(
                lambda: tcp_open("127.0.0.1", grpc),
                lambda: http_ok(f"http://127.0.0.1:{http}/readyz"),
            ),
            ready_what=f"gRPC on port {grpc}, http://127.0.0.1:{http}/readyz",
        ),
    ]
