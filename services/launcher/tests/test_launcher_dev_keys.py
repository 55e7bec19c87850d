"""`ticketflow up` without decision keys: one dev key shared by the api (signs) and the core worker
(verifies), in the data dir, 0600; with keys configured it makes none."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ticketflow.launcher.config import LauncherSettings, StackConfig, UpOptions, stack_config
from ticketflow.launcher.dev_keys import dev_decision_keys
from ticketflow.launcher.up import Launch
from ticketflow.runtime.decision_keys import load_decision_keys


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TICKETFLOW_"):
            monkeypatch.delenv(key)


def test_the_dev_key_is_private_loadable_and_reused(tmp_path: Path) -> None:
    path, key_id, created = dev_decision_keys(tmp_path)
    assert created and key_id.startswith("dev-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (key,) = load_decision_keys("", path)  # what the api and the core worker read
    assert key.key_id == key_id and len(key.secret) == 32
    path.chmod(0o644)
    assert dev_decision_keys(tmp_path) == (path, key_id, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_unusable_dev_key_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "decision-keys").write_text("not a key\n")
    path, key_id, created = dev_decision_keys(tmp_path)
    assert created and [k.key_id for k in load_decision_keys("", path)] == [key_id]


def services_env(tmp_path: Path, settings: LauncherSettings) -> dict[str, dict[str, str]]:
    config = stack_config(settings, UpOptions(headless=True))
    assert isinstance(config, StackConfig)
    commands = {name: [name] for name in ("core-worker", "agent-worker", "projection", "api")}
    launch = Launch(config, UpOptions(headless=True), None, commands, None, {})  # type: ignore[arg-type]
    try:
        services = next(stage for stage in launch.stages() if isinstance(stage, list))
        return {child.name: dict(child.env or {}) for child in services}
    finally:
        launch.pollers.close()


def test_up_hands_the_dev_key_file_to_the_api_and_the_core_worker(tmp_path: Path) -> None:
    envs = services_env(tmp_path, LauncherSettings(data_dir=tmp_path))
    path = str(tmp_path.resolve() / "decision-keys")
    assert envs["api"]["TICKETFLOW_DECISION_KEYS_FILE"] == path
    assert envs["core-worker"]["TICKETFLOW_DECISION_KEYS_FILE"] == path
    assert all("TICKETFLOW_DECISION_KEYS" not in env for env in envs.values())  # never the key


@pytest.mark.parametrize("variable", ["TICKETFLOW_DECISION_KEYS", "TICKETFLOW_DECISION_KEYS_FILE"])
def test_configured_keys_make_no_dev_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "ops:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    envs = services_env(tmp_path, LauncherSettings(data_dir=tmp_path))
    assert not (tmp_path / "decision-keys").exists()
    assert all("TICKETFLOW_DECISION_KEYS_FILE" not in env for env in envs.values())
