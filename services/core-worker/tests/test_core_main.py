"""The real `ticketflow-core-worker` process: bad settings, waiting for Temporal, polling, stopping."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from socket import gethostname

import pytest
from temporalio.testing import WorkflowEnvironment
from ticketflow.contracts import names
from ticketflow.core_worker.__main__ import main
from ticketflow.core_worker.worker import VERSION
from ticketflow.runtime import EXIT_BAD_SETTINGS
from ticketflow.runtime.pollers import ACTIVITY, WORKFLOW
from ticketflow.testkit import ServiceProcess, console_script, free_port, wait_until_polling

BINARY = console_script("ticketflow-core-worker")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TICKETFLOW_"):
            monkeypatch.delenv(key)


StartProcess = Callable[[str], ServiceProcess]


@pytest.fixture
def start_process(
    service_process: Callable[[Sequence[str], Mapping[str, str]], ServiceProcess], tmp_path: Path
) -> StartProcess:
    """``start_process(temporal_address)``: the console script against that Temporal."""

    def start(address: str) -> ServiceProcess:
        env = {"TICKETFLOW_TEMPORAL_ADDRESS": address, "TICKETFLOW_DATA_DIR": str(tmp_path)}
        return service_process([BINARY], env)

    return start


def test_sigterm_while_waiting_for_temporal_exits_cleanly(start_process: StartProcess) -> None:
    core = start_process(f"127.0.0.1:{free_port()}")  # nothing listens there
    core.wait_for_output("waiting for Temporal")
    assert "TICKETFLOW_TEMPORAL_ADDRESS" in core.output()  # the progress line says what to do
    core.proc.send_signal(signal.SIGTERM)
    # Before the fix it retried forever; a liveness bound, not a speed threshold.
    assert core.proc.wait(timeout=30) == 0, core.output()
    assert "stopped before Temporal answered" in core.output()


async def test_polls_the_core_queue_then_stops_gracefully_on_sigterm(
    dev_env: WorkflowEnvironment, start_process: StartProcess
) -> None:
    since = time.time()
    core = start_process(dev_env.client.service_client.config.target_host)
    identity = f"core-worker-{VERSION}@{gethostname()}"

    def alive() -> None:
        assert core.proc.poll() is None, core.output()

    await wait_until_polling(
        dev_env.client,
        [(names.CORE_QUEUE, WORKFLOW), (names.CORE_QUEUE, ACTIVITY)],
        identity=identity,
        since_epoch_s=since,
        alive=alive,
    )
    assert f"polling task queue {names.CORE_QUEUE!r}" in core.output()
    assert "; ledger sqlite:///" in core.output()  # the store it writes to, shown
    # No keys: it runs (auto-approved tickets resolve) but says every human decision is refused.
    assert "no decision keys" in core.output()
    core.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(core.proc.wait, 30)
    assert code == 0, core.output()
    assert "shutting down" in core.output()


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("TICKETFLOW_CORE_MAX_CONCURRENT_ACTIVITIES", "-7"),
        ("TICKETFLOW_TEMPORAL_ADDRESS", "no-port-here"),
        ("TICKETFLOW_LOG_LEVEL", "chatty"),
        ("TICKETFLOW_DECISION_KEYS", "k1:c2hvcnQtc2VjcmV0"),  # a 12-byte secret: too short
    ],
)
def test_bad_settings_exit_2_naming_the_variable_not_its_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == EXIT_BAD_SETTINGS == 2
    err = capsys.readouterr().err
    assert "invalid settings" in err and var in err
    assert value not in err  # values are never echoed (some settings are secrets)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"ticketflow-core-worker {VERSION}"
