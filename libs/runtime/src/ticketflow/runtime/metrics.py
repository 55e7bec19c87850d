"""ticketflow's own metrics: names, labels, units, in one place (the dashboard and the alert rules
in deploy/ use these names).

Every metric is recorded through a Temporal SDK ``MetricMeter`` and served by the process's
Prometheus exporter next to the SDK's own metrics (``ticketflow.runtime.telemetry``):
- in a workflow, ``workflow.metric_meter()``: it records nothing while the workflow replays, so a
  worker restart, a cache eviction or a query does not count a ticket twice;
- in an activity, ``activity.metric_meter()`` (activities are not replayed);
- elsewhere (the api), ``temporal_runtime().metric_meter``.

Names follow Prometheus conventions: ``ticketflow_`` prefix, base units, counters served with a
``_total`` suffix and durations (timedelta histograms) in seconds with ``_seconds``. Labels take a
few fixed values each (never an id: one series per ticket would swamp Prometheus).

The helpers below are small on purpose and importable from workflow code (no I/O).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from temporalio.common import MetricMeter

__all__ = [
    "AGENT_CALLS",
    "APPROVALS_WAITING",
    "APPROVAL_OLDEST_WAIT",
    "APPROVAL_WAIT",
    "DECISIONS",
    "FALLBACK_ROUTINGS",
    "GRPC_REQUEST_DURATION",
    "HISTOGRAM_BUCKETS",
    "HTTP_REQUEST_DURATION",
    "REFUNDS_PAID",
    "REFUNDS_PAID_CENTS",
    "REPLIES_SENT",
    "TICKETS_FINISHED",
    "TICKETS_IN_PROGRESS_STUCK",
    "TICKETS_SUBMITTED",
    "TICKET_DURATION",
    "TICKET_READS",
    "count",
    "observe_duration",
    "set_gauge",
]

# Counters (served as <name>_total).
TICKETS_SUBMITTED: Final = "ticketflow_tickets_submitted"  # api; outcome, protocol
TICKETS_FINISHED: Final = "ticketflow_tickets_finished"  # workflow; status, path, tier
AGENT_CALLS: Final = "ticketflow_agent_calls"  # agent worker; activity, tier, result
FALLBACK_ROUTINGS: Final = "ticketflow_fallback_routings"  # workflow; activity, reason
DECISIONS: Final = "ticketflow_decisions"  # api; result, protocol
REFUNDS_PAID: Final = "ticketflow_refunds_paid"  # core worker; newly paid only
REFUNDS_PAID_CENTS: Final = "ticketflow_refunds_paid_cents"  # core worker; the money
REPLIES_SENT: Final = "ticketflow_replies_sent"  # core worker; kind
TICKET_READS: Final = "ticketflow_ticket_reads"  # api; source (live, read_model, unavailable)

# Duration histograms (timedelta; served as <name>_seconds).
APPROVAL_WAIT: Final = "ticketflow_approval_wait"  # workflow; result (decided, timed_out)
TICKET_DURATION: Final = "ticketflow_ticket_duration"  # workflow; start to finish; status, path
HTTP_REQUEST_DURATION: Final = "ticketflow_http_request_duration"  # api; method, route, code
GRPC_REQUEST_DURATION: Final = "ticketflow_grpc_request_duration"  # api, projection; method, code

# Gauges (api, from Temporal visibility every few seconds).
APPROVALS_WAITING: Final = "ticketflow_approvals_waiting"
APPROVAL_OLDEST_WAIT: Final = "ticketflow_approval_oldest_wait_seconds"
TICKETS_IN_PROGRESS_STUCK: Final = "ticketflow_tickets_stuck"

_DESCRIPTIONS: Final = {
    TICKETS_SUBMITTED: "Ticket submissions by the outcome of the call",
    TICKETS_FINISHED: "Tickets that reached their end, by status, decision path and model tier",
    AGENT_CALLS: "Model calls by activity, tier and result (one per attempt)",
    FALLBACK_ROUTINGS: "Agent calls the workflow routed to the fallback model, by reason",
    DECISIONS: "Approval decisions by result",
    REFUNDS_PAID: "Refunds paid (a retry that found the refund paid is not counted)",
    REFUNDS_PAID_CENTS: "Money refunded, in cents",
    REPLIES_SENT: "Replies sent to customers, by kind",
    TICKET_READS: "Ticket reads by who answered: the live workflow or the read model",
    APPROVAL_WAIT: "Time a ticket waited for a human decision",
    TICKET_DURATION: "Time from a ticket's start to its end",
    HTTP_REQUEST_DURATION: "HTTP request duration by method, route template and status code",
    GRPC_REQUEST_DURATION: "gRPC request duration by method and status code",
    APPROVALS_WAITING: "Tickets waiting for a human decision",
    APPROVAL_OLDEST_WAIT: "How long the oldest ticket waiting for a decision has waited",
    TICKETS_IN_PROGRESS_STUCK: "Tickets not waiting for a human and not finished after 15 min",
}

_SECONDS_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Bucket bounds in seconds (the exporter reports durations in seconds), by metric name.
HISTOGRAM_BUCKETS: Final = {
    HTTP_REQUEST_DURATION: _SECONDS_BUCKETS,
    GRPC_REQUEST_DURATION: _SECONDS_BUCKETS,
    TICKET_DURATION: (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 900, 3600, 14400, 86400),
    APPROVAL_WAIT: (1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200),
}


def count(meter: MetricMeter, name: str, value: int = 1, **labels: str) -> None:
    """Add ``value`` to the counter ``name`` with ``labels``."""
    meter.create_counter(name, _DESCRIPTIONS[name]).add(value, labels)


def observe_duration(meter: MetricMeter, name: str, duration: timedelta, **labels: str) -> None:
    """Record ``duration`` in the histogram ``name`` (served in seconds)."""
    meter.create_histogram_timedelta(name, _DESCRIPTIONS[name]).record(
        max(duration, timedelta(0)), labels
    )


def set_gauge(meter: MetricMeter, name: str, value: float, **labels: str) -> None:
    meter.create_gauge_float(name, _DESCRIPTIONS[name]).set(value, labels)
