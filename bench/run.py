"""The benchmark: ticketflow end to end over HTTP next to the floor, on fresh servers, one command.

    uv run python bench/run.py [--workload overhead|realistic|burst|all] [--tickets 1000]
                               [--scaling] [--shapes ticketflow,floor] [--light 100]
                               [--json out.json]

Each run starts from nothing: a fresh file-backed Temporal dev server (the same binary, pragmas
and dynamic config as `ticketflow up`), fresh stores, free loopback ports; the sources are
byte-compiled first, as in the images. Shapes:
- ``ticketflow``: `ticketflow up` (api, core-worker, agent-worker, projection), tickets submitted
  over HTTP by ``--concurrency`` clients, a scripted approver for the tickets that need a human;
- ``floor``: a plain Temporal workflow of the ticket workflow's 2026-11 shape with no-op
  activities (bench/_floor.py), started through the Temporal client: the fixed yardstick.

Per run it prints and records: tickets/s (first submission to last finish, server clocks),
submission latency p50/p99 (one HTTP POST or StartWorkflow call) under the run's load and, after
it, at a light load (``--light`` tickets one at a time, 5 a second), ticket latency p50/p99
(submitted to finished, with every side effect done), CPU seconds per ticket per process (the
Temporal server included; the submitting clients are not), the fraction that waited for a
human, and ticketflow's throughput and CPU as a ratio to the floor's. ``--json`` writes every
figure with the machine and commit, for comparison across commits. Workloads: bench/_workloads.py.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
from _floor import AGENT, CORE, PROJECTION, WORKFLOW
from _measure import CpuMeter, machine
from _results import Result, add_ratios, table
from _stack import BENCH_TOKEN, start_stack, stop_process, stop_stack, store_env, wait_ready
from _workloads import OVERHEAD, WORKLOADS, Workload, ticket_body
from sqlalchemy.exc import DBAPIError
from temporalio.client import Client
from ticketflow.projection.store import ReadModelStore
from ticketflow.runtime import pollers
from ticketflow.storage import StoreUrl, parse_store_url
from ticketflow.testkit import DevServer, wait_until_polling
from tqdm import tqdm

HERE = Path(__file__).resolve().parent


LIGHT_PACE = 5.0  # tickets/s of the light-load probe: far below what either shape sustains


async def submit_light(n: int, send, label: str) -> None:
    """``send(i)`` for ``n`` tickets one at a time, ``LIGHT_PACE`` a second: the submission
    latency of a system that is not busy (run after the main batch finished)."""
    if n <= 0:
        return
    light = replace(OVERHEAD, pace=LIGHT_PACE)
    await submit_all(n, light, 1, send, f"{label}: light load")


async def submit_all(n: int, workload: Workload, concurrency: int, send, label: str) -> None:
    """Call ``send(i)`` for every ticket with ``concurrency`` workers, paced by the workload."""
    bar = tqdm(total=n, desc=f"{label}: submitted", unit="t", leave=False)
    next_i = 0
    t0 = time.monotonic()

    async def worker() -> None:
        nonlocal next_i
        while next_i < n:
            i, next_i = next_i, next_i + 1
            if workload.pace:
                delay = t0 + i / workload.pace - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing the load, not synchronisation
            await send(i)
            bar.update()

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        bar.close()


# ---- ticketflow ----------------------------------------------------------------------------


async def run_ticketflow(
    n: int,
    workload: Workload,
    concurrency: int,
    store: str,
    keep: bool,
    light: int,
    env: dict[str, str],
) -> Result:
    result = Result("ticketflow", workload.name, n)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ticketflow-bench-")))
        extra = {
            "TICKETFLOW_MOCK_LATENCY_JITTER_MS": str(workload.jitter_ms),
            "TICKETFLOW_MOCK_FAILURE_RATE": str(workload.failure_rate),
            **store_env(store, stack),
            **env,
        }
        proc, base = start_stack(tmp, workload.latency_ms, workload.rate, extra_env=extra)
        try:
            headers = {"Authorization": f"Bearer {BENCH_TOKEN}"}
            limits = httpx.Limits(max_connections=concurrency + 10)
            async with httpx.AsyncClient(
                base_url=base, timeout=60, headers=headers, limits=limits
            ) as client:
                await wait_ready(client, proc)
                meter = CpuMeter(proc.pid)
                meter.start()
                ids: list[str] = []

                async def post(i: int, timings: list[float]) -> str:
                    t = time.monotonic()
                    r = await client.post("/tickets", json=ticket_body(i, workload.humans))
                    timings.append(time.monotonic() - t)
                    r.raise_for_status()
                    return str(r.json()["ticket_id"])

                async def send(i: int) -> None:
                    ids.append(await post(i, result.submit_s))

                async def send_light(i: int) -> None:
                    await post(n + i, result.light_submit_s)

                approver = asyncio.create_task(approve_forever(client)) if workload.humans else None
                try:
                    await submit_all(n, workload, concurrency, send, "ticketflow")
                    # Read only: the projection owns the store (and may still be making it).
                    view = ReadModelStore(readmodel_url(tmp, extra), prepare=False)
                    try:
                        await wait_recorded(view, n)
                        result.cpu_s = meter.sample()
                        collect(view, ids, result)
                        await submit_light(light, send_light, "ticketflow")
                    finally:
                        view.close()
                finally:
                    if approver is not None:
                        approver.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await approver
        finally:
            stop_stack(proc)
            if keep:
                print(f"ticketflow's logs: {tmp / 'up.log'} (kept)", flush=True)
                stack.pop_all()
    return result


async def approve_forever(client: httpx.AsyncClient) -> None:
    """The scripted approver: every ticket in the approval queue is approved, oldest first."""
    while True:
        r = await client.get("/tickets", params={"status": "WAITING_APPROVAL", "limit": 100})
        if r.status_code == 200:
            for t in r.json()["tickets"]:
                await client.post(
                    f"/tickets/{t['ticket_id']}/decision",
                    json={"approved": True, "reason": "benchmark approver"},
                )
        await asyncio.sleep(0.5)  # an approver's polling interval, not synchronisation


def readmodel_url(data_dir: Path, env: dict[str, str]) -> StoreUrl:
    return parse_store_url(
        env.get("TICKETFLOW_READMODEL_URL", "sqlite:///readmodel.db"), data_dir=data_dir
    )


async def wait_recorded(view: ReadModelStore, n: int) -> None:
    """Until the read model holds every ticket's outcome: the projection records it as the
    workflow's last step, after every side effect. Read straight from the store, so waiting asks
    nothing of Temporal or the services (a status query per ticket would replay its workflow)."""
    bar = tqdm(total=n, desc="ticketflow: finished", unit="t", leave=False)
    try:
        while (done := await asyncio.to_thread(recorded, view)) < n:
            bar.update(done - bar.n)
            await asyncio.sleep(1.0)  # a progress poll, not synchronisation
        bar.update(n - bar.n)
    finally:
        bar.close()


def recorded(view: ReadModelStore) -> int:
    try:
        return view.count()
    except DBAPIError:  # the projection has not made its table yet
        return 0


def collect(view: ReadModelStore, ids: list[str], result: Result) -> None:
    """Each submitted ticket's outcome, from the read model."""
    outcomes = {row.ticket_id: row.outcome for row in view.rows()}
    for tid in ids:
        outcome = outcomes[tid]
        submitted = outcome.ticket.submitted_at
        assert submitted is not None, "the api stamps every ticket it accepts"
        result.finished(submitted.timestamp(), outcome.finished_at.timestamp())
        status = outcome.status.value
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if outcome.decision is not None and not outcome.decision.auto:
            result.humans += 1


# ---- the floor -----------------------------------------------------------------------------


def start_floor_worker(address: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, str(HERE / "_floor.py"), address],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


async def run_floor(n: int, workload: Workload, concurrency: int, light: int) -> Result:
    result = Result("floor", workload.name, n)
    with tempfile.TemporaryDirectory(prefix="ticketflow-floor-") as tmp:
        with DevServer(db_filename=Path(tmp) / "temporal.db") as server:
            assert server.process is not None
            worker = start_floor_worker(server.address, Path(tmp) / "worker.log")
            try:
                client = await Client.connect(server.address)
                queues = [
                    (CORE, pollers.WORKFLOW),
                    (CORE, pollers.ACTIVITY),
                    (AGENT, pollers.ACTIVITY),
                    (PROJECTION, pollers.ACTIVITY),
                ]
                await wait_until_polling(client, queues, timeout=60)
                meter = CpuMeter(server.process.pid, worker.pid)
                meter.start()
                handles = []

                async def start(i: int, timings: list[float]):
                    refund = "requested_refund_cents" in ticket_body(i, False)
                    t = time.monotonic()
                    handle = await client.start_workflow(
                        WORKFLOW, refund, id=f"floor-{i}", task_queue=CORE
                    )
                    timings.append(time.monotonic() - t)
                    return handle

                async def send(i: int) -> None:
                    handles.append(await start(i, result.submit_s))

                async def send_light(i: int) -> None:
                    await start(n + i, result.light_submit_s)

                await submit_all(n, workload, concurrency, send, "floor")
                bar = tqdm(total=n, desc="floor: finished", unit="t", leave=False)
                limit = asyncio.Semaphore(64)

                async def wait(handle) -> None:
                    async with limit:
                        times = await handle.result()
                    result.finished(times["started"], times["finished"])
                    bar.update()

                await asyncio.gather(*(wait(h) for h in handles))
                bar.close()
                result.statuses = {"RESOLVED": len(result.latency_s)}  # each result came back
                result.cpu_s = meter.sample()
                await submit_light(light, send_light, "floor")
            finally:
                worker.terminate()
                stop_process(worker)
    return result


# ---- report --------------------------------------------------------------------------------


def compile_sources() -> None:
    """Byte-compile the workspace's sources, as the images do at install (`--compile-bytecode`).
    The workflow sandbox imports a workflow's module afresh for every workflow run; without a
    cached .pyc (a checkout never imported, or PYTHONDONTWRITEBYTECODE set) each of those imports
    compiles the source again, a cost no deployed worker pays."""
    root = HERE.parent
    dirs = [HERE, *sorted(root.glob("libs/*/src")), *sorted(root.glob("services/*/src"))]
    for path in dirs:
        if not compileall.compile_dir(path, quiet=1):
            raise SystemExit(f"could not byte-compile {path}: fix the error above")


async def main_async(args: argparse.Namespace) -> int:
    compile_sources()
    workloads = list(WORKLOADS) if args.workload == "all" else [args.workload]
    sizes = [300, 1000, 3000] if args.scaling else [args.tickets]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    rows: list[dict[str, object]] = []
    env = {} if args.worker_nice is None else {"TICKETFLOW_WORKER_NICE": str(args.worker_nice)}
    for name in workloads:
        workload = WORKLOADS[name]
        print(f"workload {name}: {workload.what}", flush=True)
        for n in sizes:
            for shape in shapes:
                started = time.monotonic()
                print(f"- {shape}, {n} tickets ...", flush=True)
                if shape == "ticketflow":
                    res = await run_ticketflow(
                        n, workload, args.concurrency, args.store, args.keep, args.light, env
                    )
                elif shape == "floor":
                    res = await run_floor(n, workload, args.concurrency, args.light)
                else:
                    raise SystemExit(f"unknown shape {shape!r}: use ticketflow and/or floor")
                row = res.figures()
                rows.append(row)
                print(
                    f"  {row['tickets_per_s']} tickets/s, {row['cpu_s_per_ticket']} CPU-s per "
                    f"ticket ({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
    add_ratios(rows)
    print()
    print(table(rows))
    print()
    for row in rows:
        per = ", ".join(f"{k} {v}" for k, v in row["cpu_s_per_ticket_by_process"].items())  # type: ignore[union-attr]
        print(f"{row['shape']}/{row['workload']}/{row['tickets']}: CPU-s per ticket: {per}")
    if args.json:
        report = {"machine": machine(), "concurrency": args.concurrency, "runs": rows}
        write_json(Path(args.json), report)
        print(f"\nwrote {args.json}")
    return 0


def write_json(path: Path, report: dict[str, object]) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--workload", choices=[*WORKLOADS, "all"], default="overhead")
    ap.add_argument("--tickets", type=int, default=1000, help="tickets per run (default 1000)")
    ap.add_argument("--scaling", action="store_true", help="300, 1000 and 3000 tickets")
    ap.add_argument("--shapes", default="ticketflow,floor", help="ticketflow, floor, or both")
    ap.add_argument("--concurrency", type=int, default=20, help="submitting clients (20)")
    ap.add_argument(
        "--light",
        type=int,
        default=100,
        help=f"after each run, tickets submitted one at a time at {LIGHT_PACE:g}/s (100)",
    )
    ap.add_argument(
        "--worker-nice",
        type=int,
        choices=range(20),
        metavar="0-19",
        help="TICKETFLOW_WORKER_NICE for ticketflow's workers (default: ticketflow up's, 10)",
    )
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--keep", action="store_true", help="keep ticketflow's data dir and logs")
    args = ap.parse_args()
    if args.tickets < 1 or args.concurrency < 1 or args.light < 0:
        ap.error("--tickets and --concurrency must be at least 1, --light at least 0")
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
