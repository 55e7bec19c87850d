"""The api's only door to Temporal: start, query, list and decide tickets, by contract names only.

The client is lazy: creating it does no I/O, each call connects if it is not connected yet, and a
dropped connection is re-established by the next call. So the api starts (and answers /healthz)
with Temporal down, and recovers by itself when Temporal comes back. Every call runs under a
deadline and inside `TemporalErrors.translated()` (`_temporal_errors.py`), so the service layer and
its transports (HTTP, gRPC) never see a Temporal exception. Deciding a ticket, the one call with
two round trips, lives in `_decide.py`.

Failing fast while Temporal is down (docs/architecture.md, "When Temporal is down"): the SDK's own
retries of a call Temporal cannot take are bounded (`rpc_retries`, within the call's deadline;
its default of 10 retries over 10 s made every call take 6-10 s to fail), and every operation goes
through a circuit breaker (`_circuit.py`, `_guarded`): after `circuit_failures` consecutive
failures it answers 503 `temporal_unavailable` at once, with `Retry-After`, without calling
Temporal; after `circuit_cooldown_s` the next caller probes with a health check, which closes the
circuit when Temporal answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RetryConfig, RPCError
from ticketflow.contracts import (
    DATA_CONVERTER,
    DecideInput,
    DecideResult,
    Policy,
    Ticket,
    TicketInput,
    TicketState,
    TicketStatus,
    names,
)
from ticketflow.contracts.decision_signing import sign_decision
from ticketflow.contracts.search_attributes import TICKET_STATUS
from ticketflow.runtime.telemetry import temporal_runtime
from ticketflow.runtime.tracing import tracing_interceptors

from ._circuit import Admission, CircuitBreaker, CircuitOpen
from ._decide import decision_update_id, send_decision
from ._paging import PageTokens, list_page
from ._temporal_errors import UNREACHABLE, TemporalErrors, is_no_poller, outage_behind, reason
from .errors import (
    ApiError,
    DecisionsNotConfigured,
    NoLiveAnswer,
    TemporalUnavailable,
    TicketContentConflict,
    TicketNotFound,
    Unavailable,
)
from .schemas import TicketSummary
from .settings import Settings

__all__ = ["SubmitResult", "TicketGateway", "TicketPage", "decision_update_id"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TicketPage:
    tickets: list[TicketSummary]
    next_page_token: str | None
    total: int


@dataclass(frozen=True, slots=True)
class SubmitResult:
    ticket_id: str
    workflow_id: str
    created: bool
    status: TicketStatus | None


def _status_of(value: object) -> TicketStatus | None:
    """The TicketStatus search attribute's value, or None when it is absent or unknown."""
    try:
        return TicketStatus(value) if isinstance(value, str) else None
    except ValueError:
        return None


class TicketGateway:
    """Ticket operations on Temporal. One per process; safe to share between requests."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: Client | None = None,
        circuit: CircuitBreaker | None = None,
    ) -> None:
        self.address = settings.temporal_address
        self.namespace = settings.namespace
        self.errors = TemporalErrors(self.address, self.namespace)
        self.rpc_timeout = settings.rpc_timeout_s
        self.decide_timeout = settings.decide_timeout_s
        self._rpc_retries = settings.rpc_retries
        self.circuit = circuit or CircuitBreaker(
            f"Temporal at {self.address}",
            failure_threshold=settings.circuit_failures,
            cooldown_s=settings.circuit_cooldown_s,
            logger=log,
        )
        self._queue = settings.core_queue
        self._policy = settings.policy
        # The first decision key signs (the core worker accepts only signed decisions).
        keys = settings.keys_for_decisions
        self._signer = keys[0] if keys else None
        self._page_tokens = PageTokens(keys)
        self._query_timeout = settings.query_timeout_s
        self._health_timeout = settings.health_timeout_s
        self._client = client
        self._lock = asyncio.Lock()

    # -- connection -------------------------------------------------------------------------------

    async def connect(self) -> Client:
        """The client, created on first use. No I/O: a Temporal that is down does not fail this."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await Client.connect(
                        self.address,
                        namespace=self.namespace,
                        data_converter=DATA_CONVERTER,
                        lazy=True,
                        connect_timeout=timedelta(seconds=self._health_timeout),
                        runtime=temporal_runtime(),  # its metrics exporter, its log forwarding
                        # StartWorkflow and the decide Update join the request's trace.
                        interceptors=tracing_interceptors(),
                        # Retry what Temporal could not take (UNAVAILABLE, ...) a little, within
                        # the call's deadline: a blip passes, an outage fails in a fraction of a
                        # second instead of the SDK default's 10 retries over up to 10 s.
                        retry_config=RetryConfig(
                            initial_interval_millis=100,
                            multiplier=2.0,
                            max_interval_millis=1000,
                            max_elapsed_time_millis=int(self.rpc_timeout * 1000),
                            max_retries=self._rpc_retries,
                        ),
                    )
        return self._client

    @asynccontextmanager
    async def _guarded(self) -> AsyncIterator[bool]:
        """Every operation runs inside: refused at once (503 with `Retry-After`, no Temporal call)
        while the circuit is open; its outcome recorded. A `TemporalUnavailable` (unreachable,
        timed out), also behind another error, is a failure; any other answer, an error
        included (not found, conflict, no worker), shows that Temporal answers. Cancellation and
        bugs say nothing. Yields whether this caller was the probe (and so just found Temporal up).
        """
        probed = await self._admit()
        try:
            yield probed
        except ApiError as exc:
            outage = outage_behind(exc)
            if outage is None:
                self.circuit.succeeded()
            else:
                self.circuit.failed(outage.reason or outage.message)
                exc.retry_after(self.circuit.retry_after_s())
            raise
        else:
            self.circuit.succeeded()

    async def _admit(self) -> bool:
        try:
            admission = self.circuit.admit()
        except CircuitOpen as exc:
            raise TemporalUnavailable(
                self.address,
                f"not called: the last {exc.failures} calls failed (last: {exc.last_failure}); "
                f"the next one tries again in {exc.retry_after_s}s",
            ).retry_after(exc.retry_after_s) from None
        if admission is Admission.CALL:
            return False
        # The probe of a half-open circuit: one cheap health RPC, whatever the operation, so a
        # probe costs at most `health_timeout_s` and never sends anything that changes a ticket.
        try:
            await self.check_health()
        except TemporalUnavailable as exc:
            self.circuit.probe_failed(exc.reason)
            raise exc.retry_after(self.circuit.retry_after_s()) from None
        except BaseException:
            self.circuit.probe_abandoned()
            raise
        self.circuit.probe_succeeded()
        return True

    async def check_ready(self) -> None:
        """Readiness: a cheap health RPC under a short deadline, through the circuit (while it is
        open, 503 at once). Raises `TemporalUnavailable` on any failure."""
        async with self._guarded() as probed:
            if not probed:
                await self.check_health()

    async def check_health(self) -> None:
        """One health RPC under `health_timeout_s`, bypassing the circuit (the probe, and the
        "slow or down?" question inside another call); raises `TemporalUnavailable`."""
        client = await self.connect()
        async with self.errors.translated(self._health_timeout):
            try:
                serving = await client.service_client.check_health(
                    timeout=timedelta(seconds=self._health_timeout)
                )
            except RPCError as exc:
                # Whatever the status, a health check that fails means "not ready".
                raise TemporalUnavailable(self.address, reason(exc)) from exc
        if not serving:
            raise TemporalUnavailable(self.address, "the workflow service is not serving")

    # -- operations -------------------------------------------------------------------------------

    async def submit(
        self, ticket: Ticket, policy: Policy | None = None, *, intake_check: bool = False
    ) -> SubmitResult:
        """Start the ticket's workflow once. Race-safe idempotency by workflow id + content memo.

        ``intake_check``: nobody could tell whether this ticket_id already finished (the read
        model was unreachable); the workflow checks the core worker's ledger first.

        A second submit of the same ticket_id is refused by Temporal (REJECT_DUPLICATE covers closed
        runs, FAIL covers the running one); the content fingerprint set in the memo at start then
        says whether it is the same ticket (answer it) or another one (conflict). Temporal knows
        only retained workflows: the service layer asks the read model about forgotten ones first.
        """
        async with self._guarded():
            return await self._submit(ticket, policy, intake_check)

    async def _submit(
        self, ticket: Ticket, policy: Policy | None, intake_check: bool
    ) -> SubmitResult:
        client = await self.connect()
        wf_id = names.workflow_id(ticket.ticket_id)
        async with self.errors.translated(self.rpc_timeout):
            try:
                await client.start_workflow(
                    names.TICKET_WORKFLOW,
                    TicketInput(
                        ticket=ticket, policy=policy or self._policy, intake_check=intake_check
                    ),
                    id=wf_id,
                    task_queue=self._queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    memo={names.MEMO_CONTENT_SHA256: ticket.content_sha256()},
                    search_attributes=TypedSearchAttributes(
                        [SearchAttributePair(TICKET_STATUS, TicketStatus.RECEIVED.value)]
                    ),
                    rpc_timeout=timedelta(seconds=self.rpc_timeout),
                )
                return SubmitResult(ticket.ticket_id, wf_id, True, TicketStatus.RECEIVED)
            except WorkflowAlreadyStartedError:
                pass
            existing = await self._existing(client, ticket)
        if existing is None:
            # Started and then removed by retention between our two calls: vanishingly rare; a
            # retry of the request finds it in the read model.
            raise Unavailable("the ticket changed while it was submitted; retry")
        return existing

    async def find(self, ticket: Ticket) -> SubmitResult | None:
        """The workflow Temporal retains for this ticket_id (None when it has none), as `submit`
        would answer a second submit: the same content answers it, other content is a conflict.
        """
        async with self._guarded():
            client = await self.connect()
            async with self.errors.translated(self.rpc_timeout):
                existing = await self._existing(client, ticket)
        return existing

    async def _existing(self, client: Client, ticket: Ticket) -> SubmitResult | None:
        wf_id = names.workflow_id(ticket.ticket_id)
        try:
            desc = await client.get_workflow_handle(wf_id).describe(
                rpc_timeout=timedelta(seconds=self.rpc_timeout)
            )
        except RPCError as exc:
            if self.errors.is_not_found(exc):
                return None
            raise
        existing = await desc.memo_value(names.MEMO_CONTENT_SHA256, None, type_hint=str)
        if existing != ticket.content_sha256():
            raise TicketContentConflict.other_content(ticket.ticket_id)
        return SubmitResult(
            ticket.ticket_id,
            wf_id,
            False,
            _status_of(desc.typed_search_attributes.get(TICKET_STATUS)),
        )

    async def state(self, ticket_id: str) -> TicketState:
        """The live state from the workflow's `status` query.

        Raises `TicketNotFound` when Temporal has no such workflow, `NoLiveAnswer` when the server
        is up but no worker answered in time, `TemporalUnavailable` when the server is not.
        """
        async with self._guarded():
            return await self._state(ticket_id)

    async def _state(self, ticket_id: str) -> TicketState:
        client = await self.connect()
        handle = client.get_workflow_handle(names.workflow_id(ticket_id))
        async with self.errors.translated():
            try:
                async with asyncio.timeout(self._query_timeout):
                    state: TicketState = await handle.query(
                        names.STATUS_QUERY,
                        result_type=TicketState,
                        rpc_timeout=timedelta(seconds=self._query_timeout),
                    )
            except RPCError as exc:
                if self.errors.is_not_found(exc):
                    raise TicketNotFound(ticket_id) from exc
                if exc.status not in UNREACHABLE and not is_no_poller(exc):
                    raise
                await self._no_live_answer(exc)
            except (TimeoutError, RPCTimeoutOrCancelledError) as exc:
                await self._no_live_answer(exc)
            except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
                raise NoLiveAnswer(
                    f"the ticket's workflow could not answer the status query: {exc}"
                ) from exc
        return state

    async def _no_live_answer(self, exc: BaseException) -> NoReturn:
        # Tell "the server is down" apart from "no worker answered": one cheap health RPC.
        await self.check_health()
        raise NoLiveAnswer(
            f"no worker answered the status query within {self._query_timeout:g}s; try later "
            "(is the core worker running?)"
        ) from exc

    async def list_tickets(
        self, status: TicketStatus | None, limit: int, page_token: str | None = None
    ) -> TicketPage:
        """One page of tickets from visibility, its next page token and the total (`_paging.py`:
        the approval queue oldest first, other lists newest first). `status` is a TicketStatus
        value, so safe to interpolate.

        A non-terminal status lists running workflows only: a workflow terminated, cancelled,
        failed or timed out while WAITING_APPROVAL keeps that status in visibility, but nothing
        will ever happen to it again. A terminal status lists every workflow that reached it,
        still running (finishing its last side effects and projection) or closed however it
        closed; `workflow_status` says which.
        """
        query = f'WorkflowType="{names.TICKET_WORKFLOW}"'
        if status is not None:
            status = TicketStatus(status)
            query += f' AND {names.TICKET_STATUS_SA}="{status.value}"'
            if not status.terminal:
                query += ' AND ExecutionStatus="Running"'
        async with self._guarded():
            client = await self.connect()
            async with self.errors.translated(self.rpc_timeout):
                page = await list_page(
                    client,
                    self._page_tokens,
                    query,
                    status,
                    limit,
                    page_token,
                    timedelta(seconds=self.rpc_timeout),
                )
        tickets = [
            TicketSummary(
                ticket_id=ticket_id,
                workflow_id=wf.id,
                status=_status_of(wf.typed_search_attributes.get(TICKET_STATUS)),
                workflow_status=wf.status.name if wf.status else None,
                started_at=wf.start_time,
                closed_at=wf.close_time,
            )
            for wf in page.executions
            if (ticket_id := names.ticket_id_from_workflow_id(wf.id)) is not None
        ]
        return TicketPage(tickets, page.next_page_token, page.total)

    async def decide(self, ticket_id: str, decision: DecideInput) -> DecideResult:
        """Send the `decide` update once (see `_decide.send_decision`), signed: the api has
        checked the approver's token, and the core worker's validator accepts only a decision
        signed with one of its keys (`contracts.decision_signing`). Without a key nothing is
        sent: 503 naming the setting, so a misconfigured deployment fails closed and says why."""
        if self._signer is None:
            raise DecisionsNotConfigured()
        decision = sign_decision(ticket_id, decision, self._signer)
        async with self._guarded():
            client = await self.connect()
            handle = client.get_workflow_handle(names.workflow_id(ticket_id))
            return await send_decision(self, handle, ticket_id, decision)
