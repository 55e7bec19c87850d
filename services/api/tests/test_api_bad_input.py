"""Bad input on every endpoint: always a 4xx with a message in the one error shape, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ticketflow.contracts import (
    MAX_BODY_CHARS,
    MAX_REASON_CHARS,
    MAX_REFUND_CENTS,
    MAX_SUBJECT_CHARS,
)

GOOD_TICKET = {
    "ticket_id": "bad-input-never-created",
    "customer_id": "cust-1",
    "subject": "Kettle",
    "body": "Broken kettle.",
}
JSON = {"Content-Type": "application/json"}
OVER_64_KIB = 64 * 1024 + 1
DECISION = "/tickets/bad-input-never-created/decision"


def with_(**changes: Any) -> bytes:
    return json.dumps({**GOOD_TICKET, **changes}).encode()


def without(field: str) -> bytes:
    return json.dumps({k: v for k, v in GOOD_TICKET.items() if k != field}).encode()


# (id, method, url, headers, body, expected status)
CASES: list[tuple[str, str, str, dict[str, str], bytes | None, int]] = [
    # -- POST /tickets: not a JSON object
    ("malformed-json", "POST", "/tickets", JSON, b'{"customer_id": ', 422),
    ("trailing-garbage", "POST", "/tickets", JSON, with_() + b"}", 422),
    ("json-array", "POST", "/tickets", JSON, b"[1, 2]", 422),
    ("json-string", "POST", "/tickets", JSON, b'"ticket"', 422),
    ("json-number", "POST", "/tickets", JSON, b"42", 422),
    ("json-null", "POST", "/tickets", JSON, b"null", 422),
    ("empty-body", "POST", "/tickets", JSON, b"", 422),
    ("blank-body", "POST", "/tickets", JSON, b"  \n ", 422),
    ("invalid-utf8", "POST", "/tickets", JSON, b'{"subject": "\xff\xfe"}', 422),
    ("deeply-nested", "POST", "/tickets", JSON, b"[" * 50_000 + b"]" * 50_000, 413),
    ("nested-within-limit", "POST", "/tickets", JSON, b"[" * 30_000 + b"]" * 30_000, 422),
    ("nan", "POST", "/tickets", JSON, with_()[:-1] + b', "requested_refund_cents": NaN}', 422),
    # -- POST /tickets: content type
    ("no-content-type", "POST", "/tickets", {}, with_(), 415),
    ("text-plain", "POST", "/tickets", {"Content-Type": "text/plain"}, with_(), 415),
    (
        "form",
        "POST",
        "/tickets",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"a=1",
        415,
    ),
    (
        "latin1-charset",
        "POST",
        "/tickets",
        {"Content-Type": "application/json; charset=latin-1"},
        with_(),
        415,
    ),
    # -- POST /tickets: wrong types and shapes
    ("customer-id-int", "POST", "/tickets", JSON, with_(customer_id=12), 422),
    ("subject-list", "POST", "/tickets", JSON, with_(subject=["a"]), 422),
    ("body-object", "POST", "/tickets", JSON, with_(body={"a": 1}), 422),
    ("cents-string", "POST", "/tickets", JSON, with_(requested_refund_cents="12"), 422),
    ("cents-float", "POST", "/tickets", JSON, with_(requested_refund_cents=12.5), 422),
    ("cents-bool", "POST", "/tickets", JSON, with_(requested_refund_cents=True), 422),
    ("cents-negative", "POST", "/tickets", JSON, with_(requested_refund_cents=-1), 422),
    (
        "cents-over-max",
        "POST",
        "/tickets",
        JSON,
        with_(requested_refund_cents=MAX_REFUND_CENTS + 1),
        422,
    ),
    ("cents-huge", "POST", "/tickets", JSON, with_(requested_refund_cents=10**40), 422),
    ("extra-field", "POST", "/tickets", JSON, with_(priority="high"), 422),
    ("missing-subject", "POST", "/tickets", JSON, without("subject"), 422),
    ("missing-customer", "POST", "/tickets", JSON, without("customer_id"), 422),
    ("null-subject", "POST", "/tickets", JSON, with_(subject=None), 422),
    ("nul-in-subject", "POST", "/tickets", JSON, with_(subject="a\u0000b"), 422),
    ("nul-in-body", "POST", "/tickets", JSON, with_(body="\u0000"), 422),
    ("nul-in-customer", "POST", "/tickets", JSON, with_(customer_id="c\u0000"), 422),
    # -- POST /tickets: bounds
    ("empty-subject", "POST", "/tickets", JSON, with_(subject=""), 422),
    ("blank-subject", "POST", "/tickets", JSON, with_(subject="   "), 422),
    ("long-subject", "POST", "/tickets", JSON, with_(subject="s" * (MAX_SUBJECT_CHARS + 1)), 422),
    ("long-body", "POST", "/tickets", JSON, with_(body="b" * (MAX_BODY_CHARS + 1)), 422),
    ("long-customer", "POST", "/tickets", JSON, with_(customer_id="c" * 65), 422),
    ("space-in-customer", "POST", "/tickets", JSON, with_(customer_id="cust 1"), 422),
    ("empty-order", "POST", "/tickets", JSON, with_(order_id=""), 422),
    ("oversized-body", "POST", "/tickets", JSON, with_(body="x" * OVER_64_KIB), 413),
    # -- POST /tickets: ticket_id
    ("ticket-id-slash", "POST", "/tickets", JSON, with_(ticket_id="a/b"), 422),
    ("ticket-id-space", "POST", "/tickets", JSON, with_(ticket_id="a b"), 422),
    ("ticket-id-unicode", "POST", "/tickets", JSON, with_(ticket_id="caf\u00e9"), 422),
    ("ticket-id-empty", "POST", "/tickets", JSON, with_(ticket_id=""), 422),
    ("ticket-id-65", "POST", "/tickets", JSON, with_(ticket_id="a" * 65), 422),
    ("ticket-id-int", "POST", "/tickets", JSON, with_(ticket_id=7), 422),
    ("ticket-id-newline", "POST", "/tickets", JSON, with_(ticket_id="abc\n"), 422),
    # -- GET /tickets/{ticket_id}
    ("get-id-dollar", "GET", "/tickets/bad$id", {}, None, 422),
    ("get-id-65", "GET", "/tickets/" + "a" * 65, {}, None, 422),
    ("get-id-space", "GET", "/tickets/a%20b", {}, None, 422),
    ("get-id-unicode", "GET", "/tickets/caf%C3%A9", {}, None, 422),
    ("get-id-dot", "GET", "/tickets/a.b", {}, None, 422),
    # -- GET /tickets?status&limit
    ("status-unknown", "GET", "/tickets?status=NOPE", {}, None, 422),
    ("status-lowercase", "GET", "/tickets?status=received", {}, None, 422),
    ("status-injection", "GET", '/tickets?status=RECEIVED"%20OR%20"1"="1', {}, None, 422),
    ("limit-zero", "GET", "/tickets?limit=0", {}, None, 422),
    ("limit-over", "GET", "/tickets?limit=201", {}, None, 422),
    ("limit-negative", "GET", "/tickets?limit=-1", {}, None, 422),
    ("limit-text", "GET", "/tickets?limit=abc", {}, None, 422),
    ("limit-float", "GET", "/tickets?limit=1.5", {}, None, 422),
    ("limit-huge", "GET", "/tickets?limit=99999999999999999999999", {}, None, 422),
    ("list-unknown-param", "GET", "/tickets?stauts=RECEIVED", {}, None, 422),
    ("page-token-empty", "GET", "/tickets?page_token=", {}, None, 422),
    ("page-token-long", "GET", "/tickets?page_token=" + "A" * 2049, {}, None, 422),
    (
        "page-token-not-ours",
        "GET",
        "/tickets?status=WAITING_APPROVAL&page_token=abc",
        {},
        None,
        400,
    ),
    ("page-token-quote", "GET", '/tickets?page_token="%20OR%20"1"="1', {}, None, 400),
    # -- POST /tickets/{ticket_id}/decision (authenticated, so the input itself is judged)
    ("decide-malformed", "POST", DECISION, JSON, b'{"approved": tru', 422),
    ("decide-array", "POST", DECISION, JSON, b"[true]", 422),
    ("decide-empty", "POST", DECISION, JSON, b"", 422),
    ("decide-text-plain", "POST", DECISION, {"Content-Type": "text/plain"}, b"yes", 415),
    ("decide-approved-string", "POST", DECISION, JSON, b'{"approved": "true"}', 422),
    ("decide-approved-int", "POST", DECISION, JSON, b'{"approved": 1}', 422),
    ("decide-approved-null", "POST", DECISION, JSON, b'{"approved": null}', 422),
    ("decide-missing-approved", "POST", DECISION, JSON, b'{"reason": "ok"}', 422),
    ("decide-extra", "POST", DECISION, JSON, b'{"approved": true, "approver": "mallory"}', 422),
    ("decide-reason-int", "POST", DECISION, JSON, b'{"approved": true, "reason": 5}', 422),
    (
        "decide-reason-long",
        "POST",
        DECISION,
        JSON,
        json.dumps({"approved": True, "reason": "r" * (MAX_REASON_CHARS + 1)}).encode(),
        422,
    ),
    (
        "decide-oversized",
        "POST",
        DECISION,
        JSON,
        json.dumps({"approved": True, "reason": "r" * OVER_64_KIB}).encode(),
        413,
    ),
    ("decide-id-bad", "POST", "/tickets/bad$id/decision", JSON, b'{"approved": true}', 422),
    ("decide-id-long", "POST", f"/tickets/{'a' * 65}/decision", JSON, b'{"approved": true}', 422),
    # -- routing
    ("unknown-route", "GET", "/nope", {}, None, 404),
    ("method-not-allowed", "DELETE", "/tickets", {}, None, 405),
    ("get-decision", "GET", DECISION, {}, None, 405),
]


@pytest.mark.parametrize(
    ("method", "url", "headers", "body", "status"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
async def test_bad_input_is_a_4xx_with_a_message(
    api: httpx.AsyncClient, helpers, method, url, headers, body, status
) -> None:
    if url.startswith("/tickets/") and url.endswith("/decision") and method == "POST":
        headers = {**headers, **helpers.bearer()}
    response = await api.request(method, url, headers=headers, content=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], list)
    # Never reflect a huge input back.
    assert len(response.content) < 8 * 1024
    assert (await api.get("/healthz")).status_code == 200


async def test_validation_errors_say_where_and_what(api: httpx.AsyncClient) -> None:
    response = await api.post("/tickets", content=with_(requested_refund_cents="12"), headers=JSON)
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "requested_refund_cents" in error["message"]
    assert error["details"][0]["loc"] == ["body", "requested_refund_cents"]
    assert "input" not in error["details"][0]

    malformed = (await api.post("/tickets", content=b"{", headers=JSON)).json()["error"]
    assert "JSON" in malformed["message"]


async def chunks(total: int, size: int = 4096) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


async def test_chunked_body_over_the_limit_is_413(api: httpx.AsyncClient) -> None:
    response = await api.post("/tickets", content=chunks(OVER_64_KIB + 10_000), headers=JSON)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert (await api.get("/healthz")).status_code == 200


async def test_chunked_body_within_the_limit_is_parsed(api: httpx.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:
        raw = with_(subject=["not", "a", "string"])
        for i in range(0, len(raw), 7):
            yield raw[i : i + 7]

    response = await api.post("/tickets", content=body(), headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == ["body", "subject"]


async def test_declared_length_over_the_limit_is_refused_unread(helpers) -> None:
    """Straight at the ASGI app: a lying or huge Content-Length, and a non-numeric one."""
    from ticketflow.api import Settings, create_app

    app = create_app(Settings(temporal_address="127.0.0.1:1"))

    async def call(content_length: str | bytes) -> tuple[int, dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        received = 0

        async def receive() -> dict[str, Any]:
            nonlocal received
            received += 1
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/tickets",
            "raw_path": b"/tickets",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"api"),
                (b"content-type", b"application/json"),
                (
                    b"content-length",
                    content_length
                    if isinstance(content_length, bytes)
                    else content_length.encode(),
                ),
            ],
            "client": ("127.0.0.1", 1234),
            "server": ("127.0.0.1", 8000),
        }
        await app(scope, receive, send)
        assert received == 0, "the body must not be read"
        status = sent[0]["status"]
        return status, json.loads(b"".join(m.get("body", b"") for m in sent[1:]))

    status, body = await call(str(10**12))
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    status, body = await call("12abc")
    assert status == 400 and body["error"]["code"] == "bad_request"
    status, body = await call("-5")
    assert status == 400
    # Latin-1 superscripts: str.isdigit() says yes, int() says no. Header bytes are latin-1.
    for unicode_digits in ("\u00b2", "1\u00b9", "\u00b3\u00b2"):
        status, body = await call(unicode_digits.encode("latin-1"))
        assert status == 400 and body["error"]["code"] == "bad_request"


async def test_a_bug_is_a_500_that_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    from ticketflow.api import Settings, create_app
    from ticketflow.api.deps import get_tickets
    from ticketflow.api.read_model_client import NoReadModelClient
    from ticketflow.api.service import TicketService

    class BrokenGateway:
        async def list_tickets(self, status: Any, limit: int, page_token: Any = None) -> Any:
            raise RuntimeError("secret internal detail")

    app = create_app(
        Settings(temporal_address="127.0.0.1:1"), read_model_client=NoReadModelClient()
    )
    broken = TicketService(BrokenGateway(), NoReadModelClient())  # type: ignore[arg-type]
    app.dependency_overrides[get_tickets] = lambda: broken
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        response = await http.get("/tickets")
        assert response.status_code == 500
        assert response.json() == {
            "error": {"code": "internal", "message": "internal server error", "details": []}
        }
        assert "secret" not in response.text
        assert (await http.get("/healthz")).status_code == 200
    assert "secret internal detail" in caplog.text
