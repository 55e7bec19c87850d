"""The process's Temporal SDK runtime: where the SDK core's log lines and metrics go.

One runtime per process (it owns the core's thread pool), set as the SDK's default so that every
client of the process uses it, also one made with ``Client.connect`` directly; ``connect`` passes
it explicitly. It is made by ``init_runtime`` (at start, with the metrics address from settings)
or, failing that, by the first ``temporal_runtime()`` without metrics.

- Logs: the core's lines are forwarded to Python logging (logger ``temporalio.core``, same levels
  as the SDK's default: core WARN, other crates ERROR), so they get the one format of
  ``setup_logging`` and no colour codes.
- Metrics: with an address, the SDK's Prometheus exporter serves ``/metrics`` there: the SDK's own
  metrics (workflow and activity task latencies, schedule-to-start, pollers, ...) under the prefix
  ``temporal_``, and ticketflow's (``ticketflow.runtime.metrics``) recorded through the same meter,
  so one port per process answers for both. Counters end in ``_total``, durations are seconds
  (``_seconds``), per Prometheus's naming conventions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from .logs import SDK_CORE_LOGGER

__all__ = ["init_runtime", "temporal_runtime"]

_runtime: Runtime | None = None
_metrics_address: str | None = None


def init_runtime(
    metrics_address: str | None = None,
    *,
    histogram_buckets: Mapping[str, Sequence[float]] | None = None,
) -> Runtime:
    """Make the process's runtime, serving Prometheus metrics at ``metrics_address`` (host:port)
    when given. Call once, before the first client; a second call with the same address returns
    the same runtime, with another raises (a runtime's metrics cannot move)."""
    global _runtime, _metrics_address
    if _runtime is not None:
        if metrics_address != _metrics_address:
            raise RuntimeError(
                "the Temporal SDK runtime was made already, with other metrics settings: "
                "init_runtime must run before any client connects"
            )
        return _runtime
    metrics = None
    if metrics_address is not None:
        metrics = PrometheusConfig(
            bind_address=metrics_address,
            counters_total_suffix=True,
            unit_suffix=True,
            durations_as_seconds=True,
            histogram_bucket_overrides=dict(histogram_buckets or {}) or None,
        )
    _runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(
                    logger=logging.getLogger(SDK_CORE_LOGGER),
                    # One logger name; the message starts with the core's target instead.
                    append_target_to_name=False,
                ),
            ),
            metrics=metrics,
            # service_name="temporal-core-sdk" on every series says nothing Prometheus's job
            # label does not.
            attach_service_name=False,
        )
    )
    _metrics_address = metrics_address
    Runtime.set_default(_runtime, error_if_already_set=False)
    return _runtime


def temporal_runtime() -> Runtime:
    """The process's runtime (made without metrics if ``init_runtime`` has not run)."""
    return _runtime if _runtime is not None else init_runtime()
