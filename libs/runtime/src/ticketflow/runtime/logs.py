"""Logging set up in one place for every service: one format, the level from settings.

That includes the Temporal SDK's core (Rust) log lines. By default the SDK core writes them to
stderr itself, with terminal colour codes (ANSI escapes) whether or not stderr is a terminal, so a
service's log file filled with ``ESC[2m...ESC[0m``. `temporal_runtime` forwards them to Python
logging instead (logger ``temporalio.core``, same levels as the SDK's default: core WARN, other
crates ERROR), where they get the one format and no colour codes.
"""

from __future__ import annotations

import logging

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

__all__ = ["LOG_FORMAT", "SDK_CORE_LOGGER", "setup_logging", "temporal_runtime"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SDK_CORE_LOGGER = "temporalio.core"

_runtime: Runtime | None = None


def temporal_runtime() -> Runtime:
    """The process's Temporal SDK runtime, with the core's log lines forwarded to Python logging.

    Made once per process (a runtime owns a thread pool) and set as the SDK's default, so every
    client of the process uses it, also one made with ``Client.connect`` directly; ``connect``
    passes it explicitly.
    """
    global _runtime
    if _runtime is None:
        _runtime = Runtime(
            telemetry=TelemetryConfig(
                logging=LoggingConfig(
                    filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                    forwarding=LogForwardingConfig(
                        logger=logging.getLogger(SDK_CORE_LOGGER),
                        # One logger name; the message starts with the core's target instead.
                        append_target_to_name=False,
                    ),
                )
            )
        )
        Runtime.set_default(_runtime, error_if_already_set=False)
    return _runtime


def setup_logging(level: str = "INFO") -> None:
    """Route every logger (the SDK's and its core's, uvicorn's, ours) to stderr in one format at
    ``level``, without terminal colour codes.

    ``force``: a second call (a test, a library that configured logging first) replaces the
    handlers instead of adding another copy of every line.
    """
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, force=True)
    temporal_runtime()
