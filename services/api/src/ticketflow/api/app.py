"""The FastAPI application: `create_app(settings)` wires settings, Temporal, read model and handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from .errors import Unavailable, install_error_handlers
from .middleware import BodyLimitMiddleware
from .readmodel import NoReadModel, ReadModel
from .routes import router
from .settings import Settings
from .temporal import TicketGateway

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_DESCRIPTION = """\
Submit support tickets, follow them, and approve the risky ones.

Each ticket is a durable Temporal workflow (`ticket-<ticket_id>`). Every error answer has the shape
`{"error": {"code": ..., "message": ..., "details": [...]}}`.
"""


def create_app(
    settings: Settings,
    *,
    gateway: TicketGateway | None = None,
    read_model: ReadModel | None = None,
) -> FastAPI:
    """Build the app. Starting it does not need Temporal: it connects lazily and reconnects.

    `gateway` and `read_model` default to the real Temporal client and to `NoReadModel`; tests (and
    the gRPC server, which shares them) may pass their own.
    """
    gateway = gateway if gateway is not None else TicketGateway(settings)
    read_model = read_model if read_model is not None else NoReadModel()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.connect()
        try:
            await gateway.check_ready()
            log.info(
                "Temporal at %s (namespace %s) is reachable", gateway.address, gateway.namespace
            )
        except Unavailable as exc:
            log.warning("%s Starting anyway; /readyz answers 503 until it is.", exc.message)
        if not settings.approvers:
            log.warning(
                "TICKETFLOW_APPROVER_TOKENS is not set: every decision will be refused (401)"
            )
        try:
            yield
        finally:
            await read_model.aclose()

    app = FastAPI(
        title="ticketflow api",
        version=version("ticketflow-api"),
        description=_DESCRIPTION,
        lifespan=lifespan,
        separate_input_output_schemas=False,
        openapi_tags=[
            {"name": "tickets", "description": "Submit, follow, list and decide tickets."},
            {"name": "ops", "description": "Liveness and readiness probes."},
        ],
    )
    app.state.settings = settings
    app.state.gateway = gateway
    app.state.read_model = read_model
    install_error_handlers(app)
    app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
