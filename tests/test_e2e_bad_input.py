"""Garbage at the real api process: every bad request gets a 4xx with a message, nothing starts,
and the service stays healthy."""

from __future__ import annotations

import httpx
import pytest

from .harness import Stack, bearer, submit, wait_status

# A module's first test also starts the stack (dev server and four service processes).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

VALID = {"customer_id": "c-1", "subject": "Cannot login", "body": "password"}

BAD_SUBMISSIONS: list[tuple[str, dict]] = [
    ("not json", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    ("json array", {"json": [VALID]}),
    ("json string", {"json": "hello"}),
    ("empty body", {"content": b"", "headers": {"content-type": "application/json"}}),
    ("form encoded", {"data": {"customer_id": "c"}}),
    ("missing subject", {"json": {"customer_id": "c", "body": "b"}}),
    ("extra field", {"json": {**VALID, "admin": True}}),
    ("int as string", {"json": {**VALID, "requested_refund_cents": "100"}}),
    ("float cents", {"json": {**VALID, "requested_refund_cents": 10.5}}),
    ("negative cents", {"json": {**VALID, "requested_refund_cents": -1}}),
    ("huge cents", {"json": {**VALID, "requested_refund_cents": 10**20}}),
    ("bool cents", {"json": {**VALID, "requested_refund_cents": True}}),
    ("bad ticket_id chars", {"json": {**VALID, "ticket_id": "a/b"}}),
    ("ticket_id too long", {"json": {**VALID, "ticket_id": "x" * 65}}),
    ("empty ticket_id", {"json": {**VALID, "ticket_id": ""}}),
    ("subject too long", {"json": {**VALID, "subject": "s" * 201}}),
    ("body too long", {"json": {**VALID, "body": "b" * 10_001}}),
    ("null customer", {"json": {**VALID, "customer_id": None}}),
    ("nested object", {"json": {**VALID, "subject": {"a": 1}}}),
    (
        "oversized request",
        {
            "content": b'{"body":"' + b"x" * 300_000 + b'"}',
            "headers": {"content-type": "application/json"},
        },
    ),
]


def assert_clear_4xx(r: httpx.Response) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    body = r.json()
    assert body["error"]["message"], body


@pytest.mark.parametrize(("case", "kwargs"), BAD_SUBMISSIONS, ids=[c for c, _ in BAD_SUBMISSIONS])
def test_bad_submission_is_refused_with_a_message(
    api: httpx.Client, case: str, kwargs: dict
) -> None:
    assert_clear_4xx(api.post("/tickets", **kwargs))
    assert api.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/tickets/a%2Fb", "/tickets/" + "x" * 65, "/tickets/bad%20id", "/tickets/%00"],
)
def test_bad_ticket_id_in_path(api: httpx.Client, path: str) -> None:
    assert_clear_4xx(api.get(path))
    assert_clear_4xx(api.post(path + "/decision", json={"approved": True}, headers=bearer("alice")))


@pytest.mark.parametrize(
    "params",
    [
        {"status": "NOPE"},
        {"limit": "0"},
        {"limit": "100000"},
        {"limit": "ten"},
        {"status": "resolved'"},
    ],
)
def test_bad_listing_parameters(api: httpx.Client, params: dict) -> None:
    assert_clear_4xx(api.get("/tickets", params=params))


def test_bad_decisions_change_nothing(stack: Stack, api: httpx.Client) -> None:
    tid = submit(api, subject="refund", body="refund", requested_refund_cents=77_700)["ticket_id"]
    wait_status(api, tid, "WAITING_APPROVAL")
    url = f"/tickets/{tid}/decision"
    for kwargs in [
        {"json": {"approved": "yes"}, "headers": bearer("alice")},
        {"json": {"approved": 1}, "headers": bearer("alice")},
        {"json": {}, "headers": bearer("alice")},
        {"json": {"approved": True, "reason": "r" * 5000}, "headers": bearer("alice")},
        {"json": {"approved": True, "approver": "mallory"}, "headers": bearer("alice")},
        {"content": b"[", "headers": {**bearer("alice"), "content-type": "application/json"}},
        {"json": {"approved": True}, "headers": {"Authorization": "Basic YWxpY2U6eA=="}},
        {"json": {"approved": True}, "headers": {"Authorization": "Bearer"}},
    ]:
        assert_clear_4xx(api.post(url, **kwargs))
    t = wait_status(api, tid, "WAITING_APPROVAL")
    assert t["decision"] is None and t["accepting_decisions"] is True
    assert stack.sql("ledger.db", "SELECT count(*) FROM refunds") in ([(0,)], [])
    assert api.get("/readyz").status_code == 200
