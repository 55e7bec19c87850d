"""TicketWorkflow: one per ticket, id ``ticket-<ticket_id>`` (docs/architecture.md, "The ticket
workflow").

RECEIVED -> CLASSIFYING -> DRAFTING -> (auto-approve | WAITING_APPROVAL) -> EXECUTING -> RESOLVED,
or REJECTED / ESCALATED. The ``TicketStatus`` search attribute says where the ticket waits: since
v6 it is upserted once per workflow task, with the latest status (``_publish_status``).

Deterministic code only: no I/O, no settings, no wall clock. Policy arrives in the input and is
fixed for the ticket's life, so replays do not depend on the worker's environment. Agent calls and
their primary -> fallback routing live in ``_routing``, side effects in ``_effects``; patch ids in
``patches``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from ticketflow.contracts import names
    from ticketflow.contracts.models import (
        Classification,
        ClassifyInput,
        DecideInput,
        DecideResult,
        Decision,
        Draft,
        DraftReplyInput,
        EarlierRun,
        IssueRefundInput,
        ModelTier,
        Policy,
        RefundReceipt,
        ReplyKind,
        ReplyReceipt,
        SendReplyInput,
        StatusChange,
        TicketFacts,
        TicketInput,
        TicketOutcome,
        TicketState,
        TicketStatus,
    )
    from ticketflow.contracts.search_attributes import TICKET_STATUS

from ._decision import auto_approvable, needs_refund, recheck_on_primary, refuse_decision
from ._effects import record_outcome, side_effect
from ._intake import earlier_run
from ._metrics import approval_waited, ticket_finished
from ._routing import call_agent, describe_failure, is_cancel
from .patches import (
    PATCH_CLASSIFICATION_MEMO,
    PATCH_INTAKE_CHECK,
    PATCH_LEAN_TICKET,
    PATCH_ROBUST_ENDS,
)

__all__ = [
    "AUTO_APPROVER",
    "ESCALATION_REPLY",
    "PATCH_CLASSIFICATION_MEMO",
    "PATCH_INTAKE_CHECK",
    "PATCH_LEAN_TICKET",
    "PATCH_ROBUST_ENDS",
    "REJECTION_REPLY",
    "TicketWorkflow",
    "auto_approvable",
    "needs_refund",
]

T = TypeVar("T")

AUTO_APPROVER = "auto"
REJECTION_REPLY = (
    "Thank you for contacting us. We have reviewed your request and are unable to approve it as "
    "submitted. A member of our support team will follow up with you personally."
)
ESCALATION_REPLY = (
    "Thank you for contacting us. Your request needs a closer look, so we have passed it to a "
    "member of our support team, who will get back to you."
)


@workflow.defn(name=names.TICKET_WORKFLOW)
class TicketWorkflow:
    @workflow.init
    def __init__(self, inp: TicketInput) -> None:
        self._policy: Policy = inp.policy
        # What the query and the outcome both report, kept in the contracts' own model.
        self._facts = TicketFacts(
            ticket_id=inp.ticket.ticket_id, status=TicketStatus.RECEIVED, ticket=inp.ticket
        )
        self._history: list[StatusChange] = []
        # v6 (PATCH_LEAN_TICKET): decided at the start of run; False replays v1-v5 as they ran.
        self._lean = False
        self._unpublished: TicketStatus | None = None  # v6: set since the last upsert
        self._accepting_decisions = False
        self._side_effects_done = False
        self._approval_deadline: datetime | None = None
        self._final: TicketOutcome | None = None
        self._duplicate_of: EarlierRun | None = None

    # ---- run -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketOutcome:
        self._lean = workflow.patched(PATCH_LEAN_TICKET)
        # Before anything else, the check the api could not make (docs/architecture.md, "Intake:
        # accepted without the read model"). Outside the cancel handling below: a cancel here
        # ends the run with nothing done, as it should for a ticket that may be a duplicate.
        if inp.intake_check and workflow.patched(PATCH_INTAKE_CHECK):
            earlier = await earlier_run(inp.ticket, self._policy)
            if earlier is not None:
                return self._end_as_duplicate(earlier)
        try:
            await self._triage()
        except (asyncio.CancelledError, ActivityError) as err:
            if not is_cancel(err) or not workflow.patched(PATCH_ROBUST_ENDS):
                raise
            self._on_cancel()
        # From here on the ticket's end is decided; its side effects run to completion. A cancel
        # request now cannot stop money a human approved half-way: the effects are idempotent,
        # so the interrupted one is simply issued again.
        while True:
            try:
                return await self._conclude()
            except (asyncio.CancelledError, ActivityError) as err:
                if not is_cancel(err) or not workflow.patched(PATCH_ROBUST_ENDS):
                    raise
                workflow.logger.warning(
                    "cancel requested while ticket %s concludes (%s): finishing its side effects",
                    self._facts.ticket_id,
                    self._facts.status.value,
                )

    async def _triage(self) -> None:
        """Classify, draft, decide. Ends with the decision door closed and the end status set:
        EXECUTING (approved), REJECTED or ESCALATED."""
        facts = self._facts
        self._set_status(TicketStatus.RECEIVED)

        self._set_status(TicketStatus.CLASSIFYING)
        self._publish_status()
        classification = await call_agent(
            names.CLASSIFY,
            ClassifyInput(ticket=facts.ticket),
            Classification,
            first_tier=ModelTier.PRIMARY,
            policy=self._policy,
            calls=facts.agent_calls,
        )
        if classification is None:
            return self._mark_escalated("agent could not classify the ticket within its budget")
        facts.classification = classification
        self._publish_classification(classification)

        self._set_status(TicketStatus.DRAFTING)
        # Sticky routing: if classify needed the fallback, the primary is congested; don't make
        # the draft wait out another primary schedule-to-start timeout.
        self._publish_status()
        draft = await call_agent(
            names.DRAFT_REPLY,
            DraftReplyInput(ticket=facts.ticket, classification=classification),
            Draft,
            first_tier=classification.tier,
            policy=self._policy,
            calls=facts.agent_calls,
        )
        if draft is None:
            return self._mark_escalated("agent could not draft a reply within its budget")
        facts.draft = draft
        # A fallback answer never auto-approves; one that looks auto-approvable is asked of the
        # primary again first, so a congested primary does not flood the approval queue.
        self._publish_status()
        rechecked = await recheck_on_primary(
            facts.ticket, classification, draft, self._policy, facts.agent_calls
        )
        if rechecked is not None:
            if rechecked[0] is not classification:
                self._publish_classification(rechecked[0])
            classification, draft = rechecked
            facts.classification, facts.draft = classification, draft

        if auto_approvable(classification, draft, self._policy):
            facts.decision = Decision(
                approved=True, approver=AUTO_APPROVER, auto=True, decided_at=workflow.now()
            )
        else:
            timeout = timedelta(seconds=self._policy.approval_timeout_s)
            self._approval_deadline = workflow.now() + timeout
            self._accepting_decisions = True
            self._set_status(TicketStatus.WAITING_APPROVAL)
            self._publish_status()
            waiting_since = workflow.now()
            try:
                await workflow.wait_condition(lambda: facts.decision is not None, timeout=timeout)
            except TimeoutError:  # builtin: wait_condition's timeout
                pass
            approval_waited(facts, waiting_since)
            # The door closes here, before any final activity: no late decision can slip in.
            self._accepting_decisions = False
            if facts.decision is None:
                return self._mark_escalated("no decision before the approval timeout")

        if facts.decision.approved:
            self._set_status(TicketStatus.EXECUTING)
        else:
            self._set_status(TicketStatus.REJECTED)

    def _on_cancel(self) -> None:
        """A cancel request before the ticket's end was decided: hand it to a human (ESCALATED),
        never leave it hanging. After a decision, the decided end is carried out."""
        self._accepting_decisions = False
        status, decision = self._facts.status, self._facts.decision
        if status.terminal or status == TicketStatus.EXECUTING:
            return
        if decision is not None:  # decided in the same task as the cancel arrived
            self._set_status(TicketStatus.EXECUTING if decision.approved else TicketStatus.REJECTED)
            return
        self._mark_escalated(f"cancelled by an operator while {status.value}")

    async def _conclude(self) -> TicketOutcome:
        """Carry out the decided end. Safe to run again after an interruption: every step is
        skipped once its receipt is in the state, and the ledger is idempotent by ticket_id."""
        facts = self._facts
        if (
            facts.status == TicketStatus.EXECUTING
            and needs_refund(facts.classification)
            and facts.refund is None
        ):
            assert facts.classification is not None
            try:
                facts.refund = await self._side_effect(
                    names.ISSUE_REFUND,
                    IssueRefundInput(
                        ticket_id=facts.ticket_id,
                        customer_id=facts.ticket.customer_id,
                        order_id=facts.ticket.order_id,
                        amount_cents=facts.classification.refund_cents or 0,
                    ),
                    RefundReceipt,
                )
            except ActivityError as err:
                if is_cancel(err) and workflow.patched(PATCH_ROBUST_ENDS):
                    raise
                # A non-retryable ledger error (side effects retry forever otherwise).
                self._mark_escalated(f"refund failed: {describe_failure(err)}")
        if facts.status == TicketStatus.EXECUTING:
            if facts.reply is None:
                assert facts.draft is not None
                facts.reply = await self._send_reply(ReplyKind.RESOLUTION, facts.draft.text)
            self._set_status(TicketStatus.RESOLVED)
        # Steps, not branches: a refund that failed above escalates, and gets its holding reply.
        if facts.reply is None and facts.status == TicketStatus.REJECTED:
            facts.reply = await self._send_reply(ReplyKind.REJECTION, REJECTION_REPLY)
        if facts.reply is None and facts.status == TicketStatus.ESCALATED:
            facts.reply = await self._send_reply(ReplyKind.ESCALATION, ESCALATION_REPLY)
        return await self._finish()

    # ---- messages --------------------------------------------------------------------------

    @workflow.query(name=names.STATUS_QUERY)
    def status(self) -> TicketState:
        return TicketState(
            **dict(self._facts),
            accepting_decisions=self._accepting_decisions,
            side_effects_done=self._side_effects_done,
            approval_deadline=self._approval_deadline,
            history=list(self._history),
            # The outcome is the state's only once every final side effect is done.
            outcome=self._final if self._side_effects_done else None,
            duplicate_of=self._duplicate_of,
        )

    @workflow.update(name=names.DECIDE_UPDATE)
    async def decide(self, inp: DecideInput) -> DecideResult:
        decision = Decision(
            approved=inp.approved,
            approver=inp.approver,
            reason=inp.reason,
            decided_at=workflow.now(),
        )
        self._facts.decision = decision
        self._accepting_decisions = False
        # Answer with the status the decision leads to (EXECUTING/REJECTED), not the stale one.
        await workflow.wait_condition(lambda: self._facts.status != TicketStatus.WAITING_APPROVAL)
        return DecideResult(
            ticket_id=self._facts.ticket_id, status=self._facts.status, decision=decision
        )

    @decide.validator
    def _validate_decide(self, inp: DecideInput) -> None:
        # Rejections here are written nowhere in history.
        refuse_decision(
            self._facts,
            inp,
            accepting=self._accepting_decisions,
            deadline=self._approval_deadline,
        )

    # ---- helpers ---------------------------------------------------------------------------

    def _publish_classification(self, classification: Classification) -> None:
        # Visibility (list/describe) shows category, confidence and proposed refund of every
        # ticket, e.g. the approval queue, without a query that needs a worker to replay it.
        if workflow.patched(PATCH_CLASSIFICATION_MEMO):
            workflow.upsert_memo({names.MEMO_CLASSIFICATION: classification})

    def _set_status(self, status: TicketStatus) -> None:
        self._facts.status = status
        self._history.append(StatusChange(status=status, at=workflow.now()))
        if self._lean:
            self._unpublished = status  # upserted when the workflow next waits
        else:
            workflow.upsert_search_attributes([TICKET_STATUS.value_set(status.value)])

    def _publish_status(self) -> None:
        """v6: upsert TicketStatus once, with the latest status, right before the workflow waits
        (an agent call, the approval, the projection) or ends. What visibility lists is then the
        status the ticket is waiting in; the ones it passed through within the same workflow task
        (RECEIVED, which the api sets at start, and EXECUTING before the local side effects) are
        in the query's history only. Before v6 every status was upserted as it was set."""
        if self._unpublished is not None:
            workflow.upsert_search_attributes([TICKET_STATUS.value_set(self._unpublished.value)])
            self._unpublished = None

    async def _side_effect(self, activity: str, arg: Any, result_type: type[T]) -> T:
        return await side_effect(activity, arg, result_type, policy=self._policy, local=self._lean)

    async def _send_reply(self, kind: ReplyKind, body: str) -> ReplyReceipt | None:
        try:
            return await self._side_effect(
                names.SEND_REPLY,
                SendReplyInput(
                    ticket_id=self._facts.ticket_id,
                    customer_id=self._facts.ticket.customer_id,
                    kind=kind,
                    body=body,
                    # Kept with the reply: a later run of this ticket_id compares content.
                    content_sha256=self._facts.ticket.content_sha256(),
                ),
                ReplyReceipt,
            )
        except ActivityError as err:
            if is_cancel(err) or not workflow.patched(PATCH_ROBUST_ENDS):
                raise
            # Only a non-retryable outbox error gets here. A missing reply must not fail the
            # ticket: the outcome (reply None) is still recorded, for a human to follow up.
            workflow.logger.error(
                "reply for ticket %s failed: %s", self._facts.ticket_id, describe_failure(err)
            )
            return None

    def _end_as_duplicate(self, earlier: EarlierRun) -> TicketOutcome:
        """End without classifying, refunding, replying or projecting: the ticket is the earlier
        run's. The status (and search attribute) is the earlier run's end; the outcome says
        `duplicate_of`, and the read model keeps the earlier run's outcome untouched."""
        self._duplicate_of = earlier
        self._set_status(earlier.status)
        self._publish_status()
        self._final = TicketOutcome(
            **dict(self._facts), finished_at=workflow.now(), duplicate_of=earlier
        )
        self._side_effects_done = True
        return self._final

    def _mark_escalated(self, reason: str) -> None:
        # Terminal status first: from here on no decision is accepted, even while the
        # holding reply and the projection are still running.
        self._accepting_decisions = False
        self._facts.escalation_reason = reason
        self._set_status(TicketStatus.ESCALATED)

    async def _finish(self) -> TicketOutcome:
        # Built once: a projection interrupted by a cancel request is retried with the same
        # outcome (and so the same version in the read model).
        if self._final is None:
            self._final = TicketOutcome(**dict(self._facts), finished_at=workflow.now())
        outcome = self._final
        self._publish_status()  # the terminal status, before the wait for the projection
        await record_outcome(outcome, self._policy)
        self._side_effects_done = True
        ticket_finished(self._facts)
        return outcome
