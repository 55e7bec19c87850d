"""Slow-client benchmark: does the api keep answering its probes while slow clients hold sockets?

Starts a Temporal dev server and `python -m ticketflow.api` (its descriptor limit lowered to
``--fd-limit``), opens ``--slow`` connections that each send half a request (a request line and one
header, never the blank line) and then nothing, and for ``--seconds`` polls `/healthz` and `/readyz`
every 0.5 s (each under a 2 s deadline). Then it prints:
- how many probes answered 200, and the slowest answer,
- how many slow connections the server closed, and when (seconds after they were opened),
- what the api wrote to its log meanwhile: lines, bytes, tracebacks, and the refusal summaries.

    uv run python bench/slow_clients.py --slow 300 --fd-limit 256 --seconds 25

Pass api settings through the environment as usual (e.g. TICKETFLOW_HTTP_HEADER_TIMEOUT_S=5).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from ticketflow.testkit import DevServer

HALF_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no blank line: never complete


def start_api(temporal: str, fd_limit: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    env.update(
        {k: v for k, v in os.environ.items() if k.startswith("TICKETFLOW_HTTP_")},
        TICKETFLOW_TEMPORAL_ADDRESS=temporal,
        TICKETFLOW_HTTP_PORT="0",
        TICKETFLOW_GRPC_PORT="0",
        TICKETFLOW_LOG_LEVEL="WARNING",  # no access log: count what the api says on its own
    )

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ticketflow.api"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            preexec_fn=limit,
        )
    assert proc.stdout is not None
    banner = proc.stdout.readline().decode()
    match = re.search(r"listening on (http://\S+) and", banner)
    if not match:
        proc.kill()
        raise SystemExit(f"the api did not start: {banner!r}\n{log.read_text()[-2000:]}")
    return proc, match.group(1)


def _log_size(log: Path) -> int:
    return log.stat().st_size


def _log_since(log: Path, offset: int) -> str:
    return log.read_bytes()[offset:].decode(errors="replace")


async def slow_client(host: str, port: int, closed_after: list[float], t0: float) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return
    try:
        writer.write(HALF_REQUEST)
        await writer.drain()
        while await reader.read(4096):
            pass  # a 408 before the close is fine; EOF (or a reset) means the server closed it
        closed_after.append(time.monotonic() - t0)
    except OSError:
        closed_after.append(time.monotonic() - t0)
    finally:
        writer.close()


async def probe(http: httpx.AsyncClient, path: str, results: list[tuple[str, float]]) -> None:
    t = time.monotonic()
    try:
        status = str((await http.get(path, timeout=2.0)).status_code)
    except httpx.HTTPError as err:
        status = type(err).__name__
    results.append((status, time.monotonic() - t))


async def run(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.slow + 256)), hard))
    with tempfile.TemporaryDirectory(prefix="ticketflow-slow-") as tmp:
        log = Path(tmp, "api.log")
        server = DevServer(log_path=Path(tmp, "temporal.log")).start()
        proc, base = start_api(server.address, args.fd_limit, log)
        try:
            async with httpx.AsyncClient(base_url=base) as http:
                for _ in range(100):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                    await asyncio.sleep(0.2)
            before = _log_size(log)
            host, port = base.removeprefix("http://").rsplit(":", 1)
            t0 = time.monotonic()
            closed_after: list[float] = []
            slow = [
                asyncio.create_task(slow_client(host, int(port), closed_after, t0))
                for _ in range(args.slow)
            ]
            results: dict[str, list[tuple[str, float]]] = {"/healthz": [], "/readyz": []}
            # A fresh connection per probe, as an orchestrator's probes make them.
            async with httpx.AsyncClient(
                base_url=base, limits=httpx.Limits(max_keepalive_connections=0)
            ) as http:
                while time.monotonic() - t0 < args.seconds:
                    await asyncio.gather(*(probe(http, p, r) for p, r in results.items()))
                    await asyncio.sleep(0.5)
            elapsed = time.monotonic() - t0
            for task in slow:
                task.cancel()
            await asyncio.gather(*slow, return_exceptions=True)
            alive = proc.poll() is None
        finally:
            proc.kill()
            proc.wait()
            server.stop()
        text = _log_since(log, before)
        lines = text.splitlines()
        print(f"slow connections      {args.slow} (fd limit {args.fd_limit}), {elapsed:.0f} s")
        for path, res in results.items():
            ok = sum(1 for status, _ in res if status == "200")
            worst = max((t for _, t in res), default=0.0)
            others = sorted({status for status, _ in res if status != "200"})
            print(f"{path:21} {ok}/{len(res)} answered 200, slowest {worst:.2f} s {others or ''}")
        closed_after.sort()
        if closed_after:
            mid = closed_after[len(closed_after) // 2]
            print(
                f"closed by the server  {len(closed_after)}/{args.slow} "
                f"(first {closed_after[0]:.1f} s, median {mid:.1f} s, last {closed_after[-1]:.1f} s)"
            )
        else:
            print(f"closed by the server  0/{args.slow}")
        print(f"api still running     {alive}")
        print(f"api log               {len(lines)} lines, {len(text.encode())} bytes")
        print(f"tracebacks            {text.count('Traceback (most recent call last)')}")
        refusals = [line for line in lines if "refused" in line]
        print(f"refusal lines         {len(refusals)}")
        for line in (refusals or lines)[:5]:
            print(f"  {line[:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=300, help="slow connections to open (300)")
    parser.add_argument("--fd-limit", type=int, default=256, help="the api's RLIMIT_NOFILE (256)")
    parser.add_argument("--seconds", type=float, default=25.0, help="how long to probe (25)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
