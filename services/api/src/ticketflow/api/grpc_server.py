"""The gRPC front door: `ticketflow.v1.TicketService` beside the HTTP API, in the same event loop.

The servicer is a transport only: it turns messages into the request models of `schemas` (so the
limits are the HTTP API's and the contracts'), calls the shared `service.TicketService`, and maps
`errors.ApiError` to gRPC status codes (`GRPC_CODES`). proto3 presence is respected: an unset
`optional` field is absent (a generated ticket_id, no order, no refund), while an empty string or
an explicit value is validated like its JSON twin, so `ticket_id: ""` is INVALID_ARGUMENT, not
"generate one".

Reads are guarded like the HTTP API's (`auth`): with `TICKETFLOW_VIEWER_TOKENS` set, GetTicket and
ListTickets need the metadata `authorization: Bearer <token>` with a viewer's or an approver's
token, else UNAUTHENTICATED; DecideTicket always needs an approver's token there (the approver is
the token's owner), with HTTP's rules: the same decision again answers the same (applied once), a
late, duplicate or closed one is FAILED_PRECONDITION (`decision_rejected`), an answer that did not
come is UNAVAILABLE (`decision_outcome_unknown`: send the same request again). SubmitTicket
(intake), health and reflection need none.

Every error carries the api's machine code in the trailing metadata key `ticketflow-error-code`
(e.g. `ticket_conflict`, `no_live_answer`), the same code the HTTP error body has; an error whose
HTTP answer has `Retry-After` (Temporal unreachable, the circuit open, a decision's unknown
outcome) carries it as `retry-after` (seconds) too.

Beside TicketService the server runs the standard health service (`grpc.health.v1.Health`: `""`
is SERVING while the process serves; `ticketflow.v1.TicketService` is SERVING while Temporal is
reachable and NOT_SERVING while it is not, re-checked every `health_interval_s`; both turn
NOT_SERVING when shutdown begins) and server reflection, v1 and v1alpha (`_reflection`;
`grpcurl -plaintext HOST:PORT list`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from ticketflow.contracts.proto_convert import enum_from_proto, enum_to_proto, from_proto, to_proto
from ticketflow.runtime import ServiceError
from ticketflow.runtime.grpc_observe import server_interceptors
from ticketflow.v1 import ticket_pb2, ticket_pb2_grpc

from ._reflection import enable_reflection
from .auth import GRPC_HINT, bearer_token, identify_approver, identify_reader
from .connections import grpc_max_connections
from .errors import (
    ApiError,
    BadRequest,
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    TicketContentConflict,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from .schemas import DecisionRequest, ListTicketsQuery, SubmitTicketRequest
from .service import TicketService, validating
from .settings import Settings

__all__ = [
    "ERROR_CODE_KEY",
    "GRPC_CODES",
    "RETRY_AFTER_KEY",
    "TICKET_SERVICE",
    "GrpcBindError",
    "GrpcServer",
    "TicketServicer",
    "add_ticket_service",
    "grpc_code",
    "grpc_server_options",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

TICKET_SERVICE = ticket_pb2.DESCRIPTOR.services_by_name["TicketService"].full_name
ERROR_CODE_KEY = "ticketflow-error-code"
RETRY_AFTER_KEY = "retry-after"

# First match wins, so a subclass comes before its base.
GRPC_CODES: tuple[tuple[type[ApiError], grpc.StatusCode], ...] = (
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (UnsupportedMediaType, grpc.StatusCode.INVALID_ARGUMENT),
    (Unauthorized, grpc.StatusCode.UNAUTHENTICATED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (TicketContentConflict, grpc.StatusCode.ALREADY_EXISTS),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (PayloadTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
)


def grpc_code(exc: ApiError) -> grpc.StatusCode:
    for cls, code in GRPC_CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


_STATUS = ticket_pb2.DESCRIPTOR.enum_types_by_name["TicketStatus"]


class TicketServicer(ticket_pb2_grpc.TicketServiceServicer):
    """`ticketflow.v1.TicketService` on the shared service layer.

    Requests arrive as raw bytes (see `add_ticket_service`) and are parsed here, so a malformed
    message (bad wire format, invalid UTF-8 in a string field) is INVALID_ARGUMENT with a message,
    not the UNKNOWN grpc answers when its own deserializer raises.
    """

    def __init__(self, tickets: TicketService, settings: Settings) -> None:
        self._tickets = tickets
        self._settings = settings

    async def SubmitTicket(
        self,
        request: ticket_pb2.SubmitTicketRequest | bytes,
        context: grpc.aio.ServicerContext,
    ) -> ticket_pb2.SubmitTicketResponse:
        async def submit() -> ticket_pb2.SubmitTicketResponse:
            message = _parse(ticket_pb2.SubmitTicketRequest, request)
            with validating():
                submission = from_proto(message, SubmitTicketRequest)
            result = await self._tickets.submit(submission)
            return ticket_pb2.SubmitTicketResponse(
                ticket_id=result.ticket_id,
                workflow_id=result.workflow_id,
                status=enum_to_proto(_STATUS, result.status),  # type: ignore[arg-type]
                created=result.created,
            )

        return await _answer(context, "SubmitTicket", submit)

    async def GetTicket(
        self, request: ticket_pb2.GetTicketRequest | bytes, context: grpc.aio.ServicerContext
    ) -> ticket_pb2.GetTicketResponse:
        async def get() -> ticket_pb2.GetTicketResponse:
            # Before parsing: a caller without a token learns nothing, not even from the parser.
            identify_reader(self._settings, bearer_token(_authorization(context)), GRPC_HINT)
            message = _parse(ticket_pb2.GetTicketRequest, request)
            view = await self._tickets.get(message.ticket_id)
            return to_proto(view, ticket_pb2.GetTicketResponse)

        return await _answer(context, "GetTicket", get)

    async def ListTickets(
        self, request: ticket_pb2.ListTicketsRequest | bytes, context: grpc.aio.ServicerContext
    ) -> ticket_pb2.ListTicketsResponse:
        async def list_() -> ticket_pb2.ListTicketsResponse:
            identify_reader(self._settings, bearer_token(_authorization(context)), GRPC_HINT)
            message = _parse(ticket_pb2.ListTicketsRequest, request)
            query = _list_query(message)
            page = await self._tickets.list(query.status, query.limit, query.page_token)
            return to_proto(page, ticket_pb2.ListTicketsResponse)

        return await _answer(context, "ListTickets", list_)

    async def DecideTicket(
        self, request: ticket_pb2.DecideTicketRequest | bytes, context: grpc.aio.ServicerContext
    ) -> ticket_pb2.DecideTicketResponse:
        async def decide() -> ticket_pb2.DecideTicketResponse:
            # Who decides comes from the token, checked before the request is even parsed.
            approver = identify_approver(
                self._settings, bearer_token(_authorization(context)), GRPC_HINT
            )
            message = _parse(ticket_pb2.DecideTicketRequest, request)
            with validating():
                decision = DecisionRequest.model_validate(
                    {
                        "approved": message.approved,
                        "reason": message.reason if message.HasField("reason") else None,
                    }
                )
            accepted = await self._tickets.decide(message.ticket_id, approver, decision)
            return to_proto(accepted, ticket_pb2.DecideTicketResponse)

        return await _answer(context, "DecideTicket", decide)


def _list_query(message: ticket_pb2.ListTicketsRequest) -> ListTicketsQuery:
    """The HTTP query's model (same limits) from a ListTicketsRequest; INVALID_ARGUMENT if bad."""
    fields: dict[str, object] = {}
    if message.status != 0:
        status = enum_from_proto(_STATUS, message.status)
        if status is None:
            raise InvalidRequest(
                f"status: unknown TicketStatus number {message.status}",
                details=[{"loc": ["status"], "msg": "unknown TicketStatus"}],
            )
        fields["status"] = status
    if message.HasField("limit"):
        fields["limit"] = message.limit
    if message.HasField("page_token"):
        fields["page_token"] = message.page_token
    with validating():
        return ListTicketsQuery.model_validate(fields)


M = TypeVar("M", bound=Message)


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    """The call's `authorization` metadata (gRPC keys are lower case), or None."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else None
    return None


def _parse(message_type: type[M], request: M | bytes) -> M:
    """The request message from its wire bytes; `BadRequest` (INVALID_ARGUMENT) when malformed."""
    if isinstance(request, message_type):
        return request
    try:
        return message_type.FromString(request)  # type: ignore[arg-type]
    except DecodeError as exc:
        # e.g. "Error parsing message with type 'ticketflow.v1.GetTicketRequest': String field
        # had bad UTF-8" (or "Wire format was corrupt").
        raise BadRequest(f"malformed request: {exc}") from None


def add_ticket_service(servicer: TicketServicer, server: grpc.aio.Server) -> None:
    """Register TicketService like the generated `add_TicketServiceServicer_to_server`, but with
    raw-bytes requests (no request deserializer), so the servicer parses and reports bad input.
    """
    responses: dict[str, type[Message]] = {
        "SubmitTicket": ticket_pb2.SubmitTicketResponse,
        "GetTicket": ticket_pb2.GetTicketResponse,
        "ListTickets": ticket_pb2.ListTicketsResponse,
        "DecideTicket": ticket_pb2.DecideTicketResponse,
    }
    handlers = {
        method: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method),
            request_deserializer=None,
            response_serializer=response.SerializeToString,
        )
        for method, response in responses.items()
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(TICKET_SERVICE, handlers),)
    )
    server.add_registered_method_handlers(TICKET_SERVICE, handlers)


async def _answer(
    context: grpc.aio.ServicerContext, method: str, call: Callable[[], Awaitable[T]]
) -> T:
    """Run `call`; an `ApiError` becomes its gRPC status, anything else INTERNAL (logged)."""
    metadata: tuple[tuple[str, str], ...]
    try:
        return await call()
    except ApiError as exc:
        code, message = grpc_code(exc), exc.message
        metadata = ((ERROR_CODE_KEY, exc.code),)
        if "Retry-After" in exc.headers:
            metadata += ((RETRY_AFTER_KEY, exc.headers["Retry-After"]),)
    except Exception:
        # A true bug: log it whole, answer without internals (as the HTTP 500 does).
        log.exception("unhandled error in %s", method)
        code, message = grpc.StatusCode.INTERNAL, "internal server error"
        metadata = ((ERROR_CODE_KEY, "internal"),)
    await context.abort(code, message, trailing_metadata=metadata)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def grpc_server_options(settings: Settings) -> list[tuple[str, int]]:
    """Channel arguments of the server: its limits, so that no client holds a connection forever.

    Unlike the HTTP side, gRPC cannot evict: past `max_allowed_incoming_connections` a new
    connection (a health check too) is closed at once until a slot frees, which the handshake
    deadline and the idle limit make happen within seconds. Tried on grpcio 1.85: both close
    connections without a log line. No `maximum_concurrent_rpcs`: its RESOURCE_EXHAUSTED would
    refuse health checks as well; each call is bounded by the api's deadlines to Temporal instead.
    """
    grace_ms = int(settings.shutdown_grace_s * 1000)
    return [
        # The HTTP API's body limit, for the same reason: refuse before parsing.
        ("grpc.max_receive_message_length", settings.max_body_bytes),
        # A taken port must fail the start, not be silently shared with another process.
        ("grpc.so_reuseport", 0),
        # Open connections at most (each holds a descriptor; the HTTP server needs some too).
        ("grpc.max_allowed_incoming_connections", grpc_max_connections(settings)),
        # A connection that has not finished the HTTP/2 handshake by then is closed (default
        # 120 s): the gRPC twin of the HTTP header deadline.
        ("grpc.server_handshake_timeout_ms", int(settings.http_header_timeout_s * 1000)),
        # A connection without a call for a minute gets GOAWAY; clients reconnect when they need to.
        ("grpc.max_connection_idle_ms", 60_000),
        # No connection lives past 30 minutes (+-10 % jitter), in-flight calls get the shutdown
        # grace to finish: a client trickling a message slowly is cut off there at the latest.
        ("grpc.max_connection_age_ms", 30 * 60_000),
        ("grpc.max_connection_age_grace_ms", grace_ms),
        # Ping a client with calls in flight after 60 s of silence; no answer in 20 s: close.
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        # Concurrent calls on one connection (the HTTP/2 SETTINGS the server announces).
        ("grpc.max_concurrent_streams", 100),
    ]


class GrpcBindError(ServiceError):
    """The gRPC address cannot be listened on (taken, or not an address of this host)."""


class GrpcServer:
    """TicketService, health and reflection on one `grpc.aio` server, in the running event loop."""

    def __init__(self, settings: Settings, tickets: TicketService) -> None:
        self._tickets = tickets
        self._interval = settings.health_interval_s
        self.server = grpc.aio.server(
            options=grpc_server_options(settings), interceptors=server_interceptors()
        )
        add_ticket_service(TicketServicer(tickets, settings), self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection((TICKET_SERVICE, health.SERVICE_NAME), self.server)
        self.host = settings.grpc_host
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise GrpcBindError(
                f"cannot listen for gRPC on {address}: {exc}; free the port or set "
                "TICKETFLOW_GRPC_PORT (0 picks a free one)"
            ) from None
        self.stopped = False
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Know Temporal's state first, then serve, then follow it."""
        await self.refresh_health()
        await self.server.start()
        self._watcher = asyncio.create_task(self._follow_health(), name="grpc-health")

    async def refresh_health(self) -> bool:
        """Set TicketService's health from one readiness check of Temporal; True when serving."""
        try:
            await self._tickets.check_ready()
        except Unavailable:
            serving = False
        else:
            serving = True
        status = health_pb2.HealthCheckResponse
        await self.health.set(TICKET_SERVICE, status.SERVING if serving else status.NOT_SERVING)
        return serving

    async def _follow_health(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh_health()
            except Exception:
                log.exception("gRPC health check failed")

    async def stop(self, grace: float | None) -> None:
        """Report NOT_SERVING, refuse new calls, give in-flight calls `grace` seconds, then cancel."""
        self.stopped = True
        await self.health.enter_graceful_shutdown()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.server.stop(grace)
