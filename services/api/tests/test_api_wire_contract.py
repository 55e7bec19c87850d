"""The HTTP contract as a schema-driven fuzzer reads it: what OpenAPI publishes is what the api does.

- a body that is not UTF-8, or JSON nested too deeply to parse, is a documented 422 in the error
  shape (was FastAPI's bare, undocumented 400);
- the decision endpoint judges the token before the body: without a valid one the answer is 401,
  whatever the body;
- `requested_refund_cents` is an "integer" in the schema, and JSON Schema's integer includes
  `529.0`: it is accepted as 529 (a fractional part is still refused);
- a 405 lists every method the path has in `Allow`;
- NUL characters are refused in every text field of a request, naming the field.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from ticketflow.api import Settings, create_app
from ticketflow.api.read_model_client import NoReadModelClient

JSON = {"Content-Type": "application/json"}
DECISION = "/tickets/never-created/decision"
NOT_UTF8 = b'{"approved": true, "reason": "\xff\xfe"}'
TOO_DEEP = b"[" * 30_000 + b"]" * 30_000


@pytest.fixture
async def offline() -> Any:
    """The app with Temporal away: everything here is judged before Temporal is asked."""
    settings = Settings(
        temporal_address="127.0.0.1:1",
        approver_tokens="alice:alice-token-0123456789",
        health_timeout_s=0.2,
    )
    app = create_app(settings, read_model_client=NoReadModelClient())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as http:
        yield http


def documented(path: str, method: str, status: int) -> bool:
    doc = create_app(Settings()).openapi()
    return str(status) in doc["paths"][path][method]["responses"]


def submission(**changes: Any) -> dict[str, Any]:
    body = {"customer_id": "cust-1", "subject": "Kettle", "body": "Broken kettle."}
    return {**body, **changes}


@pytest.mark.parametrize(
    ("body", "complaint"),
    [(b'{"subject": "\xff\xfe"}', "UTF-8"), (TOO_DEEP, "nested too deeply")],
    ids=["invalid-utf8", "too-deep"],
)
async def test_an_unparsable_body_is_a_documented_422(offline, body: bytes, complaint: str) -> None:
    response = await offline.post("/tickets", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "malformed JSON" in error["message"] and complaint in error["message"]
    assert error["details"][0]["loc"][0] == "body"
    assert documented("/tickets", "post", response.status_code)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param(JSON, b'{"approved": tru', id="malformed"),
        pytest.param(JSON, NOT_UTF8, id="invalid-utf8"),
        pytest.param(JSON, TOO_DEEP, id="too-deep"),
        pytest.param(JSON, b'{"approved": "yes"}', id="wrong-type"),
        pytest.param(JSON, b"", id="empty"),
        pytest.param({"Content-Type": "text/plain"}, b"yes", id="text-plain"),
    ],
)
@pytest.mark.parametrize(
    "token", [None, "wrong-token", "alice-token-0123456789x"], ids=["none", "wrong", "near"]
)
async def test_the_decision_endpoint_judges_the_token_before_the_body(
    offline, headers: dict[str, str], body: bytes, token: str | None
) -> None:
    if token is not None:
        headers = {**headers, "Authorization": f"Bearer {token}"}
    response = await offline.post(DECISION, content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_with_a_valid_token_the_body_is_judged(offline) -> None:
    auth = {**JSON, "Authorization": "Bearer alice-token-0123456789"}
    for body in (b'{"approved": tru', NOT_UTF8, TOO_DEEP):
        response = await offline.post(DECISION, content=body, headers=auth)
        assert response.status_code == 422, response.text
        assert documented("/tickets/{ticket_id}/decision", "post", 422)


async def test_an_integral_refund_is_an_integer_whatever_its_spelling(api, helpers) -> None:
    doc = create_app(Settings()).openapi()
    cents = doc["components"]["schemas"]["SubmitTicketRequest"]["properties"]
    assert cents["requested_refund_cents"]["anyOf"][0]["type"] == "integer"

    ticket = helpers.submission(requested_refund_cents=529.0)
    created = await api.post("/tickets", content=json.dumps(ticket), headers=JSON)
    assert created.status_code == 202, created.text
    view = (await api.get(f"/tickets/{ticket['ticket_id']}")).json()
    assert view["ticket"]["requested_refund_cents"] == 529
    assert isinstance(view["ticket"]["requested_refund_cents"], int)
    # The same content however the number is spelled: the same ticket.
    again = await api.post("/tickets", json={**ticket, "requested_refund_cents": 529})
    assert again.status_code == 200, again.text


@pytest.mark.parametrize(
    "raw", [b"529.5", b"1e300", b"1e400", b"NaN", b"true", b'"529"', b"-1.0", b"100000001.0"]
)
async def test_a_refund_that_is_not_a_whole_number_of_cents_is_422(offline, raw: bytes) -> None:
    body = json.dumps(submission())[:-1].encode() + b', "requested_refund_cents": ' + raw + b"}"
    response = await offline.post("/tickets", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    (detail,) = response.json()["error"]["details"]
    assert detail["loc"] == ["body", "requested_refund_cents"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/tickets", {"GET", "POST"}),
        ("DELETE", "/tickets", {"GET", "POST"}),
        ("PUT", "/tickets/t1", {"GET"}),
        ("GET", "/tickets/t1/decision", {"POST"}),
    ],
)
async def test_a_405_lists_every_method_of_the_path(
    offline, method: str, path: str, allowed: set[str]
) -> None:
    response = await offline.request(method, path)
    assert response.status_code == 405, response.text
    listed = {m.strip() for m in response.headers["allow"].split(",")}
    assert listed - {"HEAD"} == allowed
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert all(m in error["message"] for m in allowed)


@pytest.mark.parametrize("field", ["subject", "body", "customer_id", "order_id"])
async def test_a_nul_character_is_refused_naming_the_field(offline, field: str) -> None:
    response = await offline.post("/tickets", json=submission(**{field: "a\x00b"}))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["loc"] == ["body", field]
    assert f"body.{field}: " in error["message"] and "NUL" in error["message"]


async def test_a_nul_character_in_a_decision_reason_is_refused(offline) -> None:
    response = await offline.post(
        DECISION,
        json={"approved": True, "reason": "ok\x00"},
        headers={"Authorization": "Bearer alice-token-0123456789"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == ["body", "reason"]
