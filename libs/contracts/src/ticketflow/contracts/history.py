"""Which boundary type each payload of a workflow history holds (pure: no I/O).

A history stores every payload that crossed a boundary exactly as it was written: workflow input
and result, activity inputs and results, update arguments and results, memo and search-attribute
values. Pairing each with its type from ``boundary`` lets a test decode all of them with today's
models (tests/replay/test_replay.py) and lets ``scripts/freeze_payload_fixtures.py`` keep samples of
each shape as fixtures. Temporal's own payloads (patch markers, ``Temporal*`` search attributes,
failures) are not ours and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from .boundary import ACTIVITIES, MEMOS, SEARCH_ATTRIBUTE_VALUES, UPDATES, WORKFLOWS

__all__ = ["HistoryPayload", "UnregisteredPayloadError", "history_payloads"]


@dataclass(frozen=True)
class HistoryPayload:
    event_id: int
    where: str  # e.g. "activity classify result", "memo classification"
    payload: Payload
    type: type


class UnregisteredPayloadError(LookupError):
    """A payload of ticketflow's in a history has no registered type in ``boundary``."""


def _one(where: str, event_id: int, payloads: list[Payload], tp: type | None) -> HistoryPayload:
    if tp is None:
        raise UnregisteredPayloadError(f"event {event_id}: {where}: no type in boundary.py")
    if len(payloads) != 1:
        raise UnregisteredPayloadError(f"event {event_id}: {where}: {len(payloads)} payloads")
    return HistoryPayload(event_id, where, payloads[0], tp)


def history_payloads(events: Iterable[HistoryEvent]) -> Iterator[HistoryPayload]:
    """Every ticketflow payload in a history's events, with the type it must decode into."""
    workflow_type = ""
    scheduled: dict[int, str] = {}  # activity scheduled event id -> activity name
    updates: dict[int, str] = {}  # update accepted event id -> update name
    for event in events:
        eid, et = event.event_id, event.event_type
        if et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            a = event.workflow_execution_started_event_attributes
            workflow_type = a.workflow_type.name
            pair = WORKFLOWS.get(workflow_type)
            where = f"workflow {workflow_type} input"
            yield _one(where, eid, list(a.input.payloads), pair and pair[0])
            for key, value in a.memo.fields.items():
                yield _one(f"memo {key}", eid, [value], MEMOS.get(key))
            for key, value in a.search_attributes.indexed_fields.items():
                if not key.startswith("Temporal"):
                    yield _one(
                        f"search attribute {key}", eid, [value], SEARCH_ATTRIBUTE_VALUES.get(key)
                    )
        elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            done = event.workflow_execution_completed_event_attributes
            pair = WORKFLOWS.get(workflow_type)
            where = f"workflow {workflow_type} result"
            yield _one(where, eid, list(done.result.payloads), pair and pair[1])
        elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            sched = event.activity_task_scheduled_event_attributes
            name = sched.activity_type.name
            scheduled[eid] = name
            pair = ACTIVITIES.get(name)
            yield _one(f"activity {name} input", eid, list(sched.input.payloads), pair and pair[0])
        elif et == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            act = event.activity_task_completed_event_attributes
            name = scheduled.get(act.scheduled_event_id, "?")
            pair = ACTIVITIES.get(name)
            yield _one(f"activity {name} result", eid, list(act.result.payloads), pair and pair[1])
        elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            acc = event.workflow_execution_update_accepted_event_attributes
            name = acc.accepted_request.input.name
            updates[eid] = name
            pair = UPDATES.get(name)
            args = list(acc.accepted_request.input.args.payloads)
            yield _one(f"update {name} input", eid, args, pair and pair[0])
        elif et == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            upd = event.workflow_execution_update_completed_event_attributes
            if upd.outcome.HasField("success"):
                name = updates.get(upd.accepted_event_id, "?")
                pair = UPDATES.get(name)
                yield _one(
                    f"update {name} result",
                    eid,
                    list(upd.outcome.success.payloads),
                    pair and pair[1],
                )
        elif et == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            ups = event.upsert_workflow_search_attributes_event_attributes
            for key, value in ups.search_attributes.indexed_fields.items():
                if not key.startswith("Temporal"):
                    yield _one(
                        f"search attribute {key}", eid, [value], SEARCH_ATTRIBUTE_VALUES.get(key)
                    )
        elif et == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
            props = event.workflow_properties_modified_event_attributes
            for key, value in props.upserted_memo.fields.items():
                yield _one(f"memo {key}", eid, [value], MEMOS.get(key))
