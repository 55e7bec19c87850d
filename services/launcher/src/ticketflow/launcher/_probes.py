"""Readiness probes: synchronous callables that the supervisor polls until they return True."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Iterable
from datetime import timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from .devserver import port_is_open

__all__ = ["TemporalPollers", "http_ok", "tcp_open"]


def tcp_open(host: str, port: int) -> bool:
    return port_is_open(host, port, timeout=0.5)


def http_ok(url: str) -> bool:
    """True on an HTTP 2xx answer (e.g. the api's /readyz, which is 503 until Temporal answers)."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False


class TemporalPollers:
    """Asks Temporal whether a worker started after a given moment polls a task queue.

    A worker counts as ready once it polls: that is when Temporal can hand it work. Comparing the
    poller's last access with the worker's start time ignores pollers of a previous run, without
    relying on how a worker names its identity.
    """

    def __init__(self, address: str, namespace: str) -> None:
        self.address = address
        self.namespace = namespace
        self._loop = asyncio.new_event_loop()
        self._client: Client | None = None

    def close(self) -> None:
        self._loop.close()

    def polled_since(
        self, queues: Iterable[tuple[str, TaskQueueType.ValueType]], since_epoch_s: float
    ) -> bool:
        """True when every (queue, type) has a poller seen at or after ``since_epoch_s``."""
        return self._loop.run_until_complete(self._polled_since(list(queues), since_epoch_s))

    async def _polled_since(
        self, queues: list[tuple[str, TaskQueueType.ValueType]], since_epoch_s: float
    ) -> bool:
        if self._client is None:
            self._client = await asyncio.wait_for(
                Client.connect(self.address, namespace=self.namespace), timeout=2.0
            )
        since = Timestamp()
        since.FromNanoseconds(int(since_epoch_s * 1e9))
        for queue, queue_type in queues:
            response = await self._client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=self.namespace,
                    task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                    task_queue_type=queue_type,
                ),
                timeout=timedelta(seconds=2),
            )
            fresh = [
                p
                for p in response.pollers
                if p.last_access_time.ToNanoseconds() >= since.ToNanoseconds()
            ]
            if not fresh:
                return False
        return True
