"""`ticketflow-api` / `python -m ticketflow.api`: serve the HTTP API until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from importlib.metadata import version

import uvicorn
from pydantic import ValidationError

from .app import create_app
from .settings import Settings

log = logging.getLogger("ticketflow.api")

_ENV_HELP = """\
environment (all optional):
  TICKETFLOW_TEMPORAL_ADDRESS   Temporal frontend (127.0.0.1:7233)
  TICKETFLOW_NAMESPACE          Temporal namespace (default)
  TICKETFLOW_HTTP_HOST          bind address (127.0.0.1)
  TICKETFLOW_HTTP_PORT          HTTP port (8000)
  TICKETFLOW_GRPC_PORT          gRPC port (50051)
  TICKETFLOW_PROJECTION_ADDRESS projection read API (127.0.0.1:50052)
  TICKETFLOW_APPROVER_TOKENS    name:token,name:token (without it every decision is refused)
  TICKETFLOW_CONFIDENCE_THRESHOLD, TICKETFLOW_AUTO_APPROVE_LIMIT_CENTS, TICKETFLOW_APPROVAL_TIMEOUT_S,
  TICKETFLOW_AGENT_SCHEDULE_TO_START_S, TICKETFLOW_FALLBACK_SCHEDULE_TO_START_S   policy of new tickets
"""


class _Server(uvicorn.Server):
    """uvicorn's server, announcing the address it really bound (port 0 picks a free one).

    It leaves the signals to `serve`, which owns them for every server in this process: uvicorn
    alone would re-raise SIGTERM after its own shutdown and kill whatever else still drains.
    """

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self._settings = settings

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(
                f"ticketflow-api {version('ticketflow-api')} listening on http://{host}:{port} "
                f"(Temporal at {self._settings.temporal_address}, "
                f"namespace {self._settings.namespace})",
                flush=True,
            )


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or `stop` is set), then drain in-flight requests and return.

    A second signal stops at once, without waiting for in-flight requests.
    """
    stop = stop or asyncio.Event()
    app = create_app(settings)
    http_server = _Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            lifespan="on",
            timeout_graceful_shutdown=10,
            server_header=False,
        ),
        settings,
    )

    def on_signal(signum: int) -> None:
        log.info("%s received: shutting down", signal.Signals(signum).name)
        if stop.is_set():
            http_server.force_exit = True
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    # The gRPC server (ticketflow.v1.TicketService on settings.grpc_port, next issue) starts here,
    # beside uvicorn in this event loop, sharing app.state.gateway and app.state.read_model; it is
    # stopped with a grace period next to `http_server.should_exit = True` below.
    http = asyncio.create_task(http_server.serve(), name="http")
    stopping = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait({http, stopping}, return_when=asyncio.FIRST_COMPLETED)
        http_server.should_exit = True
        await http
    finally:
        stopping.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


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
        problems = "\n".join(
            f"  {'.'.join(map(str, e['loc'])) or '-'}: {e['msg']}" for e in exc.errors()
        )
        print(f"ticketflow-api: invalid settings:\n{problems}", file=sys.stderr)
        raise SystemExit(2) from None
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
