"""The api's client of the projection's read model: where "what happened to ticket X?" goes when
Temporal cannot answer live.

docs/architecture.md, "Read paths": the live query answers while the workflow exists and a worker
can replay it; the projection's read model (`ticketflow.v1.ReadModelService` over gRPC, at
`TICKETFLOW_PROJECTION_ADDRESS`) answers when Temporal says NOT_FOUND or is unavailable.
`ReadModelClient` is what the service layer needs of it; `GrpcReadModelClient` is the gRPC client;
`NoReadModelClient` knows no ticket (for tests and for running the api without a projection on
purpose). The read model itself (its SQLite store) belongs to the projection service.

With `TICKETFLOW_READMODEL_TOKEN` set, every call carries `authorization: Bearer <token>`: the
projection refuses read calls without it when it has the same token (docs/architecture.md, "Who may
read what").
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import grpc
from pydantic import ValidationError
from ticketflow.contracts import TicketOutcome
from ticketflow.contracts.proto_convert import from_proto
from ticketflow.runtime.grpc_observe import client_interceptors
from ticketflow.v1 import readmodel_pb2, readmodel_pb2_grpc

from .errors import ReadModelUnavailable
from .settings import Settings

__all__ = ["GrpcReadModelClient", "NoReadModelClient", "ReadModelClient"]

log = logging.getLogger(__name__)


@runtime_checkable
class ReadModelClient(Protocol):
    """Asks the projection's read model about finished tickets, as the projection recorded them."""

    async def get_outcome(self, ticket_id: str) -> TicketOutcome | None:
        """The recorded outcome, or None when the read model has no such ticket.

        Raises `ticketflow.api.errors.Unavailable` when the read model itself cannot be reached.
        """
        ...

    async def aclose(self) -> None: ...


class NoReadModelClient:
    """Knows nothing, never fails: the api answers exactly as if the read model had no row."""

    async def get_outcome(self, ticket_id: str) -> TicketOutcome | None:
        return None

    async def aclose(self) -> None:
        return None


# The channel reconnects on its own; without a cap on the backoff a projection that restarts could
# stay "unavailable" to us for up to two minutes (gRPC's default maximum) after it is back.
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.enable_retries", 0),
)


class GrpcReadModelClient:
    """A `ReadModelClient` over the projection's gRPC `ReadModelService`.

    Every call has a short deadline and fails fast (no wait-for-ready): the read model is the
    fallback of a fallback, so "cannot answer now" must come back quickly as `ReadModelUnavailable`,
    never as a hang. The channel is made on first use, inside the running event loop.
    """

    def __init__(self, address: str, *, timeout_s: float, token: str | None = None) -> None:
        self.address = address
        self._timeout_s = timeout_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._channel: grpc.aio.Channel | None = None
        self._stub: readmodel_pb2_grpc.ReadModelServiceStub | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> GrpcReadModelClient:
        """The client of `settings.projection_address`, with its deadline and token."""
        return cls(
            settings.projection_address,
            timeout_s=settings.read_model_timeout_s,
            token=settings.readmodel_token.get_secret_value() or None,
        )

    def _get_stub(self) -> readmodel_pb2_grpc.ReadModelServiceStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(
                self.address, options=_CHANNEL_OPTIONS, interceptors=client_interceptors()
            )
            self._stub = readmodel_pb2_grpc.ReadModelServiceStub(self._channel)
        return self._stub

    async def get_outcome(self, ticket_id: str) -> TicketOutcome | None:
        request = readmodel_pb2.GetOutcomeRequest(ticket_id=ticket_id)
        try:
            response = await self._get_stub().GetOutcome(
                request, timeout=self._timeout_s, wait_for_ready=False, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            reason = exc.code().name + (f": {exc.details()}" if exc.details() else "")
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                log.error(
                    "the read model at %s refused GetOutcome: %s; set the same "
                    "TICKETFLOW_READMODEL_TOKEN on the api and the projection",
                    self.address,
                    reason,
                )
            elif exc.code() not in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}:
                # Not "down" but refusing: a version mismatch or a bug on either side.
                log.error("the read model at %s refused GetOutcome: %s", self.address, reason)
            raise ReadModelUnavailable.unreachable(self.address, reason) from exc
        try:
            return from_proto(response.outcome, TicketOutcome)
        except ValidationError as exc:
            log.error("the read model at %s answered an invalid outcome: %s", self.address, exc)
            raise ReadModelUnavailable.unreachable(
                self.address, "it answered an invalid outcome"
            ) from exc

    async def aclose(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()
