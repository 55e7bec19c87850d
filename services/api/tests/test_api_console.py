"""The approvals console over HTTP (issue 12): sign-in, the queue, a ticket, decisions, conflicts,
CSRF, sign-out; Swagger UI and ReDoc from local assets. The browser tests (tests/test_console_
browser.py) drive the same pages in Chromium against the real stack."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from ticketflow.api import Settings, create_app
from ticketflow.api.read_model_client import NoReadModelClient
from ticketflow.contracts import names
from ticketflow.testkit import eventually_async

from .test_api_tickets import submit_waiting

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
Browser = Callable[[], httpx.AsyncClient]


@pytest.fixture
async def console(settings: Settings, fake_worker: None) -> AsyncIterator[Browser]:
    """A factory of clients of one app, each with its own cookies (a browser session each)."""
    async with AsyncExitStack() as stack:
        app = create_app(settings, read_model_client=NoReadModelClient())
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app)

        def browser() -> httpx.AsyncClient:
            client = httpx.AsyncClient(transport=transport, base_url="http://api")
            stack.push_async_callback(client.aclose)
            return client

        yield browser


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/console/login")
    assert form.status_code == 200
    return await client.post("/console/login", data={"token": token, "csrf": csrf_of(form)})


async def signed_in(browser: Browser, helpers: Any, name: str = "alice") -> httpx.AsyncClient:
    client = browser()
    answer = await sign_in(client, helpers.APPROVERS[name])
    assert answer.status_code == 303 and answer.headers["location"] == "/console/queue"
    return client


async def test_pages_need_a_session_and_a_bad_token_gets_the_sign_in_page(
    console: Browser, helpers
) -> None:
    client = console()
    for path in ("/console", "/console/queue", "/console/tickets/t-1"):
        got = await client.get(path)
        assert got.status_code == 303 and got.headers["location"].startswith("/console/login")
    state = await client.get("/console/queue/state")
    assert state.status_code == 401

    refused = await sign_in(client, "not-a-token")
    assert refused.status_code == 401
    assert "not an approver" in refused.text and 'type="password"' in refused.text
    assert "ticketflow_console=" not in refused.headers.get("set-cookie", "")

    # A sign-in form not from this console (no or wrong CSRF token) is refused.
    forged = await console().post("/console/login", data={"token": helpers.APPROVERS["alice"]})
    assert forged.status_code == 400 and "expired" in forged.text
    assert "ticketflow_console=" not in forged.headers.get("set-cookie", "")


async def test_the_session_cookie_is_httponly_strict_and_holds_no_token(
    console: Browser, helpers
) -> None:
    client = console()
    answer = await sign_in(client, helpers.APPROVERS["alice"])
    assert answer.status_code == 303
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("ticketflow_console=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= attributes
    assert helpers.APPROVERS["alice"] not in cookie
    queue = await client.get("/console/queue")
    assert queue.status_code == 200 and "Signed in as <strong>alice</strong>" in queue.text
    assert queue.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in queue.headers["content-security-policy"]

    # Altered cookie: signed out.
    client.cookies.set("ticketflow_console", client.cookies["ticketflow_console"] + "x")
    assert (await client.get("/console/queue")).status_code == 303


async def test_queue_shows_a_waiting_refund_and_its_ticket_page(
    api: httpx.AsyncClient, console: Browser, helpers
) -> None:
    ticket_id = await submit_waiting(api, helpers, requested_refund_cents=25_000)
    client = await signed_in(console, helpers)

    async def listed() -> httpx.Response:
        page = await client.get("/console/queue")
        assert ticket_id in page.text
        return page

    page = await eventually_async(listed, what="the ticket in the console's queue")
    row = page.text[page.text.index(f">{ticket_id}</a>") :].split("</tr>")[0]
    for shown in ("refund", "primary", "93%", "250.00 USD", "Refund for a broken kettle"):
        assert shown in row, (shown, row)
    assert re.search(r"<td>(\d+ h \d+ min|\d+ h|\d+ min|less than a minute|\d+ d.*)</td>", row)

    ticket = await client.get(f"/console/tickets/{ticket_id}")
    assert ticket.status_code == 200
    for shown in (
        "It arrived broken. Please refund.",  # the customer's message
        "keyword &#39;refund&#39;",  # the rationale (escaped)
        "We are sorry; here is your refund.",  # the draft reply
        "WAITING_APPROVAL</strong> at",  # the status history
        names.CLASSIFY,  # the agent calls
        'name="approved" value="true"',
        '<label for="reason">',
    ):
        assert shown in ticket.text, shown


async def test_approve_then_a_second_session_gets_a_clear_conflict(
    api: httpx.AsyncClient, console: Browser, helpers
) -> None:
    ticket_id = await submit_waiting(api, helpers)
    alice = await signed_in(console, helpers, "alice")
    bob = await signed_in(console, helpers, "bob")
    page_alice = await alice.get(f"/console/tickets/{ticket_id}")
    page_bob = await bob.get(f"/console/tickets/{ticket_id}")  # both see the form

    url = f"/console/tickets/{ticket_id}/decision"
    form = {"approved": "true", "reason": "loyal customer", "csrf": csrf_of(page_alice)}
    done = await alice.post(url, data=form)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/console/tickets/{ticket_id}?done=approved"
    shown = await alice.get(done.headers["location"])
    assert "You approved this ticket." in shown.text
    assert "Approved by alice</strong>" in shown.text and "loyal customer" in shown.text

    # The same form again (the answer was lost, the browser re-posts): the same decision.
    again = await alice.post(url, data=form)
    assert again.status_code == 303, again.text

    late = await bob.post(
        url, data={"approved": "false", "reason": "too much", "csrf": csrf_of(page_bob)}
    )
    assert late.status_code == 409
    assert "alice already approved this ticket" in late.text
    assert "Your decision was not recorded." in late.text
    assert "Traceback" not in late.text and 'role="alert"' in late.text
    view = (await api.get(f"/tickets/{ticket_id}")).json()
    assert view["decision"]["approver"] == "alice"


async def test_decisions_need_the_forms_csrf_token_and_a_reason(
    api: httpx.AsyncClient, console: Browser, helpers
) -> None:
    ticket_id = await submit_waiting(api, helpers)
    client = await signed_in(console, helpers)
    url = f"/console/tickets/{ticket_id}/decision"
    forged = await client.post(url, data={"approved": "true", "reason": "x", "csrf": "forged"})
    assert forged.status_code == 403 and "did not come from this console" in forged.text
    csrf = csrf_of(await client.get(f"/console/tickets/{ticket_id}"))
    blank = await client.post(url, data={"approved": "true", "reason": "  ", "csrf": csrf})
    assert blank.status_code == 422 and "Give a reason" in blank.text
    nul = await client.post(url, data={"approved": "true", "reason": "a\x00b", "csrf": csrf})
    assert nul.status_code == 422 and "NUL" in nul.text
    view = (await api.get(f"/tickets/{ticket_id}")).json()
    assert view["status"] == "WAITING_APPROVAL" and view["decision"] is None

    # No session at all: back to the sign-in page.
    anonymous = await console().post(url, data={"approved": "true", "reason": "x", "csrf": csrf})
    assert anonymous.status_code == 303 and "/console/login" in anonymous.headers["location"]


async def test_a_closed_window_and_an_unknown_ticket_are_clear_messages(
    api: httpx.AsyncClient, console: Browser, helpers, dev_env
) -> None:
    ticket_id = await submit_waiting(api, helpers)
    client = await signed_in(console, helpers)
    csrf = csrf_of(await client.get(f"/console/tickets/{ticket_id}"))
    handle = dev_env.client.get_workflow_handle(names.workflow_id(ticket_id))
    await handle.signal(helpers.FINISH_SIGNAL)  # no decision: the fake escalates
    await handle.result()
    late = await client.post(
        f"/console/tickets/{ticket_id}/decision",
        data={"approved": "true", "reason": "ok", "csrf": csrf},
    )
    assert late.status_code == 409
    assert "The approval window closed" in late.text and "Traceback" not in late.text

    unknown = await client.get(f"/console/tickets/nope-{uuid.uuid4().hex}")
    assert unknown.status_code == 404 and "not found" in unknown.text


async def test_an_unconfirmed_decision_is_offered_again_with_the_same_content(
    settings: Settings, fake_worker: None, helpers, dev_env
) -> None:
    quick = settings.model_copy(update={"decide_timeout_s": 1.0})
    async with helpers.serve_app(quick) as api:
        ticket_id = await submit_waiting(api, helpers)
    app = create_app(quick, read_model_client=NoReadModelClient())
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
        async with client:
            assert (await sign_in(client, helpers.APPROVERS["alice"])).status_code == 303
            csrf = csrf_of(await client.get(f"/console/tickets/{ticket_id}"))
            reason = f"ok {helpers.SLOW_ANSWER} {uuid.uuid4().hex}"
            url = f"/console/tickets/{ticket_id}/decision"
            unknown = await client.post(
                url, data={"approved": "true", "reason": reason, "csrf": csrf}
            )
            assert unknown.status_code == 503, unknown.text
            assert "Send the same decision again" in unknown.text
            # The offered form carries exactly the decision that was sent.
            assert f'name="reason" value="{reason}"' in unknown.text
            assert 'name="approved" value="true"' in unknown.text

            handle = dev_env.client.get_workflow_handle(names.workflow_id(ticket_id))
            await handle.signal(helpers.ANSWER_SIGNAL)
            resent = await client.post(
                url, data={"approved": "true", "reason": reason, "csrf": csrf_of(unknown)}
            )
            assert resent.status_code == 303, resent.text
            view = await client.get(resent.headers["location"])
            assert "Approved by alice" in view.text


async def test_sign_out_ends_the_session(console: Browser, helpers) -> None:
    client = await signed_in(console, helpers)
    page = await client.get("/console/queue")
    forged = await client.post("/console/logout", data={"csrf": "forged"})
    assert forged.status_code == 403
    out = await client.post("/console/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert (await client.get("/console/queue")).status_code == 303


async def test_the_queue_state_changes_when_the_queue_does(
    api: httpx.AsyncClient, console: Browser, helpers
) -> None:
    client = await signed_in(console, helpers)
    before = (await client.get("/console/queue/state")).json()["fingerprint"]
    await submit_waiting(api, helpers)

    async def changed() -> bool:
        now = (await client.get("/console/queue/state")).json()["fingerprint"]
        assert now != before
        return True

    await eventually_async(changed, what="the queue's fingerprint to change")


async def test_static_assets_and_docs_are_served_locally(console: Browser) -> None:
    client = console()
    for path in ("/console/static/console.css", "/console/static/console.js"):
        assert (await client.get(path)).status_code == 200, path
    for page, assets in (
        ("/docs", ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css")),
        ("/redoc", ("/docs-assets/redoc.standalone.js",)),
    ):
        html = (await client.get(page)).text
        assert "cdn" not in html.lower() and "https://" not in html, html
        for asset in assets:
            assert asset in html
            got = await client.get(asset)
            assert got.status_code == 200 and len(got.content) > 10_000, asset
