"""Settings from TICKETFLOW_* env, and the command line around them."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError
from ticketflow.agent_worker import Settings
from ticketflow.agent_worker.__main__ import main, parse_args
from ticketflow.agent_worker.worker import VERSION, QueueChoice
from ticketflow.contracts import ModelTier
from ticketflow.runtime import EXIT_BAD_SETTINGS


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TICKETFLOW_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    s = Settings()
    assert (s.temporal_address, s.namespace) == ("127.0.0.1:7233", "default")
    assert (s.agent_rate_per_s, s.agent_max_concurrent) == (10.0, 8)
    assert (s.mock_failure_rate, s.mock_seed) == (0.0, 0)
    assert 0 <= s.mock_latency_ms <= 100
    assert s.log_level == "INFO"


def test_env_overrides_and_foreign_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_TEMPORAL_ADDRESS", "temporal.internal:7234")
    monkeypatch.setenv("TICKETFLOW_NAMESPACE", "prod")
    monkeypatch.setenv("TICKETFLOW_AGENT_RATE_PER_S", "2.5")
    monkeypatch.setenv("TICKETFLOW_AGENT_MAX_CONCURRENT", "3")
    monkeypatch.setenv("TICKETFLOW_MOCK_LATENCY_MS", "0")
    monkeypatch.setenv("TICKETFLOW_MOCK_FAILURE_RATE", "1")
    monkeypatch.setenv("TICKETFLOW_MOCK_SEED", "-4")
    monkeypatch.setenv("TICKETFLOW_LOG_LEVEL", "debug")
    monkeypatch.setenv("TICKETFLOW_HTTP_PORT", "8000")  # another service's variable
    s = Settings()
    assert s.temporal_address == "temporal.internal:7234" and s.namespace == "prod"
    assert s.log_level == "DEBUG"
    assert (s.agent_rate_per_s, s.agent_max_concurrent) == (2.5, 3)
    assert (s.mock_latency_ms, s.mock_failure_rate, s.mock_seed) == (0, 1.0, -4)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("TEMPORAL_ADDRESS", "localhost"),
        ("TEMPORAL_ADDRESS", "localhost:0"),
        ("TEMPORAL_ADDRESS", "localhost:70000"),
        ("TEMPORAL_ADDRESS", ":7233"),
        ("NAMESPACE", ""),
        ("AGENT_RATE_PER_S", "0"),
        ("AGENT_RATE_PER_S", "-1"),
        ("AGENT_MAX_CONCURRENT", "0"),
        ("MOCK_LATENCY_MS", "-1"),
        ("MOCK_FAILURE_RATE", "1.5"),
        ("MOCK_FAILURE_RATE", "-0.1"),
        ("MOCK_SEED", "abc"),
        ("LOG_LEVEL", "chatty"),
    ],
)
def test_out_of_range_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(f"TICKETFLOW_{var}", value)
    with pytest.raises(ValidationError):
        Settings()


def test_main_exits_2_naming_the_variable_on_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TICKETFLOW_MOCK_FAILURE_RATE", "7.5")
    monkeypatch.setenv("TICKETFLOW_AGENT_MAX_CONCURRENT", "-3")
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == EXIT_BAD_SETTINGS == 2
    err = capsys.readouterr().err
    assert "invalid settings" in err
    assert "TICKETFLOW_MOCK_FAILURE_RATE" in err and "TICKETFLOW_AGENT_MAX_CONCURRENT" in err
    assert "7.5" not in err and "-3" not in err  # values are never echoed (some are secrets)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"ticketflow-agent-worker {VERSION}"


def test_queue_argument() -> None:
    assert parse_args([]).queue is QueueChoice.BOTH
    assert parse_args(["--queue", "primary"]).queue.tiers == (ModelTier.PRIMARY,)
    assert parse_args(["--queue", "fallback"]).queue.tiers == (ModelTier.FALLBACK,)
    assert QueueChoice.BOTH.tiers == (ModelTier.PRIMARY, ModelTier.FALLBACK)
    with pytest.raises(SystemExit) as exited:
        parse_args(["--queue", "secondary"])
    assert exited.value.code == 2
