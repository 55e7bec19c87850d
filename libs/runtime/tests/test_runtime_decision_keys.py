"""DecisionKeySettings: TICKETFLOW_DECISION_KEYS and _FILE, the signer first, secrets never echoed."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from ticketflow.runtime import EXIT_BAD_SETTINGS, load_settings
from ticketflow.runtime.decision_keys import DecisionKeySettings

SECRET_A = base64.b64encode(b"a" * 32).decode()
SECRET_B = base64.b64encode(b"b" * 32).decode()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TICKETFLOW_"):
            monkeypatch.delenv(key)


def test_no_keys_by_default() -> None:
    assert load_settings(DecisionKeySettings, "t").keys_for_decisions == ()


def test_variable_keys_come_before_file_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keyfile = tmp_path / "keys"
    keyfile.write_text(f"# rotated out after the approval timeout\nold:{SECRET_B}\n")
    monkeypatch.setenv("TICKETFLOW_DECISION_KEYS", f"new:{SECRET_A}")
    monkeypatch.setenv("TICKETFLOW_DECISION_KEYS_FILE", str(keyfile))
    keys = load_settings(DecisionKeySettings, "t").keys_for_decisions
    assert [(k.key_id, k.secret) for k in keys] == [("new", b"a" * 32), ("old", b"b" * 32)]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TICKETFLOW_DECISION_KEYS": f"k1{SECRET_A}"}, "TICKETFLOW_DECISION_KEYS is malformed"),
        ({"TICKETFLOW_DECISION_KEYS_FILE": "/nonexistent/keys"}, "_FILE cannot be read"),
        (
            {"TICKETFLOW_DECISION_KEYS": f"k1:{SECRET_A}", "TICKETFLOW_DECISION_KEYS_FILE": "FILE"},
            "a key id appears twice",
        ),
    ],
)
def test_bad_keys_stop_the_process_naming_the_variable_never_the_secret(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    env: dict[str, str],
    message: str,
) -> None:
    keyfile = tmp_path / "keys"
    keyfile.write_text(f"k1:{SECRET_B}\n")
    for name, value in env.items():
        monkeypatch.setenv(name, str(keyfile) if value == "FILE" else value)
    with pytest.raises(SystemExit) as exited:
        load_settings(DecisionKeySettings, "t")
    assert exited.value.code == EXIT_BAD_SETTINGS
    err = capsys.readouterr().err
    assert message in err
    assert SECRET_A not in err and SECRET_B not in err
