"""Process plumbing shared by ticketflow's long-running services (contracts stays free of I/O).

- ``settings``: ``ServiceSettings`` (Temporal address, namespace, log level) and ``load_settings``,
  one exit code and one message format for a bad environment;
- ``observe``: ``setup_service``, a service's logs, metrics and traces set up in one call;
- ``logs``: ``setup_logging``, one structured format (JSON lines or text), ``TICKETFLOW_LOG_LEVEL``
  and ``TICKETFLOW_LOG_FORMAT``, ticket and trace ids on every line;
- ``telemetry``: the Temporal SDK runtime (core log forwarding, the Prometheus exporter);
- ``metrics``: ticketflow's metric names and how to record them (replay-safe in workflows);
- ``tracing``: OpenTelemetry set-up and the Temporal tracing interceptor;
- ``lifecycle``: ``run_service``, graceful stop on SIGTERM/SIGINT, one set of exit codes;
- ``temporal``: ``connect``, backoff that a stop interrupts and that prints progress;
- ``pollers``: whether Temporal sees a worker polling (the only honest readiness of a worker);
- ``net``: ``host:port`` parsing and port probes;
- ``decision_keys``: ``DecisionKeySettings``, the decision signing keys of the api and the core
  worker (``TICKETFLOW_DECISION_KEYS`` / ``_FILE``);
- ``devserver`` and ``search_attributes``: the embedded Temporal server's command line, and the
  search attributes a namespace needs.
"""

from importlib.metadata import version

from .lifecycle import EXIT_FAILED, EXIT_INTERRUPTED, ServiceError, run_service
from .logs import setup_logging, ticket_fields
from .observe import setup_service
from .settings import EXIT_BAD_SETTINGS, ServiceSettings, env_var, load_settings
from .temporal import TemporalUnreachable, connect

__all__ = [
    "EXIT_BAD_SETTINGS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "ServiceError",
    "ServiceSettings",
    "TemporalUnreachable",
    "connect",
    "env_var",
    "load_settings",
    "package_version",
    "run_service",
    "setup_logging",
    "setup_service",
    "ticket_fields",
]


def package_version(dist: str) -> str:
    """The installed version of a ticketflow distribution (for --version, logs, worker identity)."""
    return version(dist)
