"""The api's only door to Temporal: start, query, list and decide tickets, by contract names only.

The client is lazy: creating it does no I/O, each call connects if it is not connected yet, and a
dropped connection is re-established by the next call. So the api starts (and answers /healthz)
with Temporal down, and recovers by itself when Temporal comes back. Every call runs under a
deadline, and every Temporal failure is translated into an `errors.ApiError` here, so the service
layer and its transports (HTTP, gRPC) never see a Temporal exception.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
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
from ticketflow.contracts.search_attributes import TICKET_STATUS

from .errors import (
    ApiError,
    DecisionRejected,
    NoLiveAnswer,
    TemporalRefused,
    TemporalUnavailable,
    TicketContentConflict,
    TicketNotFound,
    Unavailable,
)
from .schemas import TicketSummary
from .settings import Settings

__all__ = ["SubmitResult", "TicketGateway", "decision_update_id"]

log = logging.getLogger(__name__)

# Statuses meaning "the server (or the way to it) is not answering", not "your request is wrong".
_UNREACHABLE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


@dataclass(frozen=True, slots=True)
class SubmitResult:
    ticket_id: str
    workflow_id: str
    created: bool
    status: TicketStatus | None


def _is_connect_failure(exc: BaseException) -> bool:
    # The lazy client reports a refused or timed-out connection as a RuntimeError from the bridge.
    return isinstance(exc, RuntimeError) and "client connect" in str(exc).lower()


def _status_of(value: object) -> TicketStatus | None:
    try:
        return TicketStatus(value) if value is not None else None
    except ValueError:
        return None


class TicketGateway:
    """Ticket operations on Temporal. One per process; safe to share between requests."""

    def __init__(self, settings: Settings, *, client: Client | None = None) -> None:
        self.address = settings.temporal_address
        self.namespace = settings.namespace
        self._queue = settings.core_queue
        self._policy = settings.policy
        self._query_timeout = settings.query_timeout_s
        self._rpc_timeout = settings.rpc_timeout_s
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
                    )
        return self._client

    async def check_ready(self) -> None:
        """A cheap health RPC under a short deadline; raises `TemporalUnavailable` on any failure."""
        client = await self.connect()
        try:
            async with asyncio.timeout(self._health_timeout):
                serving = await client.service_client.check_health(
                    timeout=timedelta(seconds=self._health_timeout)
                )
        except (TimeoutError, RPCError) as exc:
            raise TemporalUnavailable(self.address, _reason(exc)) from exc
        except RuntimeError as exc:
            if _is_connect_failure(exc):
                raise TemporalUnavailable(self.address, "connection failed") from exc
            raise
        if not serving:
            raise TemporalUnavailable(self.address, "the workflow service is not serving")

    @asynccontextmanager
    async def _rpc(self, deadline_s: float | None = None) -> AsyncIterator[None]:
        """Translate "Temporal is not answering" into `TemporalUnavailable`, under a deadline."""
        try:
            async with asyncio.timeout(deadline_s or self._rpc_timeout):
                yield
        except TimeoutError as exc:
            raise TemporalUnavailable(self.address, "timed out") from exc
        except RPCTimeoutOrCancelledError as exc:
            raise TemporalUnavailable(self.address, "timed out") from exc
        except RPCError as exc:
            raise self._translate(exc) from exc
        except RuntimeError as exc:
            if _is_connect_failure(exc):
                raise TemporalUnavailable(self.address, "connection failed") from exc
            raise

    def _translate(self, exc: RPCError) -> ApiError:
        """An RPC error nobody expected: the server is away, or it refuses (a deployment problem)."""
        if exc.status in _UNREACHABLE:
            return TemporalUnavailable(self.address, _reason(exc))
        self._raise_if_namespace_missing(exc)
        # INVALID_ARGUMENT here is never the caller's fault (inputs are validated before); the
        # usual cause is a search attribute that was not registered on this server.
        log.error("Temporal at %s refused a call: %s", self.address, _reason(exc))
        return TemporalRefused(self.address, _reason(exc))

    def _raise_if_namespace_missing(self, exc: RPCError) -> None:
        # NOT_FOUND also means "no such namespace": that is a deployment error, not a missing ticket.
        if exc.status == RPCStatusCode.NOT_FOUND and "namespace" in exc.message.lower():
            raise Unavailable(
                f"namespace {self.namespace!r} not found on Temporal at {self.address}"
            ) from exc

    def _is_not_found(self, exc: RPCError) -> bool:
        self._raise_if_namespace_missing(exc)
        return exc.status == RPCStatusCode.NOT_FOUND

    # -- operations -------------------------------------------------------------------------------

    async def submit(self, ticket: Ticket, policy: Policy | None = None) -> SubmitResult:
        """Start the ticket's workflow once. Race-safe idempotency by workflow id + content memo.

        A second submit of the same ticket_id is refused by Temporal (REJECT_DUPLICATE covers closed
        runs, FAIL covers the running one); the content fingerprint set in the memo at start then
        says whether it is the same ticket (answer it) or another one (conflict). Temporal knows
        only retained workflows: the service layer asks the read model about forgotten ones first.
        """
        client = await self.connect()
        wf_id = names.workflow_id(ticket.ticket_id)
        async with self._rpc():
            try:
                await client.start_workflow(
                    names.TICKET_WORKFLOW,
                    TicketInput(ticket=ticket, policy=policy or self._policy),
                    id=wf_id,
                    task_queue=self._queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    memo={names.MEMO_CONTENT_SHA256: ticket.content_sha256()},
                    search_attributes=TypedSearchAttributes(
                        [SearchAttributePair(TICKET_STATUS, TicketStatus.RECEIVED.value)]
                    ),
                    rpc_timeout=timedelta(seconds=self._rpc_timeout),
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
        client = await self.connect()
        async with self._rpc():
            return await self._existing(client, ticket)

    async def _existing(self, client: Client, ticket: Ticket) -> SubmitResult | None:
        wf_id = names.workflow_id(ticket.ticket_id)
        try:
            desc = await client.get_workflow_handle(wf_id).describe(
                rpc_timeout=timedelta(seconds=self._rpc_timeout)
            )
        except RPCError as exc:
            if self._is_not_found(exc):
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
        client = await self.connect()
        handle = client.get_workflow_handle(names.workflow_id(ticket_id))
        try:
            async with asyncio.timeout(self._query_timeout):
                return await handle.query(
                    names.STATUS_QUERY,
                    result_type=TicketState,
                    rpc_timeout=timedelta(seconds=self._query_timeout),
                )
        except RPCError as exc:
            if self._is_not_found(exc):
                raise TicketNotFound(ticket_id) from exc
            if exc.status in _UNREACHABLE:
                await self._no_live_answer(exc)
            raise self._translate(exc) from exc
        except (TimeoutError, RPCTimeoutOrCancelledError) as exc:
            await self._no_live_answer(exc)
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
            raise NoLiveAnswer(
                f"the ticket's workflow could not answer the status query: {exc}"
            ) from exc
        except RuntimeError as exc:
            if _is_connect_failure(exc):
                raise TemporalUnavailable(self.address, "connection failed") from exc
            raise

    async def _no_live_answer(self, exc: BaseException) -> NoReturn:
        # Tell "the server is down" apart from "no worker answered": one cheap health RPC.
        await self.check_ready()
        raise NoLiveAnswer(
            f"no worker answered the status query within {self._query_timeout:g}s; try later "
            "(is the core worker running?)"
        ) from exc

    async def list_tickets(self, status: TicketStatus | None, limit: int) -> list[TicketSummary]:
        """Tickets from visibility. `status` is a TicketStatus value, so safe to interpolate.

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
        client = await self.connect()
        tickets: list[TicketSummary] = []
        async with self._rpc():
            async for wf in client.list_workflows(
                query,
                limit=limit,
                page_size=limit,
                rpc_timeout=timedelta(seconds=self._rpc_timeout),
            ):
                ticket_id = names.ticket_id_from_workflow_id(wf.id)
                if ticket_id is None:
                    continue
                tickets.append(
                    TicketSummary(
                        ticket_id=ticket_id,
                        workflow_id=wf.id,
                        status=_status_of(wf.typed_search_attributes.get(TICKET_STATUS)),
                        workflow_status=wf.status.name if wf.status else None,
                        started_at=wf.start_time,
                        closed_at=wf.close_time,
                    )
                )
        return tickets

    async def decide(self, ticket_id: str, decision: DecideInput) -> DecideResult:
        """Send the `decide` update. The workflow's validator is the judge of "too late".

        The update id is derived from the decision (`decision_update_id`), and Temporal
        deduplicates updates by id within a workflow run: a client retrying the same decision
        (after a 503, say) gets the first answer again instead of "already decided"; another
        decision (or another approver) has another id and meets the validator. Once the ticket
        is closed, the same decision still gets its first answer (while Temporal retains the run);
        any other is refused as closed.

        The describe and the update run under separate deadlines, so a slow describe cannot eat
        the update's budget. A describe that misses its deadline sent nothing; an update that
        misses its deadline may still be applied (it waits in the server for a worker).
        """
        client = await self.connect()
        handle = client.get_workflow_handle(names.workflow_id(ticket_id))
        desc = await self._describe_for_decision(handle, ticket_id)
        update_id = decision_update_id(decision)
        closed = desc.status != WorkflowExecutionStatus.RUNNING
        try:
            async with asyncio.timeout(self._rpc_timeout + 1.0):
                if closed:
                    # No new decision, but the same one again gets its answer while Temporal
                    # retains the run: a retry whose first attempt was applied just before the
                    # ticket finished. An unknown update id is NOT_FOUND: closed.
                    return await handle.get_update_handle(
                        update_id, result_type=DecideResult
                    ).result(rpc_timeout=timedelta(seconds=self._rpc_timeout))
                return await handle.execute_update(
                    names.DECIDE_UPDATE,
                    decision,
                    id=update_id,
                    result_type=DecideResult,
                    rpc_timeout=timedelta(seconds=self._rpc_timeout),
                )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            reason = getattr(cause, "message", None) or str(cause)
            raise DecisionRejected(f"decision refused: {reason}") from exc
        except (TimeoutError, RPCTimeoutOrCancelledError) as exc:
            # Without a worker the update waits in the server and may still be applied later.
            raise NoLiveAnswer(
                f"no worker confirmed the decision within {self._rpc_timeout:g}s; it may still "
                f"be applied: check GET /tickets/{ticket_id}, or send the same decision again "
                "(it is applied once)"
            ) from exc
        except RPCError as exc:
            if self._is_not_found(exc):
                # Closed and no such decision was made, or it closed between describe and update.
                raise _closed(ticket_id, desc.status if closed else None) from exc
            raise self._translate(exc) from exc
        except RuntimeError as exc:
            if _is_connect_failure(exc):
                raise TemporalUnavailable(self.address, "connection failed") from exc
            raise

    async def _describe_for_decision(
        self, handle: WorkflowHandle[Any, Any], ticket_id: str
    ) -> WorkflowExecutionDescription:
        """Describe under its own deadline. Missing it is told apart from Temporal being down."""
        try:
            async with asyncio.timeout(self._rpc_timeout + 1.0):
                return await handle.describe(rpc_timeout=timedelta(seconds=self._rpc_timeout))
        except RPCError as exc:
            if self._is_not_found(exc):
                raise TicketNotFound(ticket_id) from exc
            if exc.status != RPCStatusCode.DEADLINE_EXCEEDED:
                raise self._translate(exc) from exc
            timed_out: Exception = exc
        except (TimeoutError, RPCTimeoutOrCancelledError) as exc:
            timed_out = exc
        except RuntimeError as exc:
            if _is_connect_failure(exc):
                raise TemporalUnavailable(self.address, "connection failed") from exc
            raise
        # Slow is not down: one cheap health RPC says which (it raises when Temporal is down).
        await self.check_ready()
        raise Unavailable(
            f"Temporal at {self.address} did not describe ticket {ticket_id!r} within "
            f"{self._rpc_timeout:g}s; the decision was not sent; retry"
        ) from timed_out


def decision_update_id(decision: DecideInput) -> str:
    """The `decide` update's id: the same decision by the same approver has the same id."""
    canon = json.dumps(
        [decision.approver, decision.approved, decision.reason], separators=(",", ":")
    )
    return f"decide-{hashlib.sha256(canon.encode()).hexdigest()}"


def _closed(ticket_id: str, status: WorkflowExecutionStatus | None) -> DecisionRejected:
    state = f" ({status.name})" if status else ""
    return DecisionRejected(f"ticket {ticket_id!r} is closed{state}; no more decisions accepted")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RPCError):
        return f"{exc.status.name}: {exc.message}"
    return "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
