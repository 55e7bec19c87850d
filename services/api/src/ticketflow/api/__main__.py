"""`ticketflow-api` / `python -m ticketflow.api`: serve HTTP and gRPC until SIGTERM or Ctrl-C.

One process, one event loop: uvicorn (the FastAPI app) and a `grpc.aio` server run side by side and
share one service layer (`app.state.tickets`), so both answer from the same Temporal client and
read-model channel.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator, Mapping
from importlib.metadata import version
from typing import Any

import uvicorn
from pydantic import ValidationError

from .app import create_app
from .grpc_server import GrpcBindError, GrpcServer
from .readmodel import GrpcReadModel
from .settings import Settings, env_var

log = logging.getLogger("ticketflow.api")

_ENV_HELP = """\
environment (all optional):
  TICKETFLOW_TEMPORAL_ADDRESS   Temporal frontend (127.0.0.1:7233)
  TICKETFLOW_NAMESPACE          Temporal namespace (default)
  TICKETFLOW_HTTP_HOST          bind address (127.0.0.1)
  TICKETFLOW_HTTP_PORT          HTTP port (8000)
  TICKETFLOW_GRPC_HOST          gRPC bind address (127.0.0.1)
  TICKETFLOW_GRPC_PORT          gRPC port (50051; 0 picks a free one)
  TICKETFLOW_PROJECTION_ADDRESS projection read API, the fallback of ticket lookups (127.0.0.1:50052)
  TICKETFLOW_APPROVER_TOKENS    name:token,name:token (without it every decision is refused)
  TICKETFLOW_CONFIDENCE_THRESHOLD, TICKETFLOW_AUTO_APPROVE_LIMIT_CENTS, TICKETFLOW_APPROVAL_TIMEOUT_S,
  TICKETFLOW_AGENT_SCHEDULE_TO_START_S, TICKETFLOW_FALLBACK_SCHEDULE_TO_START_S   policy of new tickets
"""


class _Server(uvicorn.Server):
    """uvicorn's server, announcing the address it really bound (port 0 picks a free one).

    It leaves the signals to `serve`, which owns them for every server in this process: uvicorn
    alone would re-raise SIGTERM after its own shutdown and kill whatever else still drains.
    """

    def __init__(self, config: uvicorn.Config, settings: Settings, grpc_address: str) -> None:
        super().__init__(config)
        self._settings = settings
        self._grpc_address = grpc_address

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(
                f"ticketflow-api {version('ticketflow-api')} listening on http://{host}:{port} "
                f"and grpc://{self._grpc_address} "
                f"(Temporal at {self._settings.temporal_address}, "
                f"namespace {self._settings.namespace}; "
                f"read model at {self._settings.projection_address})",
                flush=True,
            )


class HttpStartError(RuntimeError):
    """uvicorn could not start (it logged why, e.g. the port is taken)."""


async def _serve_http(server: _Server, settings: Settings) -> None:
    # uvicorn reports a failed start with sys.exit(1). A SystemExit escaping a task stops the event
    # loop where it stands, with the gRPC server still running: catch it here, stop in order.
    try:
        await server.serve()
    except SystemExit:
        raise HttpStartError(
            f"cannot listen for HTTP on {settings.http_host}:{settings.http_port}"
        ) from None


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve HTTP and gRPC until SIGTERM/SIGINT (or `stop` is set), drain both, and return.

    Shutdown: gRPC health turns NOT_SERVING, both servers refuse new work, in-flight requests get
    `shutdown_grace_s` to finish. A second signal stops at once, cancelling what is in flight.
    Raises `GrpcBindError` or `HttpStartError` when an address cannot be listened on.
    """
    stop = stop or asyncio.Event()
    # Made here, not by the app, so it is closed after BOTH servers have drained.
    read_model = GrpcReadModel(settings.projection_address, timeout_s=settings.read_model_timeout_s)
    try:
        app = create_app(settings, read_model=read_model)
        grpc_server = GrpcServer(settings, app.state.tickets)
        http_server = _Server(
            uvicorn.Config(
                app,
                host=settings.http_host,
                port=settings.http_port,
                lifespan="on",
                timeout_graceful_shutdown=settings.shutdown_grace_s,  # type: ignore[arg-type]
                server_header=False,
            ),
            settings,
            grpc_address=f"{grpc_server.host}:{grpc_server.port}",
        )
        await _run(settings, stop, http_server, grpc_server)
    finally:
        await read_model.aclose()


async def _run(
    settings: Settings, stop: asyncio.Event, http_server: _Server, grpc_server: GrpcServer
) -> None:
    loop = asyncio.get_running_loop()
    force_stops: list[asyncio.Task[None]] = []

    def on_signal(signum: int) -> None:
        log.info("%s received: shutting down", signal.Signals(signum).name)
        if stop.is_set():
            http_server.force_exit = True
            force_stops.append(asyncio.create_task(grpc_server.server.stop(None)))
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await grpc_server.start()
    http = asyncio.create_task(_serve_http(http_server, settings), name="http")
    stopping = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait({http, stopping}, return_when=asyncio.FIRST_COMPLETED)
        http_server.should_exit = True
        await asyncio.gather(http, grpc_server.stop(settings.shutdown_grace_s))
        await asyncio.gather(*force_stops)
    finally:
        stopping.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if not grpc_server.stopped:
            await grpc_server.stop(None)


def _describe(error: Mapping[str, Any]) -> str:
    """A settings error naming its environment variable (the model-level ones name it already)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    loc = error.get("loc") or ()
    return f"{env_var(str(loc[0]))}: {message}" if loc else message


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ticketflow-api",
        description="ticketflow HTTP API: submit, follow, list and decide tickets.",
        epilog=_ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version("ticketflow-api"))
    parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "\n".join(f"  {_describe(e)}" for e in exc.errors())
        print(f"ticketflow-api: invalid settings:\n{problems}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        asyncio.run(serve(settings))
    except (GrpcBindError, HttpStartError) as exc:
        print(f"ticketflow-api: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
