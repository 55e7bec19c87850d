"""setup_logging's one format (JSON lines or text, ticket and trace ids as fields), and the logging
and metrics settings every service reads."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from ticketflow.runtime import ServiceSettings, load_settings, setup_logging, ticket_fields
from ticketflow.runtime.logs import resolve_log_format


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("TICKETFLOW_"):
            monkeypatch.delenv(key)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_anywhere_else() -> None:
    assert resolve_log_format("auto", _Tty()) == "text"
    assert resolve_log_format("auto", io.StringIO()) == "json"
    assert resolve_log_format("json", _Tty()) == "json"
    assert resolve_log_format("text", io.StringIO()) == "text"


def test_json_lines_carry_ticket_workflow_and_trace_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("INFO", "json", service="probe")
    log = logging.getLogger("ticketflow.probe")
    log.info("decided %s", "t-1", extra=ticket_fields("t-1"))
    # What the Temporal SDK's activity logger adds to a record: the ids become fields.
    log.warning("refund paid", extra={"temporal_activity": {"workflow_id": "ticket-t-2"}})
    with TracerProvider().get_tracer("test").start_as_current_span("op") as span:
        log.info("inside a span")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [r["message"] for r in lines] == ["decided t-1", "refund paid", "inside a span"]
    first, second, third = lines
    assert list(first)[:4] == ["timestamp", "level", "logger", "message"]
    assert first["level"] == "INFO" and first["service"] == "probe"
    assert (first["ticket_id"], first["workflow_id"]) == ("t-1", "ticket-t-1")
    assert (second["ticket_id"], second["workflow_id"]) == ("t-2", "ticket-t-2")
    assert third["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert third["span_id"] == format(span.get_span_context().span_id, "016x")


def test_text_is_one_readable_line_without_colour_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("INFO", "text")
    logging.getLogger("ticketflow.probe").warning("slow", extra=ticket_fields("t-3"))
    err = capsys.readouterr().err
    assert "[WARNING] slow [ticketflow.probe] ticket_id=t-3 workflow_id=ticket-t-3" in err
    assert "\x1b[" not in err


def test_the_sdk_never_logs_below_info_because_its_debug_lines_quote_payloads() -> None:
    setup_logging("DEBUG", "json")
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("temporalio").getEffectiveLevel() == logging.INFO


def test_logging_and_metrics_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = load_settings(ServiceSettings, "probe")
    assert (s.log_format, s.metrics_port, s.metrics_address) == ("auto", None, None)
    monkeypatch.setenv("TICKETFLOW_LOG_FORMAT", " JSON ")
    monkeypatch.setenv("TICKETFLOW_METRICS_PORT", "9464")
    s = load_settings(ServiceSettings, "probe")
    assert (s.log_format, s.metrics_address) == ("json", "127.0.0.1:9464")
    monkeypatch.setenv("TICKETFLOW_METRICS_HOST", "::")
    assert load_settings(ServiceSettings, "probe").metrics_address == "[::]:9464"
    monkeypatch.setenv("TICKETFLOW_LOG_FORMAT", "xml")
    monkeypatch.setenv("TICKETFLOW_METRICS_PORT", "70000")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings, "probe")
    err = capsys.readouterr().err
    assert "TICKETFLOW_LOG_FORMAT: Input should be 'auto', 'json' or 'text'" in err
    assert "TICKETFLOW_METRICS_PORT" in err


def test_a_metrics_port_in_use_stops_the_service_with_what_to_change() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "TICKETFLOW_METRICS_PORT": str(port)}
        code = (
            "from ticketflow.runtime import ServiceSettings, load_settings, setup_service\n"
            "setup_service(load_settings(ServiceSettings, 'probe'), 'probe')\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
        )
    assert done.returncode == 1, done.stderr
    assert f"probe: cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "change TICKETFLOW_METRICS_PORT" in done.stderr
