"""`ticketflow-api` as a real process: starts without Temporal, says where it listens, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from ticketflow.testkit import free_port, json_log_lines


async def test_process_serves_and_stops_gracefully_on_sigterm(helpers) -> None:
    async with helpers.api_process(
        temporal_address=f"127.0.0.1:{free_port()}",
        projection_address=f"127.0.0.1:{free_port()}",
    ) as (proc, http_url, _):
        async with httpx.AsyncClient(base_url=http_url) as http:
            assert (await http.get("/healthz")).status_code == 200
            not_ready = await http.get("/readyz")
            assert not_ready.status_code == 503
            assert "is unreachable; is the server running?" in not_ready.json()["error"]["message"]

            async def chunked() -> AsyncIterator[bytes]:
                for _ in range(40):
                    yield b" " * 4096

            too_big = await http.post(
                "/tickets", content=chunked(), headers={"Content-Type": "application/json"}
            )
            assert too_big.status_code == 413
            declared = await http.post(
                "/tickets", content=b" " * 200_000, headers={"Content-Type": "application/json"}
            )
            assert declared.status_code == 413
            assert declared.json()["error"]["code"] == "payload_too_large"
            assert (await http.get("/healthz")).status_code == 200

        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert "ticketflow-api: SIGTERM, shutting down gracefully" in err
        # uvicorn's own loggers follow the one format (JSON lines: stderr is a pipe), access log too.
        records = json_log_lines(err)
        assert any(r["logger"] == "uvicorn.error" and r["level"] == "INFO" for r in records), err
        assert any(
            r["logger"] == "uvicorn.access" and "GET /healthz" in r["message"] for r in records
        ), err
        assert all(r["service"] == "api" and "timestamp" in r for r in records), err


async def test_log_level_quiets_every_logger(helpers) -> None:
    async with helpers.api_process(
        log_level="warning",
        temporal_address=f"127.0.0.1:{free_port()}",
        projection_address=f"127.0.0.1:{free_port()}",
    ) as (proc, http_url, _):
        assert proc.stderr is not None
        async with httpx.AsyncClient(base_url=http_url) as http:
            assert (await http.get("/healthz")).status_code == 200
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
        err = (await proc.stderr.read()).decode()
        # Temporal is down: the api warns about it, and says nothing at INFO (uvicorn included).
        records = json_log_lines(err)
        assert any(
            r["level"] == "WARNING" and r["logger"].startswith("ticketflow.api") for r in records
        ), err
        assert all(r["level"] != "INFO" for r in records), err


async def test_invalid_settings_exit_with_a_clear_message(helpers) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticketflow.api",
        env=helpers.env_with(approver_tokens="alice-without-token"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "TICKETFLOW_APPROVER_TOKENS is malformed" in err.decode()
    assert "alice-without-token" not in err.decode()


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("approval_timeout_s", "1e12"),
        ("rpc_timeout_s", "inf"),
        ("log_level", "loud"),
        ("http_port", "70000"),
    ],
)
async def test_out_of_bounds_settings_exit_naming_the_variable(
    helpers, var: str, value: str
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ticketflow.api",
        env=helpers.env_with(**{var: value}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    assert proc.returncode == 2, err.decode()
    assert f"TICKETFLOW_{var.upper()}: " in err.decode()
    assert value not in err.decode()  # values are never echoed (some are secrets)
