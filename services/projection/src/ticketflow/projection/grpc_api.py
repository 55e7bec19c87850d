"""The gRPC read API: ``ticketflow.v1.ReadModelService`` over the read model, plus health and
reflection, on a grpc.aio server.

It reads only the SQLite file, so it answers whether or not Temporal is reachable (the api asks
here when Temporal cannot answer: docs/architecture.md, "Read paths"). SQLite calls run on
threads, and each one opens its own connection, so a rebuild's file swap is picked up by the next
request.

Requests arrive as raw bytes and are parsed here (`add_read_model_service`), so an undecodable
message is INVALID_ARGUMENT with a message and one log line, not the UNKNOWN (with the exception
class and a traceback per call) grpc answers when its own deserializer raises.

With a read-model token (`TICKETFLOW_READMODEL_TOKEN`), every ReadModelService call needs the
metadata `authorization: Bearer <token>`, checked before the request is parsed and in constant
time, else UNAUTHENTICATED; health checking and reflection need none (docs/architecture.md, "Who
may read what"). Neither the token nor a presented one is ever logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import grpc
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import exc as sa_exc
from ticketflow.contracts.models import TICKET_ID_PATTERN
from ticketflow.contracts.proto_convert import enum_from_proto, to_proto
from ticketflow.runtime.grpc_observe import server_interceptors
from ticketflow.storage import describe
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc, ticket_pb2

from .paging import InvalidPageToken, decode_token, encode_token
from .store import OutcomeFilter, ReadModelStore, StoredOutcome

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "SERVICE_NAME",
    "ReadApiServer",
    "ReadModelServicer",
    "TokenCheck",
    "add_read_model_service",
]

log = logging.getLogger("ticketflow.projection.grpc")

P = ParamSpec("P")
R = TypeVar("R")

SERVICE_NAME = readmodel_pb2.DESCRIPTOR.services_by_name["ReadModelService"].full_name
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_MAX_TS_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, the Timestamp range
_MIN_TS_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z


class _Invalid(ValueError):
    """A request field is malformed; the message names it."""


def _show(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _micros_ceil(ts: Timestamp, field: str) -> int:
    """A Timestamp as microseconds, rounded up: rows carry microseconds, so ``row >= ts`` and
    ``row < ts`` hold exactly when they hold for the rounded-up value."""
    if not _MIN_TS_SECONDS <= ts.seconds <= _MAX_TS_SECONDS or not 0 <= ts.nanos < 1_000_000_000:
        raise _Invalid(f"{field} is not a valid timestamp (years 1..9999, nanos 0..999999999)")
    return ts.seconds * 1_000_000 + -(-ts.nanos // 1000)


def _enum_filter(desc: EnumDescriptor, number: int, field: str) -> str | None:
    if number == 0:
        return None
    name = enum_from_proto(desc, number)
    if name is None:
        raise _Invalid(f"{field} {number} is not a known {desc.name}")
    return name


def _filter(request: readmodel_pb2.ListOutcomesRequest) -> OutcomeFilter:
    status = _enum_filter(ticket_pb2.TicketStatus.DESCRIPTOR, request.status, "status")
    category = _enum_filter(ticket_pb2.Category.DESCRIPTOR, request.category, "category")
    after = (
        _micros_ceil(request.finished_after, "finished_after")
        if request.HasField("finished_after")
        else None
    )
    before = (
        _micros_ceil(request.finished_before, "finished_before")
        if request.HasField("finished_before")
        else None
    )
    if after is not None and before is not None and after > before:
        raise _Invalid("finished_after is later than finished_before")
    return OutcomeFilter(
        # Stored as the contracts' values: TicketStatus upper case, Category lower case.
        status=status.upper() if status else None,
        category=category.lower() if category else None,
        finished_after_us=after,
        finished_before_us=before,
    )


def _page_size(requested: int) -> int:
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise _Invalid(
            f"page_size must be between 1 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})"
        )
    return requested


def _outcome_pb(row: StoredOutcome) -> ticket_pb2.TicketOutcome:
    return to_proto(row.outcome, ticket_pb2.TicketOutcome)


class ReadModelServicer(readmodel_pb2_grpc.ReadModelServiceServicer):
    def __init__(self, store: ReadModelStore) -> None:
        self._store = store

    async def GetOutcome(
        self, request: readmodel_pb2.GetOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> readmodel_pb2.GetOutcomeResponse:
        ticket_id = request.ticket_id
        if not re.fullmatch(TICKET_ID_PATTERN, ticket_id):
            await _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"ticket_id {_show(ticket_id)} is malformed: expected 1 to 64 characters "
                "of A-Z, a-z, 0-9, '_' or '-'",
            )
        row = await self._read(context, self._store.get, ticket_id)
        if row is None:
            await _abort(
                context, grpc.StatusCode.NOT_FOUND, f"no outcome recorded for ticket {ticket_id}"
            )
        response = readmodel_pb2.GetOutcomeResponse(outcome=_outcome_pb(row))
        response.recorded_at.FromDatetime(row.recorded_at_dt)
        return response

    async def ListOutcomes(
        self, request: readmodel_pb2.ListOutcomesRequest, context: grpc.aio.ServicerContext
    ) -> readmodel_pb2.ListOutcomesResponse:
        try:
            flt = _filter(request)
            size = _page_size(request.page_size)
            after = decode_token(request.page_token, flt) if request.page_token else None
        except (_Invalid, InvalidPageToken) as err:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(err))
        # One row more than asked tells whether another page exists.
        rows = await self._read(context, self._store.list, flt, after=after, limit=size + 1)
        page, more = rows[:size], len(rows) > size
        return readmodel_pb2.ListOutcomesResponse(
            outcomes=[_outcome_pb(r) for r in page],
            next_page_token=encode_token((page[-1].finished_us, page[-1].ticket_id), flt)
            if more
            else "",
        )

    async def _read(
        self,
        context: grpc.aio.ServicerContext,
        fn: Callable[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """``fn`` on a thread (SQLite blocks); a database error is UNAVAILABLE to the caller."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except (sqlite3.Error, sa_exc.SQLAlchemyError) as err:
            # The driver's own first line, without SQLAlchemy's SQL and parameters.
            reason = describe(err)
            log.warning("read model unavailable: %s", reason)
            await _abort(context, grpc.StatusCode.UNAVAILABLE, f"read model unavailable: {reason}")


async def _abort(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str
) -> NoReturn:
    await context.abort(code, details)
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


_Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Message]]


class TokenCheck:
    """The read-model token, compared in constant time (both sides hashed to one length first)."""

    def __init__(self, token: str) -> None:
        self._digest = _digest(token)

    def allows(self, context: grpc.aio.ServicerContext) -> bool:
        presented = _bearer(context)
        # Hash even when nothing was presented: the answer takes as long either way.
        return hmac.compare_digest(self._digest, _digest(presented or "")) and bool(presented)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _bearer(context: grpc.aio.ServicerContext) -> str | None:
    """The token of the call's ``authorization: Bearer <token>`` metadata, or None."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


_UNAUTHENTICATED = (
    "this read API needs the read-model token (TICKETFLOW_READMODEL_TOKEN): send the metadata "
    "'authorization: Bearer <token>'"
)


def _decoding(
    method: str, request_type: type[Message], handler: _Handler, check: TokenCheck | None
) -> _Handler:
    """``handler`` taking the request's wire bytes: without the token (when ``check`` is set) the
    call is UNAUTHENTICATED, before parsing; undecodable bytes are INVALID_ARGUMENT."""

    async def call(raw: bytes, context: grpc.aio.ServicerContext) -> Message:
        if check is not None and not check.allows(context):
            # One line with where the call came from; never a token, never the request.
            log.warning(
                "refused a %s call without the read-model token from %s", method, context.peer()
            )
            await _abort(context, grpc.StatusCode.UNAUTHENTICATED, _UNAUTHENTICATED)
        try:
            request = request_type.FromString(raw)
        except DecodeError as err:
            # One line, no traceback, no request bytes (they are the caller's data).
            log.warning("refused a malformed %s request (%d bytes): %s", method, len(raw), err)
            # e.g. "Error parsing message with type 'ticketflow.v1.GetOutcomeRequest': Wire
            # format was corrupt" (or "String field had bad UTF-8").
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {err}")
        return await handler(request, context)

    return call


def add_read_model_service(
    servicer: ReadModelServicer, server: grpc.aio.Server, token: str | None = None
) -> None:
    """Register every RPC of ReadModelService like the generated
    `add_ReadModelServiceServicer_to_server`, but with raw-bytes requests parsed by `_decoding`;
    with a `token`, every call must carry it."""
    check = TokenCheck(token) if token else None
    service = readmodel_pb2.DESCRIPTOR.services_by_name["ReadModelService"]
    handlers = {}
    for method in service.methods:
        request_type = getattr(readmodel_pb2, method.input_type.name)
        response_type = getattr(readmodel_pb2, method.output_type.name)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _decoding(method.name, request_type, getattr(servicer, method.name), check),
            request_deserializer=None,
            response_serializer=response_type.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


class ReadApiServer:
    """The grpc.aio server: ReadModelService, gRPC health checking, server reflection."""

    def __init__(self, store: ReadModelStore, address: str, *, token: str | None = None) -> None:
        self.address = address
        self.needs_token = bool(token)
        self.port: int | None = None
        self._server = grpc.aio.server(interceptors=server_interceptors())
        self._health = health.aio.HealthServicer()
        add_read_model_service(ReadModelServicer(store), self._server, token)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], self._server
        )

    @property
    def bound_address(self) -> str:
        host = self.address.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def start(self) -> int:
        """Bind and serve; the bound port (useful when the address asks for port 0)."""
        try:
            port: int = self._server.add_insecure_port(self.address)
        except RuntimeError as err:
            raise OSError(f"cannot listen on {self.address}: {err}") from err
        if not port:
            raise OSError(f"cannot listen on {self.address}")
        self.port = port
        await self._server.start()
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return port

    async def stop(self, grace: float) -> None:
        """NOT_SERVING first (load balancers stop sending), then finish in-flight calls."""
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
