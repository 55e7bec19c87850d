"""The `ticketflow` command line: help, exit code 2 when nothing could start, version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _ticketflow(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticketflow.launcher", *argv],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}, **env},
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def test_up_help_lists_every_variable_and_the_exit_codes() -> None:
    result = _ticketflow("up", "--help", env={})
    assert result.returncode == 0, result.stderr
    for variable in (
        "TICKETFLOW_TEMPORAL_ADDRESS",
        "TICKETFLOW_NAMESPACE",
        "TICKETFLOW_DATA_DIR",
        "TICKETFLOW_HTTP_PORT",
        "TICKETFLOW_GRPC_PORT",
        "TICKETFLOW_PROJECTION_ADDRESS",
        "TICKETFLOW_APPROVER_TOKENS",
        "TICKETFLOW_LOG_LEVEL",
    ):
        assert variable in result.stdout
    assert "exit codes" in result.stdout and "--external-temporal" in result.stdout


def test_version() -> None:
    result = _ticketflow("--version", env={})
    assert result.returncode == 0 and result.stdout.startswith("ticketflow ")


def test_a_bad_variable_starts_nothing(tmp_path: Path) -> None:
    result = _ticketflow(
        "up", "--data-dir", str(tmp_path), env={"TICKETFLOW_HTTP_PORT": "port-eighty"}
    )
    assert result.returncode == 2
    assert "TICKETFLOW_HTTP_PORT" in result.stderr and "port-eighty" not in result.stderr
    assert result.stdout == "" and not any(tmp_path.iterdir())


def test_a_usage_error_is_exit_code_2_with_the_message(tmp_path: Path) -> None:
    result = _ticketflow(
        "up",
        "--data-dir",
        str(tmp_path / "data"),
        env={"TICKETFLOW_TEMPORAL_ADDRESS": "temporal.internal:7233"},
    )
    assert result.returncode == 2
    assert result.stderr.startswith("ticketflow: TICKETFLOW_TEMPORAL_ADDRESS=")
    assert "--external-temporal" in result.stderr and result.stdout == ""
    assert not (tmp_path / "data").exists()  # refused before the data dir was touched
