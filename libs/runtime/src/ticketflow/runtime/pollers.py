"""Is a worker ready? Only when Temporal sees it polling its task queue.

An open port or a started process says nothing about whether Temporal can hand a worker work; a
``DescribeTaskQueue`` that lists a poller does. ``polling(...)`` answers for a set of queues,
optionally only for pollers seen since an instant (ignoring a previous run's) or with a given
identity (ignoring other workers of the same queue).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TypeAlias

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

__all__ = ["ACTIVITY", "WORKFLOW", "QueueKind", "pollers", "polling"]

QueueKind: TypeAlias = TaskQueueType.ValueType
WORKFLOW: QueueKind = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
ACTIVITY: QueueKind = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY


async def pollers(client: Client, queue: str, kind: QueueKind) -> list[PollerInfo]:
    """The pollers Temporal currently lists for one task queue and kind."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=kind,
        ),
        timeout=timedelta(seconds=2),
    )
    return list(response.pollers)


async def polling(
    client: Client,
    queues: Iterable[tuple[str, QueueKind]],
    *,
    since_epoch_s: float | None = None,
    identity: str | None = None,
) -> bool:
    """True when every (queue, kind) has a poller matching ``since_epoch_s`` and ``identity``."""
    since_ns = None
    if since_epoch_s is not None:
        stamp = Timestamp()
        stamp.FromNanoseconds(int(since_epoch_s * 1e9))
        since_ns = stamp.ToNanoseconds()
    for queue, kind in queues:
        seen = [
            p
            for p in await pollers(client, queue, kind)
            if (since_ns is None or p.last_access_time.ToNanoseconds() >= since_ns)
            and (identity is None or p.identity == identity)
        ]
        if not seen:
            return False
    return True
