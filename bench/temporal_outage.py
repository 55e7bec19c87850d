"""How fast the api answers while Temporal is down, and how soon it serves again once it is back.

Starts a Temporal dev server (file-backed, temp dir) and the api alone (`python -m ticketflow.api`,
free loopback ports, no projection, no worker), submits one ticket while Temporal is up (so the
api's client is connected), stops the dev server, then sends ``--rounds`` rounds of

- ``POST /tickets`` (a generated ticket_id: no read-model lookup),
- ``GET /tickets?status=WAITING_APPROVAL`` (the approval queue),
- ``POST /tickets/{id}/decision`` (on the ticket submitted before),
- gRPC ``SubmitTicket``,
- ``GET /readyz``,

one after the other, each with a client timeout of ``--client-timeout`` seconds (long by default,
so the figure is the api's own answer time, not the client's patience). It prints, per call, the
answers (status and ``Retry-After``) and the time to answer: the first round, the median and the
maximum. Then it restarts the dev server on the same port and database and prints how long the
api takes to answer ``POST /tickets`` with 202 again.

    uv run python bench/temporal_outage.py [--rounds 10] [--client-timeout 30]

Settings of the api (``TICKETFLOW_*``, e.g. ``TICKETFLOW_RPC_TIMEOUT_S``) pass through from the
environment, so the same script compares configurations.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx
from _stack import stop_stack
from ticketflow.testkit import DevServer, free_port
from ticketflow.v1 import ticket_pb2, ticket_pb2_grpc

TOKEN = "bench-token-0123456789"
CALLS = ("POST /tickets", "GET /tickets", "POST decision", "gRPC SubmitTicket", "GET /readyz")


def start_api(temporal_address: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    key = base64.b64encode(os.urandom(32)).decode()
    env = {
        **os.environ,
        "TICKETFLOW_TEMPORAL_ADDRESS": temporal_address,
        "TICKETFLOW_HTTP_PORT": "0",
        "TICKETFLOW_GRPC_PORT": "0",
        "TICKETFLOW_PROJECTION_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens
        "TICKETFLOW_APPROVER_TOKENS": f"bench:{TOKEN}",
        "TICKETFLOW_DECISION_KEYS": f"bench:{key}",
        "TICKETFLOW_CORE_QUEUE": "bench-outage",  # no worker: tickets just wait
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ticketflow.api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(log_path, "wb"),  # the process owns it until it exits
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"listening on (http://\S+) and grpc://(\S+) ", line)
    if match is None:
        proc.kill()
        raise SystemExit(f"the api did not start: {line!r}; see {log_path}")
    return proc, match.group(1), match.group(2)


def ticket(i: int) -> dict[str, object]:
    return {"customer_id": f"c{i}", "subject": "Refund", "body": "please refund"}


async def one_round(
    http: httpx.AsyncClient, stub: ticket_pb2_grpc.TicketServiceStub, ticket_id: str, i: int
) -> dict[str, tuple[float, str]]:
    """Each call once, in turn: {call: (seconds, answer)}."""
    timeout = http.timeout.read or 30.0
    results: dict[str, tuple[float, str]] = {}

    async def timed(name: str, call: object) -> None:
        start = time.perf_counter()
        try:
            if name == "gRPC SubmitTicket":
                await call  # type: ignore[misc]
                answer = "OK"
            else:
                response: httpx.Response = await call  # type: ignore[misc]
                retry = response.headers.get("retry-after")
                answer = f"{response.status_code}" + (f" Retry-After {retry}" if retry else "")
        except grpc.aio.AioRpcError as exc:
            retry = dict(exc.trailing_metadata() or ()).get("retry-after")
            answer = exc.code().name + (f" retry-after {retry}" if retry else "")
        except httpx.TimeoutException:
            answer = f"client timeout ({timeout:g}s)"
        results[name] = (time.perf_counter() - start, answer)

    await timed("POST /tickets", http.post("/tickets", json=ticket(i)))
    await timed("GET /tickets", http.get("/tickets", params={"status": "WAITING_APPROVAL"}))
    await timed(
        "POST decision",
        http.post(
            f"/tickets/{ticket_id}/decision",
            json={"approved": True, "reason": "bench"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ),
    )
    await timed(
        "gRPC SubmitTicket",
        stub.SubmitTicket(
            ticket_pb2.SubmitTicketRequest(customer_id=f"g{i}", subject="Refund", body="refund"),
            timeout=timeout,
        ),
    )
    await timed("GET /readyz", http.get("/readyz"))
    return results


async def run(rounds: int, client_timeout: float, workdir: Path) -> None:
    server = DevServer(db_filename=workdir / "temporal.db")
    await asyncio.to_thread(server.start)
    api: subprocess.Popen[bytes] | None = None
    try:
        api, base_url, grpc_address = start_api(server.address, workdir / "api.log")
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=client_timeout) as http,
            grpc.aio.insecure_channel(grpc_address) as channel,
        ):
            stub = ticket_pb2_grpc.TicketServiceStub(channel)
            created = await http.post("/tickets", json=ticket(0))
            assert created.status_code == 202, created.text
            ticket_id = created.json()["ticket_id"]

            await asyncio.to_thread(server.stop)
            print(f"Temporal stopped; {rounds} rounds, client timeout {client_timeout:g}s\n")
            per_call: dict[str, list[tuple[float, str]]] = {name: [] for name in CALLS}
            for i in range(rounds):
                for name, result in (await one_round(http, stub, ticket_id, i + 1)).items():
                    per_call[name].append(result)

            print(f"{'call':<20} {'first':>8} {'median':>8} {'max':>8}  answers")
            for name, results in per_call.items():
                times = [t for t, _ in results]
                answers = Counter(re.sub(r"(?i)(retry-after) \d+", r"\1 n", a) for _, a in results)
                listed = ", ".join(f"{n}x {a}" for a, n in answers.items())
                print(
                    f"{name:<20} {times[0]:>7.3f}s {statistics.median(times):>7.3f}s "
                    f"{max(times):>7.3f}s  {listed}"
                )

            await asyncio.to_thread(server.start)
            back = time.perf_counter()
            deadline = back + 120
            while time.perf_counter() < deadline:
                response = await http.post("/tickets", json=ticket(0))
                if response.status_code == 202:
                    print(
                        f"\nTemporal back: POST /tickets answered 202 after "
                        f"{time.perf_counter() - back:.2f}s"
                    )
                    break
                await asyncio.sleep(0.1)
            else:
                print("\nTemporal back, but the api did not answer 202 within 120s")
    finally:
        if api is not None:
            stop_stack(api, timeout=15)
        await asyncio.to_thread(server.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of calls (10)")
    parser.add_argument(
        "--client-timeout", type=float, default=30.0, help="each call's client timeout, s (30)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ticketflow-outage-") as workdir:
        asyncio.run(run(args.rounds, args.client_timeout, Path(workdir)))


if __name__ == "__main__":
    main()
