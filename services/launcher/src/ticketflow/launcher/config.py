"""What `ticketflow up` is told, and the stack that describes.

- ``LauncherSettings``: the ``TICKETFLOW_*`` variables it reads, loaded once by
  ``ticketflow.runtime.load_settings`` (a bad value: exit code 2, the variable named, its value
  never echoed). Every variable also passes through to the services unchanged.
- ``UpOptions``: the command-line options of ``ticketflow up``.
- ``StackConfig``: both combined into the ports, addresses and data dir of one stack, with the
  checks that need both (``stack_config``), and ``check_ports``: every port free before anything
  starts. Both raise ``UsageError`` with a message that says what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from ticketflow.runtime import ServiceSettings
from ticketflow.runtime.devserver import UI_PORT_OFFSET
from ticketflow.runtime.net import parse_address, port_is_free
from ticketflow.runtime.settings import HostPort

__all__ = [
    "DEFAULT_METRICS_PORT",
    "LOOPBACK",
    "METRICS_ORDER",
    "LauncherSettings",
    "StackConfig",
    "UpOptions",
    "UsageError",
    "check_ports",
    "stack_config",
]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

Port = Annotated[int, Field(gt=0, lt=65536)]


DEFAULT_METRICS_PORT = 9000
DEFAULT_WORKER_NICE = 10
# Which metrics port is whose: TICKETFLOW_METRICS_PORT + index.
METRICS_ORDER = ("temporal", "api", "core-worker", "agent-worker", "projection")


class UsageError(Exception):
    """A setting is wrong or a port is taken: the message says what to change."""


class LauncherSettings(ServiceSettings):
    """``TICKETFLOW_TEMPORAL_ADDRESS``, ``_NAMESPACE``, ``_LOG_LEVEL`` (from ``ServiceSettings``)
    and the variables below; an empty variable counts as unset."""

    model_config = SettingsConfigDict(env_ignore_empty=True, str_strip_whitespace=True)

    data_dir: Path = Path("var")
    http_port: Port = 8000
    grpc_port: Port = 50051
    projection_address: HostPort = "127.0.0.1:50052"
    approver_tokens: SecretStr | None = None  # only whether it is set matters here
    # Only whether either is set matters here (the services read them): unset, a dev key is made.
    decision_keys: SecretStr | None = None
    decision_keys_file: Path | None = None
    # Only whether they are set matters here (the api and the projection read them): without
    # TICKETFLOW_VIEWER_TOKENS reads stay open; without TICKETFLOW_READMODEL_TOKEN a token is made
    # for each run and given to the api and the projection only.
    viewer_tokens: SecretStr | None = None
    readmodel_token: SecretStr | None = None
    # The first of five consecutive metrics ports (Temporal's dev server, api, core-worker,
    # agent-worker, projection), on 127.0.0.1.
    metrics_port: int | None = Field(DEFAULT_METRICS_PORT, gt=0, lt=65536 - len(METRICS_ORDER))
    # The CPU niceness of the core worker and the agent worker (0-19; 0 keeps the launcher's):
    # on one host the requests that wait for an answer (the api, Temporal's frontend, the
    # projection's read API) go first, and the workers' work, queued durably in Temporal,
    # takes what is left.
    worker_nice: int = Field(DEFAULT_WORKER_NICE, ge=0, le=19)


@dataclass(frozen=True)
class UpOptions:
    """The options of ``ticketflow up`` besides ``--data-dir`` (which overrides a setting)."""

    external_temporal: bool = False
    headless: bool = False
    temporal_ui_port: int | None = None
    ready_timeout: float = 60.0
    grace_period: float = 10.0
    bin_dir: Path | None = None  # the services' console scripts; None: next to this Python


@dataclass(frozen=True)
class StackConfig:
    """Where one stack lives and listens."""

    data_dir: Path  # absolute
    temporal_port: int
    namespace: str
    ui_port: int | None  # None: no Temporal web UI
    http_port: int
    grpc_port: int
    projection_host: str
    projection_port: int
    external_temporal: str | None  # an address when not starting the dev server
    approver_tokens_given: bool  # False: `ticketflow up` makes a dev token
    decision_keys_given: bool = False  # False: `ticketflow up` makes a dev decision key
    viewer_tokens_given: bool = False  # False: reads are open (the dev default)
    readmodel_token_given: bool = False  # False: `ticketflow up` makes one for this run
    metrics_base_port: int = DEFAULT_METRICS_PORT
    worker_nice: int = DEFAULT_WORKER_NICE

    @property
    def metrics_ports(self) -> dict[str, int]:
        """Each process's Prometheus port on 127.0.0.1 (the dev server's only when we run it)."""
        ports = {name: self.metrics_base_port + i for i, name in enumerate(METRICS_ORDER)}
        if self.external_temporal:
            del ports["temporal"]
        return ports

    @property
    def temporal_address(self) -> str:
        return self.external_temporal or f"127.0.0.1:{self.temporal_port}"

    @property
    def projection_address(self) -> str:
        return f"{self.projection_host}:{self.projection_port}"


def stack_config(settings: LauncherSettings, options: UpOptions) -> StackConfig:
    """Combine settings and options; raise ``UsageError`` for what cannot run on this machine."""
    t_host, t_port = parse_address(settings.temporal_address)
    external = None
    if options.external_temporal:
        external = f"{t_host}:{t_port}"
    elif t_host not in LOOPBACK:
        raise UsageError(
            f"TICKETFLOW_TEMPORAL_ADDRESS={t_host}:{t_port} is not on this machine, and "
            "`ticketflow up` runs its own dev server on 127.0.0.1: set it to 127.0.0.1:<port>, "
            "or add --external-temporal to use that Temporal server instead"
        )
    p_host, p_port = parse_address(settings.projection_address)
    if p_host not in LOOPBACK:
        raise UsageError(
            f"TICKETFLOW_PROJECTION_ADDRESS={p_host}:{p_port}: `ticketflow up` runs the projection "
            "on this machine; set it to 127.0.0.1:<port>"
        )
    ui_port = None
    if not options.headless and not external:
        ui_port = options.temporal_ui_port or t_port + UI_PORT_OFFSET
        if ui_port > 65535:
            raise UsageError(
                f"the Temporal UI port would be {ui_port} (TICKETFLOW_TEMPORAL_ADDRESS port + "
                f"{UI_PORT_OFFSET}): pass --temporal-ui-port or --headless"
            )
    tokens = settings.approver_tokens
    return StackConfig(
        data_dir=settings.data_dir.expanduser().resolve(),
        temporal_port=t_port,
        namespace=settings.namespace,
        ui_port=ui_port,
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        projection_host="127.0.0.1" if p_host == "localhost" else p_host,
        projection_port=p_port,
        external_temporal=external,
        approver_tokens_given=tokens is not None and bool(tokens.get_secret_value().strip()),
        decision_keys_given=settings.decision_keys_file is not None
        or (settings.decision_keys is not None and bool(settings.decision_keys.get_secret_value())),
        viewer_tokens_given=_given(settings.viewer_tokens),
        readmodel_token_given=_given(settings.readmodel_token),
        metrics_base_port=settings.metrics_port or DEFAULT_METRICS_PORT,
        worker_nice=settings.worker_nice,
    )


def _given(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())


def check_ports(config: StackConfig) -> None:
    """Fail before starting anything when a port is taken, naming the setting to change."""
    wanted: list[tuple[str, str, int]] = [
        ("127.0.0.1", "TICKETFLOW_HTTP_PORT", config.http_port),
        ("127.0.0.1", "TICKETFLOW_GRPC_PORT", config.grpc_port),
        (config.projection_host, "TICKETFLOW_PROJECTION_ADDRESS", config.projection_port),
    ]
    for name, port in config.metrics_ports.items():
        what = f"TICKETFLOW_METRICS_PORT (+{METRICS_ORDER.index(name)}: {name} metrics)"
        wanted.append(("127.0.0.1", what, port))
    if not config.external_temporal:
        wanted.insert(0, ("127.0.0.1", "TICKETFLOW_TEMPORAL_ADDRESS", config.temporal_port))
        if config.ui_port is not None:
            ui_setting = "--temporal-ui-port (default: the TICKETFLOW_TEMPORAL_ADDRESS port + 1000)"
            wanted.insert(1, ("127.0.0.1", ui_setting, config.ui_port))
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
