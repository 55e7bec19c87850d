"""Logging set up in one place for every service: one structured format, the level from settings.

Every logger of the process (ours, the Temporal SDK's and its core's, uvicorn's error and access
logs, grpc's) goes through the root logger to one stderr handler whose formatter is structlog's
``ProcessorFormatter``, so each line gets the same fields whoever wrote it:

- ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``service``;
- ``ticket_id`` and ``workflow_id`` on every line about a ticket: taken from a record's
  ``extra`` (``ticket_fields(ticket_id)``), or from the Temporal SDK's workflow and activity
  loggers (their ``temporal_workflow`` / ``temporal_activity`` extras name the workflow, and a
  ticket's workflow id is ``ticket-<ticket_id>``);
- ``trace_id`` and ``span_id`` of the OpenTelemetry span current when the line was written.

Format (``TICKETFLOW_LOG_FORMAT``): ``json`` (one JSON object a line, for a collector), ``text``
(``key=value`` after the message, for a person), or ``auto`` (default): ``text`` when stderr is a
terminal, ``json`` otherwise, i.e. in a container, under systemd, or with output sent to a file.
``ticketflow up`` resolves ``auto`` against its own terminal and passes the result to the
services it starts (their stderr is its pipe, not a terminal).

What never goes into a line: ticket bodies, customer data, decision reasons, tokens. The fields
above are ids only, and call sites log ids and outcomes, never payloads (tests/test_log_secrets.py
greps a whole run for marked secrets).

The Temporal SDK's core (Rust) log lines: by default the core writes them to stderr itself, with
terminal colour codes whether or not stderr is a terminal. ``ticketflow.runtime.telemetry``
forwards them to Python logging instead (logger ``temporalio.core``), where they get this format.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from functools import partial
from typing import Any, Literal, TextIO

import structlog
from opentelemetry import trace
from temporalio import activity, workflow
from ticketflow.contracts.names import ticket_id_from_workflow_id
from ticketflow.contracts.names import workflow_id as ticket_workflow_id

__all__ = [
    "SDK_CORE_LOGGER",
    "LogFormat",
    "bind_ticket",
    "resolve_log_format",
    "setup_logging",
    "ticket_fields",
]

SDK_CORE_LOGGER = "temporalio.core"

LogFormat = Literal["auto", "json", "text"]

EventDict = MutableMapping[str, Any]


def resolve_log_format(fmt: str = "auto", stream: TextIO | None = None) -> Literal["json", "text"]:
    """``json`` or ``text``: ``auto`` is ``text`` on a terminal, ``json`` anywhere else."""
    if fmt == "json":
        return "json"
    if fmt == "text":
        return "text"
    stream = stream if stream is not None else sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # a closed or unusual stream: a machine reads it
        return "json"


def ticket_fields(ticket_id: str) -> dict[str, str]:
    """``extra=`` for a log line about a ticket: its ticket id and workflow id."""
    return {"ticket_id": ticket_id, "workflow_id": ticket_workflow_id(ticket_id)}


def bind_ticket(ticket_id: str) -> None:
    """Every line the current task (a request) writes from here on is about ``ticket_id``,
    including the access log line of its answer."""
    structlog.contextvars.bind_contextvars(**ticket_fields(ticket_id))


def _record_fields(_: Any, __: str, event: EventDict) -> EventDict:
    """Ticket, workflow and activity ids from a stdlib record's extras (never the whole extras:
    a library may put anything there)."""
    record = event.get("_record")
    if record is None:
        return event
    for name in ("ticket_id", "workflow_id"):
        value = getattr(record, name, None)
        if isinstance(value, str):
            event.setdefault(name, value)
    for extra in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, extra, None)
        if not isinstance(details, dict):
            continue
        wf_id = details.get("workflow_id")
        if isinstance(wf_id, str):
            event.setdefault("workflow_id", wf_id)
            ticket = ticket_id_from_workflow_id(wf_id)
            if ticket is not None:
                event.setdefault("ticket_id", ticket)
        for key in ("workflow_type", "activity_type", "attempt", "update_name"):
            if key in details:
                event.setdefault(key, details[key])
    return event


def _trace_ids(_: Any, __: str, event: EventDict) -> EventDict:
    """The current OpenTelemetry span's ids, in the hex form trace back ends show."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def _service(name: str | None) -> structlog.types.Processor:
    def add(_: Any, __: str, event: EventDict) -> EventDict:
        if name:
            event.setdefault("service", name)
        return event

    return add


def _upper_level(_: Any, __: str, event: EventDict) -> EventDict:
    if isinstance(event.get("level"), str):
        event["level"] = event["level"].upper()
    return event


_FIRST = ("timestamp", "level", "logger", "message")


def _first_keys(_: Any, __: str, event: EventDict) -> EventDict:
    """timestamp, level, logger, message first: a person reading JSON lines reads those."""
    ordered = {key: event.pop(key) for key in _FIRST if key in event}
    ordered.update(event)
    return ordered


def _formatter(fmt: Literal["json", "text"], service: str | None) -> logging.Formatter:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        _upper_level,
        _record_fields,
        _trace_ids,
        _service(service),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    final: list[structlog.types.Processor]
    if fmt == "json":
        final = [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            _first_keys,
            structlog.processors.JSONRenderer(
                serializer=partial(json.dumps, ensure_ascii=False, default=str)
            ),
        ]
    else:
        # No colour codes: a terminal today is a log file tomorrow (`./dev up 2>&1 | tee`).
        final = [structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0, pad_level=False)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )


def setup_logging(level: str = "INFO", fmt: str = "auto", *, service: str | None = None) -> None:
    """Route every logger to stderr in the one format (see the module's docstring) at ``level``.

    A second call (a test, a library that configured logging first) replaces the handler instead
    of adding another copy of every line.
    """
    resolved = resolve_log_format(fmt)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(resolved, service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The Temporal SDK's DEBUG lines quote whole payloads ("Completing activity with completion:
    # ... data: ..." holds the ticket, the draft, the decision): never below INFO, whatever the
    # level, so that no level writes a ticket body or a decision reason.
    logging.getLogger("temporalio").setLevel(max(logging.INFO, root.level))
    # uvicorn and others may have set their own handlers or levels before us: one path for all.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    # The SDK's loggers append their details to the message ("... ({'workflow_id': ...})");
    # the same details are fields of the line here.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
