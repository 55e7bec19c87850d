"""`ticketflow tickets ...` against a stand-in api: a scripted HTTP server on 127.0.0.1.

The CLI runs as a real process (`python -m ticketflow.launcher`); the stand-in answers each route
from a script (status, JSON, headers; or "drop": close the connection without an answer) and
records every request it got, byte for byte. tests/test_e2e_cli.py runs it against the real stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ticketflow.launcher.data_dir import dev_approver_token
from ticketflow.testkit import free_port

TOKEN = "tok-alice-0123456789"
DECIDED = {
    "ticket_id": "order-42",
    "status": "EXECUTING",
    "decision": {
        "approved": True,
        "approver": "alice",
        "reason": "loyal customer",
        "auto": False,
        "decided_at": "2026-01-01T12:05:00Z",
    },
}
OUTCOME_UNKNOWN = (
    503,
    {
        "error": {
            "code": "decision_outcome_unknown",
            "message": "the decision may have been applied; retry the same request",
            "details": [],
        }
    },
    {"Retry-After": "1"},
)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StubApi:
    """Answers from ``script[(method, path)]``, one entry per request, the last one repeated."""

    url: str
    script: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def answer(self, method: str, path: str, *answers: Any) -> None:
        self.script[(method, path)] = list(answers)


@pytest.fixture
def stub_api() -> Iterator[StubApi]:
    stub = StubApi(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            stub.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            answers = stub.script.get((self.command, self.path.partition("?")[0]))
            if not answers:
                answers = [(404, {"error": {"code": "not_found", "message": "no route"}}, {})]
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
            if answer == "drop":  # the request arrived; no answer comes back
                self.close_connection = True
                return
            status, payload, headers = answer
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def tickets(
    *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "ticketflow.launcher", "tickets", *argv],
        env={**clean, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def test_a_decision_whose_outcome_is_unknown_is_sent_again_the_same_until_answered(
    stub_api: StubApi, tmp_path: Path
) -> None:
    stub_api.answer(
        "POST", "/tickets/order-42/decision", OUTCOME_UNKNOWN, OUTCOME_UNKNOWN, (200, DECIDED, {})
    )
    env = {"TICKETFLOW_API_URL": stub_api.url, "TICKETFLOW_TOKEN": TOKEN}
    result = tickets("approve", "order-42", "--reason", "loyal customer", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    assert "approved by alice" in result.stdout and "loyal customer" in result.stdout
    assert "EXECUTING" in result.stdout
    assert "the decision may have been applied; asking again (2/5)" in result.stderr
    assert "the decision may have been applied; asking again (3/5)" in result.stderr
    sent = [(s.method, s.path, s.headers.get("Authorization"), s.body) for s in stub_api.seen]
    assert len(sent) == 3 and len(set(sent)) == 1  # the identical request, three times
    assert sent[0][2] == f"Bearer {TOKEN}"
    assert json.loads(sent[0][3]) == {"approved": True, "reason": "loyal customer"}
    assert TOKEN not in result.stdout + result.stderr


def test_a_decision_whose_connection_dropped_is_sent_again(
    stub_api: StubApi, tmp_path: Path
) -> None:
    stub_api.answer("POST", "/tickets/order-42/decision", "drop", (200, DECIDED, {}))
    env = {"TICKETFLOW_API_URL": stub_api.url, "TICKETFLOW_TOKEN": TOKEN}
    result = tickets("reject", "order-42", "--reason", "no", "--json", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == DECIDED  # --json: the api's answer as it is
    assert "the decision may have been applied; asking again (2/5)" in result.stderr
    assert [json.loads(s.body) for s in stub_api.seen] == [{"approved": False, "reason": "no"}] * 2


def test_a_decision_still_unknown_after_the_tries_is_exit_5_and_says_run_it_again(
    stub_api: StubApi, tmp_path: Path
) -> None:
    stub_api.answer("POST", "/tickets/order-42/decision", OUTCOME_UNKNOWN)
    env = {"TICKETFLOW_API_URL": stub_api.url, "TICKETFLOW_TOKEN": TOKEN}
    result = tickets("approve", "order-42", "--reason", "r", "--tries", "2", cwd=tmp_path, env=env)

    assert result.returncode == 5
    assert len(stub_api.seen) == 2
    assert (
        "may have been applied" in result.stderr and "Run the same command again" in result.stderr
    )


def test_a_conflict_is_exit_4_with_the_apis_message(stub_api: StubApi, tmp_path: Path) -> None:
    message = "decision refused: ticket already decided by bob"
    stub_api.answer(
        "POST",
        "/tickets/order-42/decision",
        (409, {"error": {"code": "decision_rejected", "message": message}}, {}),
    )
    env = {"TICKETFLOW_API_URL": stub_api.url, "TICKETFLOW_TOKEN": TOKEN}
    result = tickets("approve", "order-42", "--reason", "r", cwd=tmp_path, env=env)

    assert result.returncode == 4
    assert message in result.stderr and len(stub_api.seen) == 1


def test_a_refused_token_is_exit_1_and_names_the_variable(
    stub_api: StubApi, tmp_path: Path
) -> None:
    stub_api.answer(
        "POST",
        "/tickets/order-42/decision",
        (401, {"error": {"code": "unauthorized", "message": "missing bearer token"}}, {}),
    )
    result = tickets(
        "approve",
        "order-42",
        "--reason",
        "r",
        cwd=tmp_path,
        env={"TICKETFLOW_API_URL": stub_api.url},
    )

    assert result.returncode == 1
    assert "missing bearer token" in result.stderr and "TICKETFLOW_TOKEN" in result.stderr
    assert "Authorization" not in stub_api.seen[0].headers  # no token anywhere: none sent


def test_an_unreachable_api_is_exit_5_after_bounded_tries(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = tickets("show", "order-42", "--api", url, "--tries", "3", cwd=tmp_path)

    assert result.returncode == 5
    assert result.stderr.count("trying again") == 2
    assert "after 3 tries" in result.stderr
    assert (
        url in result.stderr
        and "ticketflow up" in result.stderr
        and "TICKETFLOW_API_URL" in (result.stderr)
    )


def test_a_503_on_a_read_is_retried_and_a_misconfigured_api_is_not(
    stub_api: StubApi, tmp_path: Path
) -> None:
    down = {"error": {"code": "temporal_unavailable", "message": "Temporal is unreachable"}}
    view = {"ticket_id": "t-1", "status": "RECEIVED", "source": "live", "ticket": {}}
    stub_api.answer("GET", "/tickets/t-1", (503, down, {"Retry-After": "1"}), (200, view, {}))
    unconfigured = {"error": {"code": "decisions_not_configured", "message": "no decision key"}}
    stub_api.answer("POST", "/tickets/t-1/decision", (503, unconfigured, {}))
    env = {"TICKETFLOW_API_URL": stub_api.url}

    shown = tickets("show", "t-1", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "Temporal is unreachable; trying again (2/5)" in shown.stderr

    decided = tickets("approve", "t-1", "--reason", "r", cwd=tmp_path, env=env)
    assert decided.returncode == 5 and "no decision key" in decided.stderr
    assert [s.method for s in stub_api.seen] == ["GET", "GET", "POST"]  # no retry of that one


def test_list_is_a_table_or_the_apis_json(stub_api: StubApi, tmp_path: Path) -> None:
    row = {
        "ticket_id": "order-42",
        "workflow_id": "ticket-order-42",
        "status": "WAITING_APPROVAL",
        "workflow_status": "RUNNING",
        "started_at": "2026-01-01T12:00:00.123456Z",
        "closed_at": None,
    }
    first = {"tickets": [row], "next_page_token": "p2", "total": 2}
    second = {"tickets": [{**row, "ticket_id": "order-43"}], "next_page_token": None, "total": 2}
    stub_api.answer("GET", "/tickets", (200, first, {}), (200, second, {}))
    env = {"TICKETFLOW_API_URL": stub_api.url}

    table = tickets("list", "--status", "WAITING_APPROVAL", "--limit", "1", cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["TICKET", "STATUS", "WORKFLOW", "STARTED", "CLOSED"]
    assert lines[1].split()[:3] == ["order-42", "WAITING_APPROVAL", "RUNNING"]
    assert "1 of 2; next page: --page-token p2" in table.stdout
    assert stub_api.seen[0].path == "/tickets?status=WAITING_APPROVAL&limit=1"

    stub_api.answer("GET", "/tickets", (200, first, {}), (200, second, {}))
    every = tickets("list", "--all", "--json", cwd=tmp_path, env=env)
    assert every.returncode == 0, every.stderr
    # Every page's tickets in one answer of the api's shape.
    assert json.loads(every.stdout) == {**second, "tickets": [row, *second["tickets"]]}
    assert stub_api.seen[-1].path == "/tickets?page_token=p2"


def test_show_is_readable_or_the_apis_json_and_404_is_exit_3(
    stub_api: StubApi, tmp_path: Path
) -> None:
    view = {
        "ticket_id": "order-42",
        "status": "RESOLVED",
        "source": "live",
        "ticket": {"customer_id": "c-2", "subject": "Refund", "body": "please refund my order"},
        "decision": DECIDED["decision"],
        "refund": {"refund_id": "rf-1", "amount_cents": 25000, "already_applied": False},
        "accepting_decisions": False,
    }
    stub_api.answer("GET", "/tickets/order-42", (200, view, {}))
    env = {"TICKETFLOW_API_URL": stub_api.url}

    shown = tickets("show", "order-42", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "RESOLVED" in shown.stdout and "250.00 as rf-1" in shown.stdout
    assert "approved by alice" in shown.stdout
    assert json.loads(tickets("show", "order-42", "--json", cwd=tmp_path, env=env).stdout) == view

    missing = tickets("show", "nope", cwd=tmp_path, env=env)
    assert missing.returncode == 3 and "no route" in missing.stderr


def test_the_token_file_ticketflow_up_writes_is_read_and_never_printed(
    stub_api: StubApi, tmp_path: Path
) -> None:
    token, _ = dev_approver_token(tmp_path)  # the file exactly as `ticketflow up` writes it
    stub_api.answer("POST", "/tickets/order-42/decision", (200, DECIDED, {}))
    by_data_dir = {"TICKETFLOW_API_URL": stub_api.url, "TICKETFLOW_DATA_DIR": str(tmp_path)}
    by_option = ["--token-file", str(tmp_path / "approver-token"), "--api", stub_api.url]

    for extra, env in (([], by_data_dir), (by_option, {})):
        result = tickets("approve", "order-42", "--reason", "r", *extra, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert stub_api.seen[-1].headers["Authorization"] == f"Bearer {token}"
        assert token not in result.stdout + result.stderr


def test_bad_settings_are_exit_2_and_say_what_to_fix(tmp_path: Path) -> None:
    bad_url = tickets("show", "x", cwd=tmp_path, env={"TICKETFLOW_API_URL": "ftp://nowhere"})
    assert bad_url.returncode == 2 and "TICKETFLOW_API_URL" in bad_url.stderr

    missing = tmp_path / "no-such-token"
    no_file = tickets("show", "x", "--token-file", str(missing), cwd=tmp_path)
    assert no_file.returncode == 2 and str(missing) in no_file.stderr

    no_reason = tickets("approve", "x", cwd=tmp_path)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr


def test_help_documents_the_exit_codes_and_variables(tmp_path: Path) -> None:
    result = tickets("approve", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for text in ("exit codes", "TICKETFLOW_API_URL", "TICKETFLOW_TOKEN", "TICKETFLOW_TOKEN_FILE"):
        assert text in result.stdout
    for code in range(6):
        assert f"\n  {code}  " in result.stdout


CANCELLED = {"ticket_id": "order-42", "status": "WAITING_APPROVAL", "already": False}


def test_cancel_posts_with_the_token_and_says_what_happens(
    stub_api: StubApi, tmp_path: Path
) -> None:
    stub_api.answer("POST", "/tickets/order-42/cancel", (202, CANCELLED, {}))
    env = {"TICKETFLOW_API_URL": stub_api.url, "TICKETFLOW_TOKEN": TOKEN}
    result = tickets("cancel", "order-42", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "cancel requested while WAITING_APPROVAL" in result.stdout
    assert "ESCALATED" in result.stdout
    assert stub_api.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in result.stdout + result.stderr

    as_json = tickets("cancel", "order-42", "--json", cwd=tmp_path, env=env)
    assert json.loads(as_json.stdout) == CANCELLED


def test_a_cancel_whose_answer_was_lost_is_sent_again_and_answers_already(
    stub_api: StubApi, tmp_path: Path
) -> None:
    stub_api.answer(
        "POST",
        "/tickets/order-42/cancel",
        "drop",
        (202, {**CANCELLED, "status": "ESCALATED", "already": True}, {}),
    )
    env = {"TICKETFLOW_API_URL": stub_api.url, "TICKETFLOW_TOKEN": TOKEN}
    result = tickets("cancel", "order-42", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "already cancelled" in result.stdout
    assert [s.path for s in stub_api.seen] == ["/tickets/order-42/cancel"] * 2


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [(409, "cancel_rejected", 4), (404, "ticket_not_found", 3), (401, "unauthorized", 1)],
)
def test_cancel_refusals_have_their_exit_codes(
    stub_api: StubApi, tmp_path: Path, status: int, code: str, exit_code: int
) -> None:
    message = f"refused: {code}"
    stub_api.answer(
        "POST",
        "/tickets/order-42/cancel",
        (status, {"error": {"code": code, "message": message}}, {}),
    )
    env = {"TICKETFLOW_API_URL": stub_api.url, "TICKETFLOW_TOKEN": TOKEN}
    result = tickets("cancel", "order-42", cwd=tmp_path, env=env)
    assert result.returncode == exit_code
    assert message in result.stderr
