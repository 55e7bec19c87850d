"""Probes a container runtime can run as a service's HEALTHCHECK: the service's own readiness.

The images hold no curl or grpcurl, only the service's Python, so each service has a
``healthcheck`` subcommand (``ticketflow-api healthcheck`` and so on) that builds its settings and
calls one of these with the address it listens on:

- ``check_http``: an HTTP GET answered 2xx (the api's ``/readyz``);
- ``check_grpc``: a gRPC health check answered SERVING (the projection's read API);
- ``check_polling``: Temporal lists a poller of this host on every given task queue, seen
  recently (a worker has no port; being polled is what makes it useful, see ``pollers``).

``run_check`` turns one into the process's exit status (0 healthy, 1 not; ``check_status`` without
the exit) and prints one line either way, which ``docker inspect`` / ``podman healthcheck run``
show. ``reach_host`` is where a probe on the same host dials a server bound to ``host`` (a
wildcard bind is reached on loopback).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.client import Client

from .lifecycle import exit_process
from .pollers import QueueKind, pollers

__all__ = [
    "POLL_WINDOW_S",
    "HealthError",
    "check_grpc",
    "check_http",
    "check_polling",
    "check_status",
    "reach_host",
    "run_check",
]

# A polling worker re-polls at least every ~70 s (the long poll's server-side limit); a poller
# not seen for longer than this is gone, although Temporal lists it for a few more minutes.
POLL_WINDOW_S = 90.0
_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


class HealthError(Exception):
    """Not healthy; the message says what the probe saw (never a secret: probes carry none)."""


def reach_host(bind_host: str) -> str:
    """The host a probe on this machine dials for a server bound to ``bind_host``."""
    if bind_host in _WILDCARDS:
        return "127.0.0.1"
    return f"[{bind_host}]" if ":" in bind_host and not bind_host.startswith("[") else bind_host


def check_http(url: str, *, timeout_s: float = 3.0) -> str:
    """GET ``url``; healthy on a 2xx answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return f"{url}: {response.status}"
    except urllib.error.HTTPError as err:
        raise HealthError(f"{url}: {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise HealthError(f"{url}: {reason}") from None


async def check_grpc(address: str, service: str = "", *, timeout_s: float = 3.0) -> str:
    """The standard gRPC health check of ``service`` at ``address``; healthy on SERVING."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as err:
            raise HealthError(f"grpc://{address}: {err.code().name} {err.details()}") from None
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        raise HealthError(f"grpc://{address}: {status}")
    return f"grpc://{address}: {status}"


async def check_polling(
    temporal_address: str,
    namespace: str,
    queues: Iterable[tuple[str, QueueKind]],
    *,
    identity_prefix: str,
    host: str | None = None,
    any_queue: bool = False,
    timeout_s: float = 3.0,
) -> str:
    """Temporal lists a poller ``<identity_prefix>...@<host>`` seen in the last ``POLL_WINDOW_S``
    on every queue (or on one of them, ``any_queue``). ``host`` defaults to this host's name,
    which every ticketflow worker ends its identity with."""
    host = host or socket.gethostname()
    queues = list(queues)
    # A container restarted keeps its host name, and Temporal lists the dead process's poller for
    # minutes: only polls since this container's first process started count.
    since = max(time.time() - POLL_WINDOW_S, init_started_at() or 0.0)
    since_ns = int(since * 1e9)
    try:
        client = await asyncio.wait_for(
            Client.connect(temporal_address, namespace=namespace), timeout_s
        )
        seen = []
        for queue, kind in queues:
            found = await asyncio.wait_for(pollers(client, queue, kind), timeout_s)
            seen.append(
                any(
                    p.identity.startswith(identity_prefix)
                    and p.identity.endswith(f"@{host}")
                    and p.last_access_time.ToNanoseconds() >= since_ns
                    for p in found
                )
            )
    except (TimeoutError, RuntimeError, OSError) as err:
        raise HealthError(f"Temporal at {temporal_address}: {err or type(err).__name__}") from None
    names = ", ".join(q for q, _ in queues)
    if (any(seen) if any_queue else all(seen)) and seen:
        return f"{identity_prefix}...@{host} polls {names}"
    missing = ", ".join(q for (q, _), ok in zip(queues, seen, strict=True) if not ok)
    raise HealthError(f"Temporal lists no recent poller {identity_prefix}...@{host} on {missing}")


def init_started_at() -> float | None:
    """When PID 1 started (epoch seconds): in a container, the service itself or its init; on a
    host, the machine's boot. None when /proc cannot tell."""
    try:
        stat = Path("/proc/1/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        # Field 22, counted after the parenthesised command (which may hold spaces).
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def check_status(prog: str, probe: Callable[[], Coroutine[Any, Any, str] | str]) -> int:
    """Run one probe: 0 and its line on stdout when healthy, 1 and what it saw on stderr when not."""
    try:
        result = probe()
        line = result if isinstance(result, str) else asyncio.run(result)
    except HealthError as err:
        print(f"{prog} healthcheck: NOT healthy: {err}", file=sys.stderr, flush=True)
        return 1
    print(f"{prog} healthcheck: healthy: {line}", flush=True)
    return 0


def run_check(prog: str, probe: Callable[[], Coroutine[Any, Any, str] | str]) -> NoReturn:
    """``check_status``, then end the process with its code at once (``exit_process``). A probe
    that used a Temporal client leaves the SDK's Rust threads running, and an interpreter that
    finalises under them may abort or crash (temporalio/sdk-python#300): a healthy service then
    reads as unhealthy, once in ten runs here."""
    exit_process(check_status(prog, probe))
