"""core-worker's side-effect activities: issue a refund (the refund ledger) and send a reply (the
reply outbox), each effectively once per ticket; and the intake check, which asks the outbox whether
a ticket_id already reached its end (docs/architecture.md, "Intake: accepted without the read
model").

Synchronous activities (the store's driver is blocking I/O), run on the worker's thread pool. A
transient store error (PostgreSQL restarted, connection lost, SQLite busy past its timeout) fails
the attempt retryably: Temporal retries it, and the writes being idempotent, nothing is lost or
paid twice. Their names come
from ``ticketflow.contracts.names``: histories refer to them, so they never change.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.exceptions import ApplicationError
from ticketflow.contracts import names
from ticketflow.contracts.models import (
    EarlierRun,
    IntakeCheck,
    IntakeCheckInput,
    IssueRefundInput,
    RefundReceipt,
    ReplyKind,
    ReplyReceipt,
    SendReplyInput,
    TicketStatus,
)
from ticketflow.runtime import metrics
from ticketflow.storage import describe, is_transient

from ._store import AttemptInfo
from .ledger import LedgerConflict, RefundLedger
from .outbox import ReplyOutbox

__all__ = ["END_OF_REPLY", "Faults", "SideEffectActivities"]

# Every end sends exactly one reply, of the kind that says which end it was.
END_OF_REPLY = {
    ReplyKind.RESOLUTION: TicketStatus.RESOLVED,
    ReplyKind.REJECTION: TicketStatus.REJECTED,
    ReplyKind.ESCALATION: TicketStatus.ESCALATED,
}


@dataclass(frozen=True)
class Faults:
    """Test-only fault injection, off by default (see Settings.fault_crash_after_refund_commit)."""

    crash_after_refund_commit: bool = False


@contextmanager
def _store_errors() -> Iterator[None]:
    """A transient store error becomes a retryable ``LedgerUnavailable`` failure; any other
    store error propagates (Temporal retries it too: the fix is a deploy, not a new ticket)."""
    try:
        yield
    except SQLAlchemyError as err:
        if not is_transient(err):
            raise
        raise ApplicationError(
            f"ledger store unavailable, Temporal retries: {describe(err)}",
            type="LedgerUnavailable",
            non_retryable=False,
        ) from err


@contextmanager
def _effect_and_count() -> Iterator[None]:
    """A store write and the metric that counts it, as one step for cancellation.

    Refunds and replies run as local activities; a worker that evicts a workflow with one in
    flight cancels it, and for a synchronous activity the cancellation is an exception raised in
    its thread at whatever line it is on. Between the commit and the count it would leave the
    effect made but uncounted, and the rerun finds it made and counts nothing. Inside this block
    the cancellation waits, and is raised at its end."""
    with activity.shield_thread_cancel_exception():
        yield


def _who() -> AttemptInfo:
    info = activity.info()
    return AttemptInfo(
        workflow_id=info.workflow_id,
        run_id=info.workflow_run_id,
        activity_id=info.activity_id,
        attempt=info.attempt,
    )


class SideEffectActivities:
    """``issue_refund``, ``send_reply`` and ``check_intake``. Their error types are part of the
    workflow's contract: ``LedgerConflict`` and ``InvalidSideEffectInput`` are non-retryable (the
    ticket escalates)."""

    def __init__(
        self, ledger: RefundLedger, outbox: ReplyOutbox, faults: Faults = Faults()
    ) -> None:
        self._ledger = ledger
        self._outbox = outbox
        self._faults = faults

    @activity.defn(name=names.ISSUE_REFUND)
    def issue_refund(self, inp: IssueRefundInput) -> RefundReceipt:
        # The write and its count go together: a cancellation (a local activity in flight when
        # its workflow is evicted) is raised only after both (see _effect_and_count).
        with _effect_and_count():
            try:
                with _store_errors():
                    row = self._ledger.apply_refund(
                        ticket_id=inp.ticket_id,
                        customer_id=inp.customer_id,
                        order_id=inp.order_id,
                        amount_cents=inp.amount_cents,
                        who=_who(),
                    )
            except LedgerConflict as err:
                raise ApplicationError(str(err), type="LedgerConflict", non_retryable=True) from err
            except ValueError as err:
                raise ApplicationError(
                    str(err), type="InvalidSideEffectInput", non_retryable=True
                ) from err
            if not row.already_applied:
                meter = activity.metric_meter()
                metrics.count(meter, metrics.REFUNDS_PAID)
                metrics.count(meter, metrics.REFUNDS_PAID_CENTS, row.amount_cents)
        activity.logger.info(
            "refund %s for ticket %s: %d cents%s",
            row.refund_id,
            row.ticket_id,
            row.amount_cents,
            " (already applied)" if row.already_applied else "",
        )
        if self._faults.crash_after_refund_commit and not row.already_applied:
            # The effect is committed; die before Temporal hears about it.
            os._exit(137)
        return RefundReceipt(
            ticket_id=row.ticket_id,
            refund_id=row.refund_id,
            amount_cents=row.amount_cents,
            created_at=row.created_at,
            already_applied=row.already_applied,
        )

    @activity.defn(name=names.SEND_REPLY)
    def send_reply(self, inp: SendReplyInput) -> ReplyReceipt:
        with _effect_and_count(), _store_errors():
            row = self._outbox.send_reply(
                ticket_id=inp.ticket_id,
                customer_id=inp.customer_id,
                kind=inp.kind.value,
                body=inp.body,
                content_sha256=inp.content_sha256,
                who=_who(),
            )
            if not row.already_sent:
                metrics.count(activity.metric_meter(), metrics.REPLIES_SENT, kind=row.kind)
        return ReplyReceipt(
            ticket_id=row.ticket_id,
            reply_id=row.reply_id,
            kind=ReplyKind(row.kind),
            created_at=row.created_at,
            already_sent=row.already_sent,
        )

    @activity.defn(name=names.CHECK_INTAKE)
    def check_intake(self, inp: IntakeCheckInput) -> IntakeCheck:
        """Whether an earlier run of this ticket_id reached its end: it has a reply row. The
        outbox is this worker's own store, so the answer needs no other service; an unreachable
        store raises, and Temporal retries until it answers."""
        with _store_errors():
            row = self._outbox.earlier_reply(inp.ticket_id)
        if row is None:
            return IntakeCheck()
        same = None if row.content_sha256 is None else row.content_sha256 == inp.content_sha256
        activity.logger.warning(
            "ticket %s already reached its end (reply %s, %s; same content: %s): this run ends "
            "as a duplicate",
            inp.ticket_id,
            row.reply_id,
            row.kind,
            "unknown" if same is None else same,
        )
        return IntakeCheck(
            earlier_run=EarlierRun(
                ticket_id=inp.ticket_id,
                status=END_OF_REPLY[ReplyKind(row.kind)],
                reply_id=row.reply_id,
                replied_at=row.created_at,
                same_content=same,
            )
        )
