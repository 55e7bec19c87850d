"""A side effect and its count go together, even when the activity is cancelled mid-write.

Refunds and replies run as local activities (workflow v6). When a worker evicts a workflow with a
local activity in flight, Temporal cancels it and runs it again on replay; for a synchronous
activity the cancellation is an exception raised in its thread at whatever line it is on. If that
line sits between the committed write and the metric, the effect is made but never counted, and the
rerun finds it made (``already_sent``) and counts nothing either. Here the write pauses right after
its commit, the activity is cancelled there, and the counter must still say one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio.exceptions import CancelledError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment
from ticketflow.contracts.models import IssueRefundInput, ReplyKind, SendReplyInput
from ticketflow.core_worker._store import LedgerStore
from ticketflow.core_worker.activities import SideEffectActivities
from ticketflow.core_worker.ledger import RefundLedger
from ticketflow.core_worker.outbox import ReplyOutbox
from ticketflow.testkit import eventually, free_port, metric_value, scrape


class Pause:
    """Holds the calling thread right after a store write committed, until released."""

    def __init__(self) -> None:
        self.committed = threading.Event()
        self._release = threading.Event()
        self.enabled = True

    def hold(self) -> None:
        if not self.enabled:
            return
        self.committed.set()
        assert self._release.wait(timeout=30), "the test never released the paused write"

    def release(self) -> None:
        self._release.set()


class PausingLedger(RefundLedger):
    def __init__(self, store: LedgerStore, pause: Pause) -> None:
        super().__init__(store)
        self._pause = pause

    def apply_refund(self, **kwargs: Any) -> Any:
        row = super().apply_refund(**kwargs)
        self._pause.hold()
        return row


class PausingOutbox(ReplyOutbox):
    def __init__(self, store: LedgerStore, pause: Pause) -> None:
        super().__init__(store)
        self._pause = pause

    def send_reply(self, **kwargs: Any) -> Any:
        row = super().send_reply(**kwargs)
        self._pause.hold()
        return row


@pytest.fixture
def metered() -> Iterator[tuple[Runtime, str]]:
    address = f"127.0.0.1:{free_port()}"
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=address, counters_total_suffix=True)
        )
    )
    yield runtime, address


REFUND = IssueRefundInput(ticket_id="t1", customer_id="c1", order_id="o1", amount_cents=1500)
REPLY = SendReplyInput(ticket_id="t1", customer_id="c1", kind=ReplyKind.RESOLUTION, body="done")

CASES: dict[str, tuple[Callable[[SideEffectActivities], Callable[..., Any]], Any, str, dict]] = {
    "refund": (lambda a: a.issue_refund, REFUND, "ticketflow_refunds_paid_total", {}),
    "reply": (
        lambda a: a.send_reply,
        REPLY,
        "ticketflow_replies_sent_total",
        {"kind": "resolution"},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_effect_cancelled_after_its_commit_is_counted_once(
    case: str, ledger_store: LedgerStore, metered: tuple[Runtime, str]
) -> None:
    runtime, address = metered
    pick, inp, metric, labels = CASES[case]
    pause = Pause()
    activities = SideEffectActivities(
        PausingLedger(ledger_store, pause), PausingOutbox(ledger_store, pause)
    )
    env = ActivityEnvironment()
    env.metric_meter = runtime.metric_meter
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(env.run, pick(activities), inp)
        assert pause.committed.wait(timeout=30), "the activity never reached its write"
        env.cancel()  # as an eviction does to a local activity in flight
        pause.release()
        with pytest.raises(CancelledError):
            running.result(timeout=30)

    # The rerun on replay finds the effect made and counts nothing more.
    pause.enabled = False
    again = ActivityEnvironment()
    again.metric_meter = runtime.metric_meter
    receipt = again.run(pick(activities), inp)
    assert getattr(receipt, "already_applied", None) or getattr(receipt, "already_sent", None)

    def counted() -> float:
        value = metric_value(scrape(address), metric, **labels)
        assert value >= 1, f"{metric} not counted yet"
        return value

    assert eventually(counted, timeout=10, what=f"{metric} counted") == 1
