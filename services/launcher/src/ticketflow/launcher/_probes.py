"""Readiness probes: synchronous callables that the supervisor polls until they return True."""

from __future__ import annotations

import asyncio
import functools
import urllib.error
import urllib.request
from collections.abc import Iterable

from temporalio.client import Client
from ticketflow.runtime import pollers
from ticketflow.runtime.net import port_is_open

from ._child import Probe

__all__ = ["TemporalPollers", "all_of", "http_ok", "tcp_open"]


def tcp_open(host: str, port: int) -> bool:
    return port_is_open(host, port, timeout=0.5)


def http_ok(url: str) -> bool:
    """True on an HTTP 2xx answer (e.g. the api's /readyz, which is 503 until Temporal answers)."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            status: int = response.status
    except (urllib.error.URLError, OSError):
        return False
    return 200 <= status < 300


def all_of(*probes: Probe) -> Probe:
    """Ready when every probe is, asked in order (a cheap one first spares the others)."""
    return lambda: all(probe() for probe in probes)


class TemporalPollers:
    """Asks Temporal whether a worker started after a given moment polls its task queues.

    A worker counts as ready once it polls: that is when Temporal can hand it work. Comparing the
    poller's last access with the worker's start time ignores pollers of a previous run, without
    relying on how a worker names its identity. The answer comes from
    ``ticketflow.runtime.pollers.polling``; this class only makes it a synchronous probe, on an
    event loop of its own that keeps one client across calls.
    """

    def __init__(self, address: str, namespace: str) -> None:
        self.address = address
        self.namespace = namespace
        self._loop = asyncio.new_event_loop()
        self._client: Client | None = None

    def close(self) -> None:
        self._loop.close()

    def probe(
        self, queues: Iterable[tuple[str, pollers.QueueKind]], *, since_epoch_s: float
    ) -> Probe:
        """A probe of ``polled_since(queues, since_epoch_s)``."""
        return functools.partial(self.polled_since, tuple(queues), since_epoch_s)

    def polled_since(
        self, queues: Iterable[tuple[str, pollers.QueueKind]], since_epoch_s: float
    ) -> bool:
        """True when every (queue, kind) has a poller seen at or after ``since_epoch_s``."""
        return self._loop.run_until_complete(self._polled_since(list(queues), since_epoch_s))

    async def _polled_since(
        self, queues: list[tuple[str, pollers.QueueKind]], since_epoch_s: float
    ) -> bool:
        if self._client is None:
            # One short attempt, not ticketflow.runtime.connect's backoff: the supervisor polls
            # this probe again shortly and prints the progress of the wait itself.
            self._client = await asyncio.wait_for(
                Client.connect(self.address, namespace=self.namespace), timeout=2.0
            )
        return await pollers.polling(self._client, queues, since_epoch_s=since_epoch_s)
