"""The intake check (docs/architecture.md, "Intake: accepted without the read model"): a ticket the
api accepted without the read model (``TicketInput.intake_check``) first asks the reply outbox
whether its id already reached its end, and if so ends as a duplicate that does nothing."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from ticketflow.contracts import names
from ticketflow.contracts.models import (
    IntakeCheckInput,
    ReplyKind,
    TicketInput,
    TicketState,
    TicketStatus,
)
from ticketflow.contracts.search_attributes import TICKET_STATUS
from ticketflow.core_worker._store import LedgerStore
from ticketflow.core_worker.activities import SideEffectActivities
from ticketflow.core_worker.outbox import ReplyOutbox
from ticketflow.core_worker.patches import PATCH_INTAKE_CHECK
from ticketflow.testkit import ticket_input

from ._tickets import BOTH_BACKENDS, Handle, StartWorkers, count, start_ticket

# The replies table as the outbox created it before it kept content fingerprints.
OLD_REPLIES = """
CREATE TABLE replies (
    ticket_id TEXT PRIMARY KEY, reply_id TEXT NOT NULL UNIQUE, customer_id TEXT NOT NULL,
    kind TEXT NOT NULL, body TEXT NOT NULL, workflow_id TEXT, created_at TEXT NOT NULL
) STRICT;
INSERT INTO replies VALUES ('old-1', 'rp_old', 'c', 'rejection', 'no', NULL,
    '2026-01-01T00:00:00+00:00');
"""


def flagged(inp: TicketInput) -> TicketInput:
    return inp.model_copy(update={"intake_check": True})


async def activity_types(handle: Handle) -> list[str]:
    history = await handle.fetch_history()
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def markers(handle: Handle) -> list[str]:
    history = await handle.fetch_history()
    return [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]


def test_an_old_outbox_file_gains_the_fingerprint_column_in_place(ledger_path: Path) -> None:
    with closing(sqlite3.connect(ledger_path)) as conn:
        conn.executescript(OLD_REPLIES)
    outbox = ReplyOutbox(ledger_path)
    ReplyOutbox(ledger_path)  # a second open (another process, a restart) changes nothing
    earlier = outbox.earlier_reply("old-1")
    assert earlier is not None and earlier.kind == "rejection"
    assert earlier.content_sha256 is None  # sent before fingerprints: unknown, never guessed
    outbox.send_reply(ticket_id="new-1", customer_id="c", kind="resolution", body="b",
                      content_sha256="abc")  # fmt: skip
    new = outbox.earlier_reply("new-1")
    assert new is not None and new.content_sha256 == "abc"
    assert outbox.earlier_reply("never") is None


@BOTH_BACKENDS
def test_check_intake_answers_from_the_reply_outbox(
    side_effects: SideEffectActivities, outbox: ReplyOutbox
) -> None:
    env = ActivityEnvironment()
    ask = IntakeCheckInput(ticket_id="t-1", content_sha256="same")
    assert env.run(side_effects.check_intake, ask).earlier_run is None
    outbox.send_reply(
        ticket_id="t-1", customer_id="c", kind="escalation", body="b", content_sha256="same"
    )
    earlier = env.run(side_effects.check_intake, ask).earlier_run
    assert earlier is not None
    assert (earlier.status, earlier.same_content) == (TicketStatus.ESCALATED, True)
    other = env.run(side_effects.check_intake, ask.model_copy(update={"content_sha256": "x"}))
    assert other.earlier_run is not None and other.earlier_run.same_content is False


@BOTH_BACKENDS
async def test_a_flagged_new_ticket_checks_first_then_runs_as_usual(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers, ledger_store: LedgerStore
) -> None:
    await start_workers(dev_env)
    inp = flagged(ticket_input())
    handle = await start_ticket(dev_env.client, inp)
    out = await handle.result()
    assert out.status == TicketStatus.RESOLVED and out.duplicate_of is None
    assert (await activity_types(handle))[:2] == [names.CHECK_INTAKE, names.CLASSIFY]
    assert PATCH_INTAKE_CHECK in await markers(handle)
    # The reply keeps the ticket's fingerprint, for the next check of this id.
    tid, sha = inp.ticket.ticket_id, inp.ticket.content_sha256()
    assert count(ledger_store, "SELECT count(*) FROM replies WHERE content_sha256=?", sha) == 1
    assert count(ledger_store, "SELECT count(*) FROM replies WHERE ticket_id=?", tid) == 1


async def test_an_unflagged_ticket_has_no_extra_step(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers
) -> None:
    await start_workers(dev_env)
    handle = await start_ticket(dev_env.client, ticket_input())
    await handle.result()
    assert names.CHECK_INTAKE not in await activity_types(handle)
    assert PATCH_INTAKE_CHECK not in await markers(handle)


@BOTH_BACKENDS
async def test_a_flagged_run_of_a_finished_ticket_ends_as_a_duplicate(
    dev_env: WorkflowEnvironment, start_workers: StartWorkers, ledger_store: LedgerStore
) -> None:
    # The first run pays and replies; its history then "leaves Temporal": the next run of the id
    # (allowed here by the default reuse policy) stands for a start after `workflow delete`.
    projected = await start_workers(dev_env)
    first_inp = ticket_input(refund_cents=1999)
    tid = first_inp.ticket.ticket_id
    first = await (await start_ticket(dev_env.client, first_inp)).result()
    assert first.status == TicketStatus.RESOLVED and first.refund is not None

    for inp, same in ((first_inp, True), (first_inp.model_copy(deep=True), False)):
        if not same:
            inp.ticket.body = "Other content under the same ticket id."
        handle = await start_ticket(dev_env.client, flagged(inp))
        out = await handle.result()
        assert out.duplicate_of is not None
        assert out.duplicate_of.status == TicketStatus.RESOLVED
        assert out.duplicate_of.reply_id == first.reply.reply_id  # type: ignore[union-attr]
        assert out.duplicate_of.same_content is same
        # Nothing done again: no agent call, no refund, no reply, no projection.
        assert await activity_types(handle) == [names.CHECK_INTAKE]
        assert out.status == TicketStatus.RESOLVED
        assert (out.classification, out.refund, out.reply, out.agent_calls) == (
            None,
            None,
            None,
            [],
        )
        state = await handle.query(names.STATUS_QUERY, result_type=TicketState)
        assert state.duplicate_of == out.duplicate_of and state.outcome == out
        desc = await handle.describe()
        assert desc.typed_search_attributes.get(TICKET_STATUS) == "RESOLVED"

    assert count(ledger_store, "SELECT count(*) FROM refund_attempts WHERE ticket_id=?", tid) == 1
    assert count(ledger_store, "SELECT count(*) FROM reply_attempts WHERE ticket_id=?", tid) == 1
    assert [o.ticket_id for o in projected.outcomes] == [tid]
    assert first.reply and first.reply.kind == ReplyKind.RESOLUTION
