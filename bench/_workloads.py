"""The benchmark's workloads and ticket mixes."""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["WORKLOADS", "Workload", "ticket_body"]


@dataclass(frozen=True)
class Workload:
    name: str
    what: str
    rate: float  # the agent queue's rate limit, calls/s (both model calls of a ticket count)
    latency_ms: int  # mock model latency per call ...
    jitter_ms: int  # ... plus a uniform extra in [0, jitter)
    failure_rate: float  # transient model failures per attempt
    pace: float | None  # tickets submitted per second in all; None: as fast as the clients go
    humans: bool  # a mix with tickets for a human, approved by a scripted approver


OVERHEAD = Workload(
    "overhead",
    "the machinery alone: rate limit out of the way, model latency 0, no failures, every ticket "
    "auto-approved, submitted as fast as the clients go",
    rate=1000,
    latency_ms=0,
    jitter_ms=0,
    failure_rate=0.0,
    pace=None,
    humans=False,
)
STEADY = replace(
    OVERHEAD,
    name="steady",
    what="the overhead workload submitted at 12 tickets/s, about 90% of what it sustains on a "
    "2-core machine: full load without a growing backlog",
    pace=12.0,
)
REALISTIC = Workload(
    "realistic",
    "rate limit 10 calls/s, model latency uniform 0-3 s, 10% transient failures, one ticket in "
    "five for a human (a scripted approver), 4 tickets/s submitted",
    rate=10,
    latency_ms=0,
    jitter_ms=3000,
    failure_rate=0.1,
    pace=4.0,
    humans=True,
)
BURST = replace(
    REALISTIC,
    name="burst",
    what="the realistic workload submitted at 3x its pace (12 tickets/s), above what the rate "
    "limit lets the primary model answer",
    pace=REALISTIC.pace * 3 if REALISTIC.pace else None,
)
WORKLOADS = {w.name: w for w in (OVERHEAD, STEADY, REALISTIC, BURST)}


def ticket_body(i: int, humans: bool) -> dict[str, object]:
    """Ticket ``i`` of a batch. Without humans: half small refunds, half account questions (all
    auto-approved). With humans, per ten: four account, four small refunds, one refund over the
    auto-approve limit and one that no rule classifies (both wait for a human)."""
    kind = i % 10 if humans else (4 if i % 2 else 0)
    base = {"customer_id": f"c{i}"}
    if kind < 4:
        return {**base, "subject": "Cannot login", "body": "forgot my password"}
    if kind < 8:
        return {
            **base,
            "subject": "Refund",
            "body": "please refund",
            "requested_refund_cents": 100 + i % 4000,
        }
    if kind == 8:
        return {
            **base,
            "subject": "Refund",
            "body": "please refund",
            "requested_refund_cents": 7500 + i,
        }
    return {**base, "subject": "Question", "body": "something odd happened"}
