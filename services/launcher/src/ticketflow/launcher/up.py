"""`ticketflow up`: the Temporal dev server and every ticketflow service, started and stopped as one.

Order: data dir locked -> what a killed earlier launcher left running stopped -> ports checked ->
dev server (persistent, ``<data dir>/temporal.db``) -> its search attributes checked ->
core-worker, agent-worker (both queues), projection, api -> each waited for (workers: polling
their task queues; projection: its gRPC port too; api: /readyz and its gRPC port) -> the banner.
Ctrl-C, SIGTERM, SIGHUP (the terminal closed) or SIGQUIT stops the services first, then the dev
server; if any process dies, the rest are stopped and the exit code is 1. If the launcher itself is
killed, its children get SIGTERM (their parent-death signal, Linux), and the next `ticketflow up`
on the same data dir stops any that still run (listed in ``<data dir>/ticketflow-up.state.json``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from ticketflow.runtime.devserver import TemporalBinaryNotFoundError, temporal_binary
from ticketflow.runtime.search_attributes import (
    SearchAttributeConflictError,
    ensure_search_attributes,
)

from ._probes import TemporalPollers
from .config import (
    LauncherSettings,
    StackConfig,
    UpOptions,
    UsageError,
    check_ports,
    stack_config,
)
from .data_dir import (
    STATE_FILE,
    TEMPORAL_DB,
    TOKEN_FILE,
    dev_approver_token,
    lock_data_dir,
    secure_data_dir,
)
from .dev_keys import dev_decision_keys
from .stack import SERVICES, dev_server_child, service_children, service_commands, service_env
from .supervisor import Stage, Supervisor, SupervisorError

__all__ = ["banner", "up"]


def up(settings: LauncherSettings, options: UpOptions) -> int:
    """Run the stack until a stop signal (exit code 0) or a failure (1).

    Raises ``UsageError`` before anything is started when a setting is wrong, the data dir is in
    use, a port is taken or a command is missing.
    """
    config = stack_config(settings, options)
    tightened: list[str] = []
    secure_data_dir(config.data_dir, tightened.append)
    lock = lock_data_dir(config.data_dir)
    try:
        supervisor = Supervisor(
            grace_period=options.grace_period,
            name_width=12,
            poll_interval=0.25,
            state_file=config.data_dir / STATE_FILE,
            state_owner="`ticketflow up`",
        )
        for line in tightened:
            supervisor.log(line)
        # With the lock held, no launcher runs on this data dir: whatever its state file lists
        # and still runs was left by one that was killed (and holds the ports checked next).
        supervisor.stop_stale_children()
        check_ports(config)
        bin_dir = options.bin_dir.absolute() if options.bin_dir else Path(sys.executable).parent
        commands = service_commands(bin_dir)
        try:
            temporal = None if config.external_temporal else temporal_binary()
        except TemporalBinaryNotFoundError as err:
            raise UsageError(str(err)) from None
        return Launch(config, options, supervisor, commands, temporal, dict(os.environ)).run()
    finally:
        lock.close()


class Launch:
    """One run of the stack: the supervisor's stages and what they print between them."""

    def __init__(
        self,
        config: StackConfig,
        options: UpOptions,
        supervisor: Supervisor,
        commands: Mapping[str, list[str]],
        temporal: str | None,  # the dev server's binary; None with an external Temporal
        env: Mapping[str, str],
    ) -> None:
        self.config = config
        self.options = options
        self.supervisor = supervisor
        self.commands = commands
        self.temporal = temporal
        self.env = env
        self.approver_note, self.api_env = self._approver_tokens()
        self.decisions_note, self.decision_env = self._decision_keys()
        self.readmodel_env = self._readmodel_token()
        self.pollers = TemporalPollers(config.temporal_address, config.namespace)
        self.started_at, self.started_wall = time.monotonic(), time.time()

    def _approver_tokens(self) -> tuple[str, dict[str, str]]:
        """The banner's approver line, and the api's extra environment (a dev token if needed)."""
        if self.config.approver_tokens_given:
            return "from TICKETFLOW_APPROVER_TOKENS", {}
        data_dir = self.config.data_dir
        token, created = dev_approver_token(data_dir)
        # Where the token is and how to read it, never the token: the banner ends up in logs.
        path = data_dir / TOKEN_FILE
        new = " (new)" if created else ""
        note = f"dev token in {path}{new}   read it: cat {shlex.quote(str(path))}"
        return note, {"TICKETFLOW_APPROVER_TOKENS": f"dev:{token}"}

    def _decision_keys(self) -> tuple[str, dict[str, str]]:
        """The banner's decision-key line, and the services' extra environment: without keys
        configured, the path of a dev key file (the api signs with it, the core worker checks)."""
        if self.config.decision_keys_given:
            return "from TICKETFLOW_DECISION_KEYS / TICKETFLOW_DECISION_KEYS_FILE", {}
        path, key_id, created = dev_decision_keys(self.config.data_dir)
        note = f"dev key {key_id}  ({'new, ' if created else ''}kept in {path})"
        return note, {"TICKETFLOW_DECISION_KEYS_FILE": str(path)}

    def _readmodel_token(self) -> dict[str, str]:
        """The api's and the projection's extra environment: without TICKETFLOW_READMODEL_TOKEN, a
        fresh token for this run (both start and stop with it, so nothing is kept), so that only
        the api reads through the projection's port. Never printed."""
        if self.config.readmodel_token_given:
            return {}
        return {"TICKETFLOW_READMODEL_TOKEN": secrets.token_urlsafe(32)}

    def stages(self) -> list[Stage]:
        stages: list[Stage] = []
        if self.temporal is not None:
            stages.append([dev_server_child(self.config, self.temporal, self.env)])
        services = service_children(
            self.config,
            self.commands,
            # The key file's path only (the api and the core worker read it; the others ignore it).
            {**service_env(self.config, self.env), **self.decision_env},
            self.pollers,
            since_epoch_s=self.started_wall,
            api_env={**self.api_env, **self.readmodel_env},
            projection_env=self.readmodel_env,
        )
        return [*stages, self.register_search_attributes, services, self.print_banner]

    def register_search_attributes(self) -> None:
        """Check (register if missing) the search attributes; a conflict aborts the start."""
        config = self.config
        deadline = time.monotonic() + self.options.ready_timeout
        try:
            added = asyncio.run(
                ensure_search_attributes(config.temporal_address, config.namespace, deadline)
            )
        except (TimeoutError, SearchAttributeConflictError) as err:
            raise SupervisorError(str(err)) from err
        if added:
            self.supervisor.log(
                f"registered search attributes {', '.join(added)} in namespace {config.namespace}"
            )

    def print_banner(self) -> None:
        took = time.monotonic() - self.started_at
        for line in banner(self.config, self.approver_note, took, self.decisions_note):
            self.supervisor.emit("", line)

    def run(self) -> int:
        what = ["Temporal dev server"] * (self.temporal is not None) + list(SERVICES)
        self.supervisor.log(f"starting {', '.join(what)}; data dir {self.config.data_dir}")
        try:
            return self.supervisor.run(self.stages(), ready_timeout=self.options.ready_timeout)
        finally:
            self.pollers.close()


def banner(
    config: StackConfig, approver_note: str, took_s: float, decisions_note: str = ""
) -> list[str]:
    """What `ticketflow up` prints once everything is ready: where each part listens."""
    http = f"http://127.0.0.1:{config.http_port}"
    ui = f"http://127.0.0.1:{config.ui_port}" if config.ui_port else "(off)"
    temporal_note = (
        "external" if config.external_temporal else f"dev server, {config.data_dir / TEMPORAL_DB}"
    )
    return [
        "",
        f"ticketflow is up ({took_s:.1f}s). Ctrl-C stops everything.",
        f"  HTTP API      {http}   docs: {http}/docs",
        f"  Console       {http}/console   sign in with the approver token",
        f"  gRPC API      127.0.0.1:{config.grpc_port}   ticketflow.v1.TicketService",
        f"  Projection    {config.projection_address}   read model gRPC, for the api only "
        f"({_readmodel_note(config)})",
        f"  Temporal      {config.temporal_address}   namespace {config.namespace} ({temporal_note})",
        f"  Temporal UI   {ui}",
        f"  Data dir      {config.data_dir}",
        f"  Approver      {approver_note}",
        f"  Reads         {_reads_note(config)}",
        *([f"  Decisions     signed with {decisions_note}"] if decisions_note else []),
        "  Metrics       Prometheus, http://127.0.0.1:<port>/metrics:",
        *(
            f"    {name:<13} http://127.0.0.1:{port}/metrics"
            for name, port in config.metrics_ports.items()
        ),
        "",
    ]


def _readmodel_note(config: StackConfig) -> str:
    if config.readmodel_token_given:
        return "token from TICKETFLOW_READMODEL_TOKEN"
    return "a token made for this run"


def _reads_note(config: StackConfig) -> str:
    if config.viewer_tokens_given:
        return "need a viewer's or an approver's token (TICKETFLOW_VIEWER_TOKENS)"
    return "open to anyone on this host (set TICKETFLOW_VIEWER_TOKENS to require a token)"
