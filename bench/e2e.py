"""End-to-end benchmark: tickets through the whole system, from HTTP submission to every side effect.

Starts its own stack with `ticketflow up` (temp data dir, free loopback ports, no UI), submits
``--tickets`` tickets with ``--concurrency`` HTTP clients, waits until each is terminal with its side
effects done, then stops the stack and prints:
- submission rate (HTTP 202s per second),
- end-to-end throughput (tickets finished per second, first submission to last finish),
- latency from submission to finish (server clocks: ticket.submitted_at -> outcome.finished_at),
  min / p50 / p95 / max.
The mix is reply-only account tickets and small refunds (all auto-approved, no human in the loop),
so the figures measure the machinery, not a waiting approver.

    uv run python bench/e2e.py --tickets 200 --concurrency 20 [--latency-ms 0] [--store postgresql]

``--store postgresql`` puts the ledger, the outbox and the read model on a real PostgreSQL (the
test kit's server from the pgserver wheel, on a free loopback port, stopped afterwards) instead
of the SQLite files, to compare both backends on the same batch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from _stack import start_stack, stop_stack, store_env, wait_ready


def body(i: int) -> dict:
    if i % 2:
        return {
            "customer_id": f"c{i}",
            "subject": "Refund",
            "body": "please refund",
            "requested_refund_cents": 100 + i % 4000,
        }
    return {"customer_id": f"c{i}", "subject": "Cannot login", "body": "forgot my password"}


async def run(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="ticketflow-bench-") as tmp,
        contextlib.ExitStack() as stores,
    ):
        extra = store_env(args.store, stores)
        proc, base = start_stack(Path(tmp), args.latency_ms, args.rate, extra_env=extra)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                await wait_ready(client, proc)
                print(
                    f"stack ready at {base}; submitting {args.tickets} tickets "
                    f"with {args.concurrency} clients",
                    flush=True,
                )
                queue: asyncio.Queue[int] = asyncio.Queue()
                for i in range(args.tickets):
                    queue.put_nowait(i)
                ids: list[str] = []

                async def submitter() -> None:
                    while not queue.empty():
                        i = queue.get_nowait()
                        r = await client.post("/tickets", json=body(i))
                        r.raise_for_status()
                        ids.append(r.json()["ticket_id"])

                t0 = time.monotonic()
                await asyncio.gather(*(submitter() for _ in range(args.concurrency)))
                submit_s = time.monotonic() - t0
                print(
                    f"submitted in {submit_s:.1f}s; waiting for every ticket to finish", flush=True
                )

                pending, latencies, last_finish, first_submit = set(ids), [], None, None
                while pending:
                    done = []
                    for tid in list(pending)[:200]:
                        r = await client.get(f"/tickets/{tid}")
                        if r.status_code == 200 and r.json()["side_effects_done"]:
                            t = r.json()
                            sub = t["ticket"]["submitted_at"]
                            fin = t["outcome"]["finished_at"]
                            s, f = datetime.fromisoformat(sub), datetime.fromisoformat(fin)
                            latencies.append((f - s).total_seconds())
                            first_submit = min(first_submit or s, s)
                            last_finish = max(last_finish or f, f)
                            done.append(tid)
                    pending.difference_update(done)
                    if pending:
                        print(f"  {len(ids) - len(pending)}/{len(ids)} finished", flush=True)
                        await asyncio.sleep(0.5)
                span = (last_finish - first_submit).total_seconds()
                latencies.sort()
                p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
                print(f"tickets              {len(ids)}")
                print(f"submission rate      {len(ids) / submit_s:.1f} /s")
                print(
                    f"end-to-end throughput {len(ids) / span:.1f} tickets/s "
                    f"(first submission to last finish: {span:.1f}s)"
                )
                print(
                    f"latency s            min {latencies[0]:.2f}  p50 {p(0.5):.2f}  "
                    f"p95 {p(0.95):.2f}  max {latencies[-1]:.2f}  "
                    f"mean {statistics.fmean(latencies):.2f}"
                )
        finally:
            stop_stack(proc)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tickets", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--latency-ms", type=int, default=0, help="mock model latency per call")
    ap.add_argument(
        "--store",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="where the ledger, outbox and read model live (default: the SQLite files)",
    )
    ap.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="agent queue rate limit (calls/s); default high so it does not bind",
    )
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
