"""The FastAPI application: `create_app(settings)` wires settings, the service layer and handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from ._metrics import HttpMetricsMiddleware
from ._version import VERSION
from .console import install_console
from .errors import Unavailable, install_error_handlers
from .middleware import BodyLimitMiddleware
from .read_model_client import GrpcReadModelClient, ReadModelClient
from .routes import router
from .service import TicketService
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
    read_model_client: ReadModelClient | None = None,
) -> FastAPI:
    """Build the app. Starting it needs neither Temporal nor the projection: both are lazy.

    `gateway` and `read_model_client` default to the real Temporal client and to a client of the
    projection's gRPC read API at `settings.projection_address`; tests may pass their own. The
    app's `TicketService` (`app.state.tickets`) is the service layer the gRPC server shares. The
    app closes only what it created: a read-model client passed in belongs to the caller.
    """
    owned_client: ReadModelClient | None = None
    if read_model_client is None:
        read_model_client = owned_client = GrpcReadModelClient.for_settings(settings)
    gateway = gateway if gateway is not None else TicketGateway(settings)

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
        _announce_read_access(settings)
        try:
            yield
        finally:
            if owned_client is not None:
                await owned_client.aclose()

    # Swagger UI (/docs) and ReDoc (/redoc) from the assets the fastapi-offline package ships,
    # served by the api itself: the docs work offline and load nothing from a CDN.
    app = FastAPIOffline(
        static_url="/docs-assets",
        title="ticketflow api",
        version=VERSION,
        description=_DESCRIPTION,
        lifespan=lifespan,
        separate_input_output_schemas=False,
        openapi_tags=[
            {"name": "tickets", "description": "Submit, follow, list and decide tickets."},
            {"name": "ops", "description": "Liveness and readiness probes."},
        ],
    )
    app.state.settings = settings
    app.state.tickets = TicketService(gateway, read_model_client)
    install_error_handlers(app, routes=router.routes)
    app.include_router(router)
    install_console(app, settings)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    # Outermost: a 413 from the body limit is timed and counted too.
    app.add_middleware(HttpMetricsMiddleware)
    # A server span per request (probes and docs left out), the parent of StartWorkflow.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,openapi.json,docs", exclude_spans=["receive", "send"]
    )
    return app


def _announce_read_access(settings: Settings) -> None:
    """One line at start: who may read tickets (docs/architecture.md, "Who may read what")."""
    if settings.viewers:
        log.info(
            "reads need a viewer or approver token (%d viewers, %d approvers; "
            "TICKETFLOW_VIEWER_TOKENS)",
            len(settings.viewers),
            len(settings.approvers),
        )
    else:
        log.warning(
            "reads are open: anyone who reaches this api can read every ticket "
            "(set TICKETFLOW_VIEWER_TOKENS to require a viewer's or an approver's token)"
        )
