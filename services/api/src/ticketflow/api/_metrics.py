"""The api's metrics (names in ``ticketflow.runtime.metrics``), recorded through the process's
Temporal SDK runtime meter and served by its Prometheus exporter (``TICKETFLOW_METRICS_PORT``).

- ``ticketflow_tickets_submitted_total{outcome}``: accepted (started), existing (the same ticket
  again: 200), conflict (409), unavailable (503), error;
- ``ticketflow_decisions_total{result}``: accepted, conflict (already decided), late (not or no
  longer waiting, window closed, ticket finished), unauthorised (no or a bad token, or a decision
  the core worker could not verify), not_found, invalid, unavailable (incl. outcome unknown);
- ``ticketflow_ticket_reads_total{source}``: live, read_model, or the error code;
- ``ticketflow_http_request_duration_seconds{method,route,code}``: route is the route template
  (``/tickets/{ticket_id}``), never the path: ids must not become label values.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.common import MetricMeter
from ticketflow.contracts.models import TICKET_ID_PATTERN
from ticketflow.runtime import metrics
from ticketflow.runtime.logs import bind_ticket
from ticketflow.runtime.telemetry import temporal_runtime

from .errors import (
    ApiError,
    Conflict,
    DecisionRejected,
    InvalidRequest,
    NotFound,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "HttpMetricsMiddleware",
    "decided",
    "decision_error_result",
    "read_answered",
    "submit_error_outcome",
    "submitted",
]


_TICKET_ID = re.compile(TICKET_ID_PATTERN)


def _meter() -> MetricMeter:
    return temporal_runtime().metric_meter


def submitted(outcome: str) -> None:
    metrics.count(_meter(), metrics.TICKETS_SUBMITTED, outcome=outcome)


def submit_error_outcome(err: ApiError) -> str:
    if isinstance(err, Conflict):
        return "conflict"
    if isinstance(err, Unavailable):
        return "unavailable"
    if isinstance(err, InvalidRequest):
        return "invalid"
    return "error"


def decided(result: str) -> None:
    metrics.count(_meter(), metrics.DECISIONS, result=result)


def decision_error_result(err: ApiError) -> str:
    if isinstance(err, DecisionRejected):
        return err.result
    if isinstance(err, Unauthorized):
        return "unauthorised"
    if isinstance(err, NotFound):
        return "not_found"
    if isinstance(err, InvalidRequest):
        return "invalid"
    if isinstance(err, Unavailable):
        return "unavailable"
    return "error"


def read_answered(source: str) -> None:
    metrics.count(_meter(), metrics.TICKET_READS, source=source)


class HttpMetricsMiddleware:
    """Request duration by method, route template and status code (pure ASGI: the body streams
    through untouched); and the ticket of a ``/tickets/{ticket_id}...`` request bound to the
    request's log lines, its access log line included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500  # an exception that escapes everything is answered 500 by the server

        async def send_status(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
                # The access log line is written as this goes out: it names the ticket too, also
                # for an answer (401, 422) given before the service layer saw the request.
                ticket_id = scope.get("path_params", {}).get("ticket_id")
                if isinstance(ticket_id, str) and _TICKET_ID.fullmatch(ticket_id):
                    bind_ticket(ticket_id)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.observe_duration(
                _meter(),
                metrics.HTTP_REQUEST_DURATION,
                timedelta(seconds=time.perf_counter() - started),
                method=str(scope.get("method", "")),
                route=template,
                code=str(code),
            )
