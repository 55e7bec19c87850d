"""ServiceSettings from TICKETFLOW_* variables, and load_settings: exit code 2, values never echoed."""

from __future__ import annotations

import os

import pytest
from pydantic import Field, SecretStr, ValidationError
from ticketflow.runtime import EXIT_BAD_SETTINGS, ServiceSettings, env_var, load_settings

PROG = "ticketflow-test"


class TokenSettings(ServiceSettings):
    """A service with a secret, as the api has: the secret must never reach the error message."""

    api_token: SecretStr = Field(SecretStr("a-long-enough-default-token"), min_length=20)
    batch_size: int = Field(10, ge=1)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TICKETFLOW_"):
            monkeypatch.delenv(key)


def refused(cls: type[ServiceSettings], capsys: pytest.CaptureFixture[str]) -> str:
    """load_settings must exit with EXIT_BAD_SETTINGS; returns what it printed on stderr."""
    with pytest.raises(SystemExit) as exited:
        load_settings(cls, PROG)
    assert exited.value.code == EXIT_BAD_SETTINGS == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def test_defaults() -> None:
    s = load_settings(ServiceSettings, PROG)
    assert (s.temporal_address, s.namespace, s.log_level) == ("127.0.0.1:7233", "default", "INFO")


def test_environment_overrides_and_foreign_variables_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETFLOW_TEMPORAL_ADDRESS", "temporal.internal:7234")
    monkeypatch.setenv("TICKETFLOW_NAMESPACE", "prod")
    monkeypatch.setenv("TICKETFLOW_LOG_LEVEL", "ERROR")
    monkeypatch.setenv("TICKETFLOW_SOMETHING_FOR_ANOTHER_SERVICE", "x")
    s = load_settings(ServiceSettings, PROG)
    assert (s.temporal_address, s.namespace, s.log_level) == (
        "temporal.internal:7234",
        "prod",
        "ERROR",
    )


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_NAMESPACE", "from-env")
    assert (
        load_settings(ServiceSettings, PROG, overrides={"namespace": "given"}).namespace == "given"
    )


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        ServiceSettings().namespace = "other"  # type: ignore[misc]  # proving the runtime refusal


def test_env_var_names_a_field() -> None:
    assert env_var("temporal_address") == "TICKETFLOW_TEMPORAL_ADDRESS"
    assert env_var("log_level") == "TICKETFLOW_LOG_LEVEL"


@pytest.mark.parametrize(
    ("given", "level"),
    [("debug", "DEBUG"), ("Warning", "WARNING"), (" error ", "ERROR"), ("CRITICAL", "CRITICAL")],
)
def test_log_level_is_case_insensitive(
    monkeypatch: pytest.MonkeyPatch, given: str, level: str
) -> None:
    monkeypatch.setenv("TICKETFLOW_LOG_LEVEL", given)
    assert load_settings(ServiceSettings, PROG).log_level == level


def test_unknown_log_level_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TICKETFLOW_LOG_LEVEL", "chatty")
    err = refused(ServiceSettings, capsys)
    assert "TICKETFLOW_LOG_LEVEL: " in err and "chatty" not in err


@pytest.mark.parametrize(
    "address",
    [
        "temporal-without-port",
        "temporal.internal:0",
        "temporal.internal:70000",
        ":7233",
        "temporal:seven",
    ],
)
def test_bad_temporal_address_is_refused_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    monkeypatch.setenv("TICKETFLOW_TEMPORAL_ADDRESS", address)
    err = refused(ServiceSettings, capsys)
    assert "  TICKETFLOW_TEMPORAL_ADDRESS: expected host:port with a port in 1..65535\n" in err
    assert address not in err


@pytest.mark.parametrize(
    "address", ["localhost:7233", "10.0.0.5:1", "[::1]:65535", "temporal:7233"]
)
def test_good_temporal_addresses_are_accepted(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setenv("TICKETFLOW_TEMPORAL_ADDRESS", address)
    assert load_settings(ServiceSettings, PROG).temporal_address == address


def test_every_bad_variable_is_named_and_no_value_is_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "TICKETFLOW_API_TOKEN": "hunter2-secret",  # too short for the subclass's rule
        "TICKETFLOW_BATCH_SIZE": "a-dozen-or-so",
        "TICKETFLOW_TEMPORAL_ADDRESS": "temporal-at-nowhere",
        "TICKETFLOW_LOG_LEVEL": "very-loud",
        "TICKETFLOW_NAMESPACE": "",
    }
    for key, value in bad.items():
        monkeypatch.setenv(key, value)
    err = refused(TokenSettings, capsys)

    lines = err.splitlines()
    assert lines[0] == f"{PROG}: invalid settings:"
    problems = [line.strip() for line in lines[1:-1]]
    assert sorted(p.split(":", 1)[0] for p in problems) == sorted(bad)
    assert lines[-1].startswith(f"{PROG}: fix the variables above")
    for value in filter(None, bad.values()):
        assert value not in err


def test_a_secret_is_loaded_and_stays_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_API_TOKEN", "correct-horse-battery-staple")
    s = load_settings(TokenSettings, PROG)
    assert s.api_token.get_secret_value() == "correct-horse-battery-staple"
    assert "correct-horse" not in repr(s) and "correct-horse" not in str(s)
