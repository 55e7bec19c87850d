"""The approvals console in a real browser: headless Chromium (the system's, driven by Playwright)
against the real stack (dev server, workers, api processes), as an approver would use it.

Screenshots of every step are saved under `.artifacts/console/` (kept out of git; CI keeps them as
the run's artifacts); with TICKETFLOW_DOCS_SCREENSHOTS=1 the queue and the ticket page are also
written to docs/ for the README. Chromium is a Debian package (`apt-get install -y chromium`):
scripts/check.py installs it when run as root; where it is absent these tests skip saying so,
except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .harness import TOKENS, Stack, eventually, submit, wait_status

# A module's first test also starts the stack; each test drives a browser for tens of seconds.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / ".artifacts" / "console"
DOCS = ROOT / "docs"
WAIT_MS = 60_000  # the queue trails visibility by a moment; the workflow's effects take a few s


def _chromium() -> str | None:
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator:
    path = _chromium()
    if path is None:
        why = (
            "chromium is not installed: `sudo apt-get install -y chromium`, or run `./dev test` "
            "as root (scripts/check.py installs it)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}; under CI=true the browser tests must run")
        pytest.skip(why)
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Shots:
    """Numbered screenshots of one test's steps under .artifacts/console/<test>/."""

    def __init__(self, name: str) -> None:
        self.dir = ARTIFACTS / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.n = 0

    def take(self, page, step: str, docs_name: str | None = None) -> None:
        self.n += 1
        path = self.dir / f"{self.n:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        if docs_name and os.environ.get("TICKETFLOW_DOCS_SCREENSHOTS") == "1":
            shutil.copyfile(path, DOCS / docs_name)


def console_url(stack: Stack, path: str = "") -> str:
    return f"http://127.0.0.1:{stack.http_port}/console{path}"


def sign_in(page, stack: Stack, token: str) -> None:
    """With the keyboard only: the token field has the focus when the page opens."""
    page.goto(console_url(stack))
    page.get_by_label("Approver token").wait_for()
    page.keyboard.type(token)
    page.keyboard.press("Enter")


def test_an_approver_approves_a_waiting_refund_and_a_second_session_gets_a_conflict(
    stack: Stack, api: httpx.Client, browser
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    shots = Shots("approve")
    tid = submit(
        api,
        ticket_id="order-42",
        customer_id="cust-42",
        subject="Refund for a broken kettle",
        body="The kettle arrived broken. Please refund my order.",
        order_id="o-42",
        requested_refund_cents=25_000,
    )["ticket_id"]
    others = [
        submit(
            api,
            ticket_id="order-7",
            subject="Refund of a duplicate charge",
            body="refund the duplicate charge",
            order_id="o-7",
            requested_refund_cents=12_000,
        )["ticket_id"],
        submit(
            api,
            ticket_id="question-3",
            subject="Question",
            body="Where is the manual for my device?",
        )["ticket_id"],
    ]
    for ticket_id in (tid, *others):
        wait_status(api, ticket_id, "WAITING_APPROVAL")

    alice = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    alice.goto(console_url(stack))
    expect(alice.get_by_role("heading", name="Sign in")).to_be_visible()
    shots.take(alice, "sign-in")
    sign_in(alice, stack, TOKENS["alice"])
    expect(alice).to_have_url(console_url(stack, "/queue"))
    # The queue follows visibility by itself (the page polls): no reload here.
    row = alice.get_by_role("row").filter(has=alice.get_by_role("link", name=tid))
    expect(row).to_contain_text("250.00 USD")
    expect(row).to_contain_text("refund")
    expect(row).to_contain_text("primary")
    for ticket_id in others:
        expect(alice.get_by_role("link", name=ticket_id)).to_be_visible()
    shots.take(alice, "queue", "console-queue.png")

    # A second approver opens the same ticket before alice decides.
    bob = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    sign_in(bob, stack, TOKENS["bob"])
    expect(bob).to_have_url(console_url(stack, "/queue"))
    bob.goto(console_url(stack, f"/tickets/{tid}"))
    expect(bob.get_by_role("button", name="Reject")).to_be_visible()
    # He starts typing (so his page does not reload under him when the ticket changes).
    bob.get_by_label("Reason (recorded with your decision)").fill("too expensive")

    alice.get_by_role("link", name=tid).click()
    expect(alice.get_by_role("heading", name=f"Ticket {tid}")).to_be_visible()
    expect(alice.get_by_text("The kettle arrived broken.")).to_be_visible()
    expect(alice.get_by_text("(rule refund)")).to_be_visible()  # the classification's rationale
    shots.take(alice, "ticket", "console-ticket.png")

    alice.get_by_label("Reason (recorded with your decision)").fill("loyal customer")
    alice.get_by_role("button", name="Approve").click()
    expect(alice.get_by_role("status").filter(has_text="You approved this ticket.")).to_be_visible()
    shots.take(alice, "approved")
    # The page follows the ticket to its end by itself: RESOLVED, with the refund receipt.
    expect(alice.locator("#status")).to_have_text("RESOLVED")
    expect(alice.locator("#refund")).to_contain_text("250.00 USD")
    expect(alice.get_by_text("Approved by alice")).to_be_visible()
    expect(alice.get_by_text("loyal customer")).to_be_visible()
    shots.take(alice, "resolved")
    assert stack.sql("ledger.db", "SELECT amount_cents FROM refunds WHERE ticket_id = ?", tid) == [
        (25_000,)
    ]

    # Bob's form is stale (his page says the ticket changed): his decision is refused with a
    # plain message, not recorded.
    expect(bob.locator("#live")).to_contain_text("This ticket changed")
    with bob.expect_response(re.compile(r"/decision$")) as answer:
        bob.get_by_role("button", name="Reject").click()
    assert answer.value.status == 409
    alert = bob.get_by_role("alert")
    expect(alert).to_contain_text("alice already approved this ticket")
    expect(alert).to_contain_text("Your decision was not recorded.")
    assert "Traceback" not in bob.content()
    shots.take(bob, "conflict")
    assert api.get(f"/tickets/{tid}").json()["decision"]["approver"] == "alice"


def test_a_bad_token_gets_the_sign_in_page_again(stack: Stack, api: httpx.Client, browser) -> None:
    from playwright.sync_api import expect

    shots = Shots("bad-token")
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, stack, "dev:" + TOKENS["alice"])  # the name:token entry is not the token
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("not an approver's token")
    shots.take(page, "refused")
    assert not [c for c in context.cookies() if c["name"] == "ticketflow_console"]
    page.goto(console_url(stack, "/queue"))
    expect(page).to_have_url(console_url(stack, "/login"))


def test_the_core_actions_work_without_javascript(stack: Stack, api: httpx.Client, browser) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    shots = Shots("no-javascript")
    tid = submit(
        api, subject="Refund", body="refund please", order_id="o-9", requested_refund_cents=9_900
    )["ticket_id"]
    wait_status(api, tid, "WAITING_APPROVAL")
    page = browser.new_context(java_script_enabled=False).new_page()
    sign_in(page, stack, TOKENS["bob"])
    expect(page).to_have_url(console_url(stack, "/queue"))

    def listed() -> bool:
        page.reload()
        return page.get_by_role("link", name=tid).count() == 1

    eventually(listed, timeout=30, what=f"{tid} in the queue")
    page.get_by_role("link", name=tid).click()
    page.get_by_label("Reason (recorded with your decision)").fill("not covered")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_text("You rejected this ticket.")).to_be_visible()
    shots.take(page, "rejected")
    done = wait_status(api, tid, "REJECTED")
    assert done["decision"]["approver"] == "bob" and done["decision"]["reason"] == "not covered"
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
