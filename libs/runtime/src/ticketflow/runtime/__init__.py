"""Process plumbing shared by ticketflow's long-running services (contracts stays free of I/O).

- ``settings``: ``ServiceSettings`` (Temporal address, namespace, log level) and ``load_settings``,
  one exit code and one message format for a bad environment;
- ``logs``: ``setup_logging``, one format, ``TICKETFLOW_LOG_LEVEL``;
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
from .logs import setup_logging
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
]


def package_version(dist: str) -> str:
    """The installed version of a ticketflow distribution (for --version, logs, worker identity)."""
    return version(dist)
