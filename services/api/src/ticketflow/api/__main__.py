"""`ticketflow-api` / `python -m ticketflow.api`: serve HTTP and gRPC until SIGTERM or Ctrl-C.

One process, one event loop: uvicorn (the FastAPI app) and a `grpc.aio` server run side by side and
share one application layer (`app.state.tickets`), so both answer from the same Temporal client and
read-model client. Process plumbing is `ticketflow.runtime`'s (docs/architecture.md, "Process
plumbing and tests"): settings through `load_settings` (exit 2 when they are wrong), logs, metrics
and traces through `setup_service` (uvicorn's loggers included), the stop signals through
`install_stop_handlers`, and exit 1 with a what-to-do message (`ServiceError`) when an address
cannot be listened on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Iterator
from typing import NoReturn

import uvicorn
from fastapi import FastAPI
from ticketflow.runtime import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    ServiceError,
    load_settings,
    setup_service,
)
from ticketflow.runtime.healthcheck import check_http, reach_host, run_check
from ticketflow.runtime.lifecycle import exit_process, install_stop_handlers

from ._version import VERSION
from .app import create_app
from .connections import (
    ConnectionGuard,
    RefusalLog,
    count_accept_failures,
    descriptor_limit,
    grpc_max_connections,
    guarded_protocol,
    http_limits,
)
from .grpc_server import GrpcServer
from .read_model_client import GrpcReadModelClient
from .settings import Settings

__all__ = ["PROG", "HttpStartError", "main", "serve"]

PROG = "ticketflow-api"

log = logging.getLogger("ticketflow.api")

_ENV_HELP = """\
environment (all optional):
  TICKETFLOW_TEMPORAL_ADDRESS   Temporal frontend (127.0.0.1:7233)
  TICKETFLOW_NAMESPACE          Temporal namespace (default)
  TICKETFLOW_LOG_LEVEL          DEBUG, INFO, WARNING, ERROR or CRITICAL (INFO)
  TICKETFLOW_LOG_FORMAT         json, text or auto: text on a terminal, else JSON (auto)
  TICKETFLOW_METRICS_PORT       Prometheus /metrics port (unset: no metrics server)
  TICKETFLOW_METRICS_HOST       metrics bind address (127.0.0.1)
  OTEL_EXPORTER_OTLP_ENDPOINT   export trace spans over OTLP there (unset: none)
  TICKETFLOW_HTTP_HOST          bind address (127.0.0.1)
  TICKETFLOW_HTTP_PORT          HTTP port (8000; 0 picks a free one)
  TICKETFLOW_GRPC_HOST          gRPC bind address (127.0.0.1)
  TICKETFLOW_GRPC_PORT          gRPC port (50051; 0 picks a free one)
  TICKETFLOW_PROJECTION_ADDRESS projection read API, the fallback of ticket lookups (127.0.0.1:50052)
  TICKETFLOW_HTTP_HEADER_TIMEOUT_S  a request's headers must arrive within this (10; also the gRPC
                                handshake); then TICKETFLOW_HTTP_BODY_TIMEOUT_S for its body (30)
  TICKETFLOW_HTTP_MAX_CONNECTIONS  open HTTP connections at most (half the descriptor limit, at most
                                4096); at the limit the one waiting longest for its client is closed
  TICKETFLOW_GRPC_MAX_CONNECTIONS  open gRPC connections at most (a quarter of it, at most 1024)
  TICKETFLOW_APPROVER_TOKENS    name:token,name:token (without it every decision is refused)
  TICKETFLOW_VIEWER_TOKENS      name:token,... who may read; set, every read needs a viewer's or an
                                approver's bearer token (unset: reads are open)
  TICKETFLOW_READMODEL_TOKEN    sent to the projection's read API (the same on both)
  TICKETFLOW_CONSOLE_CURRENCY   the currency the console shows refunds in (USD; amounts are cents)
  TICKETFLOW_CONSOLE_SESSION_S  how long a console sign-in lasts (28800 = 8 h)
  TICKETFLOW_DECISION_KEYS      kid:base64secret,... shared with the core worker; the first signs
                                decisions (without it the core worker refuses every decision)
  TICKETFLOW_DECISION_KEYS_FILE a file of the same entries
  TICKETFLOW_RPC_TIMEOUT_S      deadline of a Temporal call: start, describe, list (3)
  TICKETFLOW_RPC_RETRIES        retries of a call Temporal could not take, within its deadline (2)
  TICKETFLOW_DECIDE_TIMEOUT_S   how long a decision waits for the workflow's answer (10)
  TICKETFLOW_CIRCUIT_FAILURES   failed Temporal calls in a row that open the circuit: then 503 with
                                Retry-After at once, without calling Temporal (3)
  TICKETFLOW_CIRCUIT_COOLDOWN_S seconds open before one health check probes Temporal again (2)
  TICKETFLOW_CONFIDENCE_THRESHOLD, TICKETFLOW_AUTO_APPROVE_LIMIT_CENTS, TICKETFLOW_APPROVAL_TIMEOUT_S,
  TICKETFLOW_AGENT_SCHEDULE_TO_START_S, TICKETFLOW_FALLBACK_SCHEDULE_TO_START_S,
  TICKETFLOW_PRIMARY_RECHECK_SCHEDULE_TO_START_S                             policy of new tickets
  (the README lists every variable: deadlines, limits, the finer policy knobs)
"""


class HttpStartError(ServiceError):
    """uvicorn could not start (it logged why, e.g. the port is taken)."""


class _Server(uvicorn.Server):
    """uvicorn's server, announcing the address it really bound (port 0 picks a free one).

    It leaves the signals to `serve`, which owns them for every server in this process: uvicorn
    alone would re-raise SIGTERM after its own shutdown and kill whatever else still drains.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        settings: Settings,
        grpc_address: str,
        guard: ConnectionGuard,
    ) -> None:
        super().__init__(config)
        self._settings = settings
        self._grpc_address = grpc_address
        self.guard = guard

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(
                f"{PROG} {VERSION} listening on http://{host}:{port} "
                f"and grpc://{self._grpc_address} "
                f"(Temporal at {self._settings.temporal_address}, "
                f"namespace {self._settings.namespace}; "
                f"read model at {self._settings.projection_address})",
                flush=True,
            )
            keys = self._settings.keys_for_decisions
            if keys:  # the key id only, never a secret
                print(f"{PROG}: decisions signed with key id {keys[0].key_id}", flush=True)
            else:
                print(
                    f"{PROG}: WARNING: no decision keys (TICKETFLOW_DECISION_KEYS or "
                    "TICKETFLOW_DECISION_KEYS_FILE): the core worker will refuse every decision",
                    flush=True,
                )
            self._log_limits()

    def _log_limits(self) -> None:
        http, grpc = self.guard.limits, grpc_max_connections(self._settings)
        nofile = descriptor_limit()
        log.info(
            "HTTP: %s; gRPC: at most %d connections (descriptor limit %d)",
            http.describe(),
            grpc,
            nofile,
        )
        if http.max_connections + grpc >= nofile:
            log.warning(
                "TICKETFLOW_HTTP_MAX_CONNECTIONS + TICKETFLOW_GRPC_MAX_CONNECTIONS (%d) reach the "
                "descriptor limit (%d): accepts will fail before the limits apply; raise "
                "`ulimit -n` or lower them",
                http.max_connections + grpc,
                nofile,
            )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        self.guard.refusals.close()  # what the last interval counted


def _http_server(app: FastAPI, settings: Settings, grpc_address: str) -> _Server:
    guard = ConnectionGuard(http_limits(settings), RefusalLog("HTTP connections"))
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        # uvicorn's h11 protocol plus deadlines for a request's headers and body and a connection
        # limit that evicts the slowest client (connections.py). Not `limit_concurrency`: it
        # answers 503 to every request past the limit, /healthz and /readyz included.
        http=guarded_protocol(guard),
        lifespan="on",
        # uvicorn's type says int; it is awaited as a timeout, so a float works and keeps the setting.
        timeout_graceful_shutdown=settings.shutdown_grace_s,  # type: ignore[arg-type]
        server_header=False,
        # None: uvicorn leaves logging alone, so its loggers reach the root handler that
        # `setup_service` configured, in the one format and at TICKETFLOW_LOG_LEVEL.
        log_config=None,
    )
    return _Server(config, settings, grpc_address=grpc_address, guard=guard)


async def _serve_http(server: _Server, settings: Settings) -> None:
    # uvicorn reports a failed start with sys.exit(1). A SystemExit escaping a task stops the event
    # loop where it stands, with the gRPC server still running: catch it here, stop in order.
    try:
        await server.serve()
    except SystemExit:
        raise HttpStartError(
            f"cannot listen for HTTP on {settings.http_host}:{settings.http_port} (see the error "
            "above); free the port or set TICKETFLOW_HTTP_PORT (0 picks a free one)"
        ) from None


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve HTTP and gRPC until SIGTERM/SIGINT (or `stop` is set), drain both, and return.

    Shutdown: gRPC health turns NOT_SERVING, both servers refuse new work, in-flight requests get
    `shutdown_grace_s` to finish. A second signal stops at once, cancelling what is in flight.
    Raises `ServiceError` (`GrpcBindError`, `HttpStartError`) when an address cannot be listened
    on.
    """
    stop = stop or asyncio.Event()
    # Made here, not by the app, so it is closed after BOTH servers have drained.
    read_model_client = GrpcReadModelClient.for_settings(settings)
    try:
        app = create_app(settings, read_model_client=read_model_client)
        grpc_server = GrpcServer(settings, app.state.tickets)
        http_server = _http_server(app, settings, f"{grpc_server.host}:{grpc_server.port}")
        await _run(settings, stop, http_server, grpc_server)
    finally:
        await read_model_client.aclose()


async def _run(
    settings: Settings, stop: asyncio.Event, http_server: _Server, grpc_server: GrpcServer
) -> None:
    forced: list[asyncio.Task[None]] = []

    def force() -> None:
        # The second signal: stop waiting for in-flight requests, on both servers.
        http_server.force_exit = True
        forced.append(asyncio.create_task(grpc_server.server.stop(None)))

    uninstall = install_stop_handlers(stop, PROG, on_second=force)
    uncount = count_accept_failures(asyncio.get_running_loop(), http_server.guard.refusals)
    try:
        await grpc_server.start()
        http = asyncio.create_task(_serve_http(http_server, settings), name="http")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait({http, stopping}, return_when=asyncio.FIRST_COMPLETED)
            http_server.should_exit = True
            await asyncio.gather(http, grpc_server.stop(settings.shutdown_grace_s))
            await asyncio.gather(*forced)
        finally:
            stopping.cancel()
    finally:
        uninstall()
        uncount()
        if not grpc_server.stopped:
            await grpc_server.stop(None)


def main(argv: list[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="ticketflow HTTP and gRPC API: submit, follow, list and decide tickets.",
        epilog=_ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=VERSION)
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "healthcheck"],
        default="serve",
        help="serve (the default), or healthcheck: exit 0 when this host's api answers "
        "GET /readyz at TICKETFLOW_HTTP_HOST:TICKETFLOW_HTTP_PORT with 2xx, else 1 (the "
        "image's HEALTHCHECK)",
    )
    args = parser.parse_args(argv)

    settings = load_settings(Settings, PROG)
    if args.command == "healthcheck":
        url = f"http://{reach_host(settings.http_host)}:{settings.http_port}/readyz"
        run_check(PROG, lambda: check_http(url))
    setup_service(settings, "api")
    code = 0
    try:
        asyncio.run(serve(settings))
    except ServiceError as err:
        print(f"{PROG}: {err}", file=sys.stderr, flush=True)
        code = EXIT_FAILED
    except KeyboardInterrupt:  # Ctrl-C before the stop handlers were installed
        code = EXIT_INTERRUPTED
    exit_process(code)  # not `return`: see exit_process


if __name__ == "__main__":
    main()
