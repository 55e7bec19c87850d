"""Fallback-under-burst benchmark: how many tickets the primary would auto-approve reach a human
when a burst congests the rate-limited primary model (docs/architecture.md, "Agent calls:
timeouts, rate limit, fallback").

Starts its own stack with `ticketflow up` (temp data dir, free loopback ports) with the primary
queue's rate limit at ``--rate`` model calls/s, submits tickets for ``--seconds`` seconds at a pace
whose primary calls (two a ticket: classify and draft) are ``--factor`` times the limit
(``factor * rate / 2`` tickets/s), waits until every ticket is decided or waits for a human,
stops the stack and prints:
- auto-eligible tickets (ones the primary auto-approves: confident, small or no refund) that
  reached a human (WAITING_APPROVAL or ESCALATED instead of auto-approved); target <= 5%;
- tickets that need a human (a big refund, no keyword) that were auto-approved (must be 0);
- the longest wait of any ticket, submission to its decision or to a human's queue, against the
  approval timeout;
- primary model calls per second, from the histories: each primary-queue activity's started
  time (when Temporal's matching handed it to a worker, on the server's clock; a call that timed
  out before a worker took it has none): the most in any 1 s and 10 s window, and the mean while
  the queue was busy, against the rate limit; and the number of calls the mock answered (its
  own log lines), which must match;
- agent calls by tier, and re-asks (primary calls after a fallback answer);
- with ``--agent-workers N``, N agent-worker processes poll the primary queue (the stack's own and
  N-1 more): the limit is the queue's, kept by the server, so N workers must not multiply it.
  The sustained rate is printed as a ratio to the limit (target within +-5%), with each worker's
  share of the calls.

    uv run python bench/fallback_burst.py [--rate 10] [--factor 3] [--seconds 20]
                                          [--agent-workers 3]

Not part of the test command: figures depend on the machine (README, "Benchmarks").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from ticketflow.contracts import names
from ticketflow.runtime.pollers import ACTIVITY, pollers
from ticketflow.testkit import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stack import start_stack, stop_process, stop_stack, wait_ready

CALLS_PER_TICKET = 2  # classify and draft, when the primary answers both
SETTLED = {"WAITING_APPROVAL", "RESOLVED", "REJECTED", "ESCALATED"}
# What the mock primary answers (services/agent-worker mock.py): the first four kinds are
# confident and low-risk, so auto-approved; the last two always need a human.
KINDS: list[tuple[str, bool, dict[str, Any]]] = [
    ("account", True, {"subject": "Cannot login", "body": "I forgot my password"}),
    ("billing", True, {"subject": "Invoice", "body": "question about my invoice"}),
    ("technical", True, {"subject": "App crash", "body": "it shows an error on start"}),
    (
        "small-refund",
        True,
        {"subject": "Refund", "body": "please refund", "requested_refund_cents": 1500},
    ),
    (
        "big-refund",
        False,
        {"subject": "Refund", "body": "please refund", "requested_refund_cents": 25_000},
    ),
    ("unclear", False, {"subject": "Hello", "body": "something about my order"}),
]
# 8 of 10 tickets auto-eligible: the four low-risk kinds twice, then one of each human kind.
MIX = [0, 1, 2, 3, 0, 1, 2, 3, 4, 5]
PRIMARY = "mock-primary-1"
# A model call's log line, in the text format (`2026-11-29 10:00:00,123 ... model mock-primary-1`)
# or as a JSON line (`"timestamp": "2026-11-29T10:00:00.123456Z"`, the format behind a pipe).
LOG_LINE = re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[.,]\d+)Z?\b.*model (mock-\w+-1)")


def ticket_body(i: int) -> tuple[str, bool, dict[str, Any]]:
    kind, eligible, fields = KINDS[MIX[i % len(MIX)]]
    return kind, eligible, {"customer_id": f"c{i}", **fields}


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


def wait_of(view: dict[str, Any]) -> float | None:
    """Seconds from submission to the ticket's decision, or to a human's queue."""
    submitted = stamp(view["ticket"]["submitted_at"])
    decision = view.get("decision")
    if decision and decision.get("auto"):
        return (stamp(decision["decided_at"]) - submitted).total_seconds()
    for change in view.get("history") or []:
        if change["status"] in ("WAITING_APPROVAL", "ESCALATED"):
            return (stamp(change["at"]) - submitted).total_seconds()
    if view.get("outcome"):  # finished: the live answer has no history
        return (stamp(view["outcome"]["finished_at"]) - submitted).total_seconds()
    return None


def primary_call_times(log: Path) -> list[float]:
    """When each primary model call answered, from the agent workers' own log lines."""
    times = []
    for line in log.read_text(errors="replace").splitlines():
        if (m := LOG_LINE.search(line)) and m.group(2) == PRIMARY:
            stamp = m.group(1).replace(",", ".").replace(" ", "T")
            times.append(datetime.fromisoformat(stamp).timestamp())
    return sorted(times)


async def primary_starts(address: str, ticket_ids: list[str]) -> list[tuple[float, str]]:
    """When Temporal handed each primary-queue call to a worker, and to which one
    (ActivityTaskStarted event times: the attempt's start as the server recorded it, and the
    poller's identity), over every ticket's history."""
    client = await Client.connect(address)
    gate = asyncio.Semaphore(16)

    async def one(ticket_id: str) -> list[tuple[float, str]]:
        queues: dict[int, str] = {}
        starts = []
        async with gate:
            handle = client.get_workflow_handle(names.workflow_id(ticket_id))
            async for e in handle.fetch_history_events():
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    queues[e.event_id] = e.activity_task_scheduled_event_attributes.task_queue.name
                elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    started = e.activity_task_started_event_attributes
                    if queues.get(started.scheduled_event_id) == names.AGENT_QUEUE:
                        starts.append((e.event_time.ToDatetime().timestamp(), started.identity))
        return starts

    return sorted(t for ts in await asyncio.gather(*map(one, ticket_ids)) for t in ts)


def start_agent_workers(n: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen[bytes]]:
    """``n`` more agent-worker processes on the primary queue, beside the stack's own."""
    exe = str(Path(sys.executable).parent / "ticketflow-agent-worker")
    procs = []
    for i in range(n):
        with open(logs / f"agent-worker-{i + 2}.log", "wb") as out:
            procs.append(
                subprocess.Popen(
                    [exe, "--queue", "primary"], env=env, stdout=out, stderr=subprocess.STDOUT
                )
            )
    return procs


async def wait_for_pollers(address: str, identities: int, timeout: float = 60) -> None:
    """Until Temporal lists ``identities`` distinct pollers of the primary queue."""
    client = await Client.connect(address)
    deadline = time.monotonic() + timeout
    while True:
        seen = {p.identity for p in await pollers(client, names.AGENT_QUEUE, ACTIVITY)}
        if len(seen) >= identities:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(seen)} of {identities} agent workers polled in time")
        await asyncio.sleep(0.2)  # a poll with a deadline


def most_in_window(times: list[float], window_s: float) -> int:
    """The most calls in any window of ``window_s`` seconds (sliding, not fixed bins)."""
    return max(
        (bisect_right(times, t + window_s - 1e-3) - i for i, t in enumerate(times)), default=0
    )


async def run(args: argparse.Namespace) -> None:
    per_s = args.factor * args.rate / CALLS_PER_TICKET
    total = int(per_s * args.seconds)
    temporal = f"127.0.0.1:{free_port()}"
    env = {
        "TICKETFLOW_TEMPORAL_ADDRESS": temporal,
        "TICKETFLOW_APPROVAL_TIMEOUT_S": str(args.approval_timeout_s),
        "TICKETFLOW_AGENT_MAX_CONCURRENT": str(args.max_concurrent),
    }
    with tempfile.TemporaryDirectory(prefix="ticketflow-bench-") as tmp:
        log = Path(tmp) / "up.log"
        proc, base = start_stack(Path(tmp), args.latency_ms, args.rate, env)
        extra: list[subprocess.Popen[bytes]] = []
        try:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                await wait_ready(client, proc)
                if args.agent_workers > 1:
                    worker_env = {
                        **{k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")},
                        **env,
                        "TICKETFLOW_AGENT_RATE_PER_S": str(args.rate),
                        "TICKETFLOW_MOCK_LATENCY_MS": str(args.latency_ms),
                    }
                    extra = start_agent_workers(args.agent_workers - 1, worker_env, Path(tmp))
                    await wait_for_pollers(temporal, args.agent_workers)
                print(
                    f"stack ready at {base}; primary rate limit {args.rate:g}/s; submitting "
                    f"{total} tickets at {per_s:g}/s for {args.seconds:g}s",
                    flush=True,
                )
                tickets: dict[str, tuple[str, bool]] = {}
                gate = asyncio.Semaphore(32)
                t0 = time.monotonic()

                async def submit(i: int) -> None:
                    await asyncio.sleep(max(0.0, t0 + i / per_s - time.monotonic()))
                    kind, eligible, body = ticket_body(i)
                    async with gate:
                        r = await client.post("/tickets", json=body)
                    r.raise_for_status()
                    tickets[r.json()["ticket_id"]] = (kind, eligible)

                await asyncio.gather(*(submit(i) for i in range(total)))
                print(f"submitted in {time.monotonic() - t0:.1f}s; waiting", flush=True)

                views: dict[str, dict[str, Any]] = {}
                pending = set(tickets)
                deadline = time.monotonic() + args.approval_timeout_s + 120
                while pending and time.monotonic() < deadline:

                    async def check(tid: str) -> None:
                        async with gate:
                            r = await client.get(f"/tickets/{tid}")
                        if r.status_code == 200 and r.json()["status"] in SETTLED:
                            views[tid] = r.json()
                            pending.discard(tid)

                    await asyncio.gather(*(check(t) for t in list(pending)))
                    if pending:
                        print(f"  {len(tickets) - len(pending)}/{len(tickets)} settled", flush=True)
                        await asyncio.sleep(2)
                elapsed = time.monotonic() - t0
            starts = await primary_starts(temporal, list(tickets))
        finally:
            for worker in extra:
                worker.terminate()
            for worker in extra:
                stop_process(worker)
            stop_stack(proc)
            if args.keep_log:
                args.keep_log.write_bytes(log.read_bytes())
        logs = [log, *(Path(tmp) / f"agent-worker-{i + 2}.log" for i in range(len(extra)))]
        report(args, tickets, views, pending, logs, elapsed, starts)


def report(
    args: argparse.Namespace,
    tickets: dict[str, tuple[str, bool]],
    views: dict[str, dict[str, Any]],
    pending: set[str],
    logs: list[Path],
    elapsed: float,
    starts: list[tuple[float, str]],
) -> None:
    def auto(tid: str) -> bool:
        decision = views[tid].get("decision")
        return bool(decision and decision.get("auto"))

    eligible = [t for t, (_, e) in tickets.items() if e and t in views]
    to_human = [t for t in eligible if not auto(t)]
    risky_auto = [t for t, (_, e) in tickets.items() if not e and t in views and auto(t)]
    waits = [w for v in views.values() if (w := wait_of(v)) is not None]
    calls = [c for v in views.values() for c in v.get("agent_calls") or []]
    ok = [c for c in calls if c["ok"]]
    reasks = 0
    for v in views.values():
        seen_fallback = False
        for c in v.get("agent_calls") or []:
            seen_fallback |= c["tier"] == "fallback" and c["ok"]
            reasks += seen_fallback and c["tier"] == "primary"
    answered = sum(len(primary_call_times(log)) for log in logs)
    times = [t for t, _ in starts]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    sustained = (len(times) - args.rate) / span if span else 0.0
    by_worker: dict[str, int] = {}
    for _, identity in starts:
        by_worker[identity] = by_worker.get(identity, 0) + 1
    # Temporal's limit is a token bucket holding one second of tokens: any window of w seconds
    # may see up to rate * (w + 1) calls, and a long window shows the sustained rate.
    windows = ", ".join(
        f"{w:g} s: {most_in_window(times, w)} (bucket allows {args.rate * (w + 1):g})"
        for w in (1, 10)
    )
    share = len(to_human) / len(eligible) if eligible else 0.0
    print(
        f"tickets                     {len(tickets)} submitted, {len(views)} settled, "
        f"{len(pending)} unsettled after {elapsed:.0f}s"
    )
    print(
        f"auto-eligible to a human    {len(to_human)}/{len(eligible)} = {share:.1%} (target <= 5%)"
    )
    print(f"needs-human auto-approved   {len(risky_auto)} (must be 0)")
    print(
        f"longest wait                {max(waits, default=0):.1f}s "
        f"(approval timeout {args.approval_timeout_s:g}s); p50 "
        f"{sorted(waits)[len(waits) // 2] if waits else 0:.1f}s"
    )
    print(
        f"primary model calls         {len(times)} started ({answered} answered, mock log) over "
        f"{span:.1f}s, {sustained:.2f}/s after the bucket's first {args.rate:g} (limit "
        f"{args.rate:g}/s); most in any window of {windows}"
    )
    print(
        f"sustained rate / limit      {sustained / args.rate:.3f} with {len(by_worker)} "
        f"worker(s) taking calls (target 0.95-1.05): "
        + ", ".join(f"{n}" for n in sorted(by_worker.values(), reverse=True))
    )
    print(
        f"agent calls ok              primary {sum(c['tier'] == 'primary' for c in ok)}, "
        f"fallback {sum(c['tier'] == 'fallback' for c in ok)}; failed "
        f"{len(calls) - len(ok)}; primary calls after a fallback answer {reasks}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=float, default=10.0, help="primary rate limit, calls/s")
    ap.add_argument(
        "--factor", type=float, default=3.0, help="primary calls asked for, as a multiple of --rate"
    )
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the burst")
    ap.add_argument("--latency-ms", type=int, default=50, help="mock model latency per call")
    ap.add_argument("--max-concurrent", type=int, default=8, help="model calls per worker")
    ap.add_argument("--approval-timeout-s", type=float, default=300.0)
    ap.add_argument(
        "--agent-workers", type=int, default=1, help="agent-worker processes on the primary queue"
    )
    ap.add_argument("--keep-log", type=Path, help="copy the stack's output (up.log) here")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
