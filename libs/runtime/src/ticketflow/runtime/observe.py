"""One call at a service's start for everything an operator watches: logs, metrics, traces.

``setup_service(settings, "core-worker")`` (after ``load_settings``, before the first client):
- logging in the one format (``ticketflow.runtime.logs``) at ``TICKETFLOW_LOG_LEVEL``, in
  ``TICKETFLOW_LOG_FORMAT``;
- the Temporal SDK runtime with its Prometheus exporter at ``TICKETFLOW_METRICS_HOST``:
  ``TICKETFLOW_METRICS_PORT`` when the port is set (``ticketflow.runtime.telemetry``), serving the
  SDK's metrics and ticketflow's (``ticketflow.runtime.metrics``);
- OpenTelemetry tracing (``ticketflow.runtime.tracing``).
"""

from __future__ import annotations

import logging
import sys

from .lifecycle import EXIT_FAILED, exit_process
from .logs import setup_logging
from .metrics import HISTOGRAM_BUCKETS
from .settings import ServiceSettings
from .telemetry import init_runtime
from .tracing import setup_tracing

__all__ = ["setup_service"]

log = logging.getLogger("ticketflow.runtime")


def setup_service(settings: ServiceSettings, service: str, *, serve_metrics: bool = True) -> None:
    """Logs, metrics and traces of ``service`` as its settings say; a metrics port that cannot be
    bound ends the process (exit 1) with a line that names the variable."""
    setup_logging(settings.log_level, settings.log_format, service=service)
    address = settings.metrics_address if serve_metrics else None
    try:
        init_runtime(address, histogram_buckets=HISTOGRAM_BUCKETS)
    except Exception as err:  # the core says why in its own words (address in use, ...)
        print(
            f"{service}: cannot serve metrics on {address} ({err}): free the port or change "
            "TICKETFLOW_METRICS_PORT / TICKETFLOW_METRICS_HOST",
            file=sys.stderr,
            flush=True,
        )
        exit_process(EXIT_FAILED)
    if address is None and serve_metrics:
        log.info("metrics off (set TICKETFLOW_METRICS_PORT to serve them)")
    elif address is not None:
        log.info("metrics on http://%s/metrics", address)
    setup_tracing(service)
