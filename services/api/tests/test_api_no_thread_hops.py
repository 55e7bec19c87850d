"""The request path stays on the event loop: no dependency or endpoint is a plain ``def`` that
FastAPI would hand to its thread pool (a thread hop per request, and under a submission burst a
third of the api's CPU). Guarded by making the thread pool fail for the duration of the test."""

from __future__ import annotations

from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import httpx
import pytest

from .conftest import bearer, submission


def _no_thread_pool(*_: Any, **__: Any) -> Any:
    raise AssertionError("a dependency or endpoint of the request ran in FastAPI's thread pool")


async def test_submit_read_list_and_decide_never_use_the_thread_pool(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastapi.dependencies.utils, "run_in_threadpool", _no_thread_pool)
    monkeypatch.setattr(fastapi.routing, "run_in_threadpool", _no_thread_pool)
    body = submission()
    submitted = await api.post("/tickets", json=body)
    assert submitted.status_code == 202, submitted.text
    read = await api.get(f"/tickets/{body['ticket_id']}", headers=bearer())
    assert read.status_code == 200, read.text
    listed = await api.get("/tickets", params={"status": "RECEIVED"}, headers=bearer())
    assert listed.status_code == 200, listed.text
    decided = await api.post(
        f"/tickets/{body['ticket_id']}/decision",
        json={"approved": True, "reason": "ok"},
        headers=bearer(),
    )
    assert decided.status_code < 500, decided.text  # whatever the fake workflow answers
