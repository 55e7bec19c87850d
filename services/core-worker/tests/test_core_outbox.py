"""The reply outbox: one reply per ticket, ever, and every attempt logged."""

from __future__ import annotations

from ticketflow.core_worker.outbox import AttemptInfo, ReplyOutbox

from ._tickets import BOTH_BACKENDS, rows

pytestmark = BOTH_BACKENDS


def test_reply_outbox_once_per_ticket(outbox: ReplyOutbox) -> None:
    a = outbox.send_reply(ticket_id="t1", customer_id="c", kind="resolution", body="hi")
    b = outbox.send_reply(ticket_id="t1", customer_id="c", kind="resolution", body="hi")
    assert not a.already_sent and b.already_sent and a.reply_id == b.reply_id
    assert b.created_at == a.created_at
    # Another kind of reply for the same ticket is not sent: the first one stands, and says so.
    c = outbox.send_reply(ticket_id="t1", customer_id="c", kind="rejection", body="no")
    assert c.already_sent and c.kind == "resolution" and c.reply_id == a.reply_id
    assert rows(outbox.store, "SELECT ticket_id, kind, body FROM replies") == [
        ("t1", "resolution", "hi")
    ]
    assert [r for (r,) in rows(outbox.store, "SELECT result FROM reply_attempts ORDER BY id")] == [
        "sent",
        "already_sent",
        "conflict",
    ]


def test_every_attempt_records_who_asked(outbox: ReplyOutbox) -> None:
    who = AttemptInfo(workflow_id="ticket-t1", run_id="r1", activity_id="5", attempt=3)
    outbox.send_reply(ticket_id="t1", customer_id="c", kind="resolution", body="hi", who=who)
    assert rows(outbox.store, "SELECT workflow_id FROM replies") == [("ticket-t1",)]
    assert rows(
        outbox.store, "SELECT workflow_id, run_id, activity_id, attempt, kind FROM reply_attempts"
    ) == [("ticket-t1", "r1", "5", 3, "resolution")]
