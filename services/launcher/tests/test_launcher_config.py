"""Settings and options -> the stack's ports and data dir; what cannot run is refused up front."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from ticketflow.launcher.cli import build_parser, load_launcher_settings, up_options
from ticketflow.launcher.config import StackConfig, UsageError, check_ports, stack_config
from ticketflow.testkit import free_port


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TICKETFLOW_"):
            monkeypatch.delenv(key)


def config_of(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *argv: str) -> StackConfig:
    """What `ticketflow up ARGV` makes of ``env``."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = build_parser().parse_args(["up", *argv])
    return stack_config(load_launcher_settings(args), up_options(args))


def test_defaults_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = config_of(monkeypatch, {"TICKETFLOW_DATA_DIR": str(tmp_path)})
    assert (c.temporal_port, c.ui_port, c.http_port, c.grpc_port) == (7233, 8233, 8000, 50051)
    assert c.projection_address == "127.0.0.1:50052"
    assert c.data_dir == tmp_path.resolve()
    assert c.temporal_address == "127.0.0.1:7233"
    assert c.namespace == "default" and not c.approver_tokens_given
    c = config_of(
        monkeypatch,
        {"TICKETFLOW_TEMPORAL_ADDRESS": "localhost:7300", "TICKETFLOW_HTTP_PORT": " 8100 "},
        *("--data-dir", str(tmp_path / "x"), "--headless"),
    )
    assert (c.temporal_port, c.ui_port, c.http_port) == (7300, None, 8100)
    assert c.data_dir == (tmp_path / "x").resolve()  # the option wins over TICKETFLOW_DATA_DIR


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"TICKETFLOW_HTTP_PORT": "", "TICKETFLOW_NAMESPACE": "", "TICKETFLOW_DATA_DIR": ""}
    c = config_of(monkeypatch, {**env, "TICKETFLOW_APPROVER_TOKENS": "  "})
    assert (c.http_port, c.namespace, c.data_dir) == (8000, "default", Path("var").resolve())
    assert not c.approver_tokens_given
    assert config_of(monkeypatch, {"TICKETFLOW_APPROVER_TOKENS": "ops:t"}).approver_tokens_given


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TICKETFLOW_HTTP_PORT", "eighty"),
        ("TICKETFLOW_GRPC_PORT", "70000"),
        ("TICKETFLOW_PROJECTION_ADDRESS", "nohost-secret"),
        ("TICKETFLOW_LOG_LEVEL", "chatty"),
    ],
)
def test_a_bad_variable_exits_2_naming_it_without_its_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        config_of(monkeypatch, {variable: value})
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{variable}:" in err
    assert value not in err


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"TICKETFLOW_TEMPORAL_ADDRESS": "temporal.internal:7233"}, "--external-temporal"),
        ({"TICKETFLOW_PROJECTION_ADDRESS": "10.0.0.1:50052"}, "127.0.0.1:<port>"),
        ({"TICKETFLOW_TEMPORAL_ADDRESS": "127.0.0.1:65000"}, "--temporal-ui-port or --headless"),
    ],
)
def test_what_cannot_run_here_says_what_to_change(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str
) -> None:
    with pytest.raises(UsageError, match=needle):
        config_of(monkeypatch, env)


def test_external_temporal_may_be_remote(monkeypatch: pytest.MonkeyPatch) -> None:
    c = config_of(
        monkeypatch, {"TICKETFLOW_TEMPORAL_ADDRESS": "temporal:7233"}, "--external-temporal"
    )
    assert c.temporal_address == "temporal:7233" and c.ui_port is None


def _config(**ports: int) -> StackConfig:
    values = {"temporal_port": free_port(), "http_port": free_port(), "grpc_port": free_port()}
    values |= {"projection_port": free_port(), **ports}
    return StackConfig(
        data_dir=Path("/nonexistent"),
        namespace="default",
        ui_port=values.pop("ui_port", None),
        projection_host="127.0.0.1",
        external_temporal=None,
        approver_tokens_given=False,
        **values,
    )


def test_check_ports_passes_when_all_are_free() -> None:
    check_ports(_config(ui_port=free_port()))


def test_check_ports_names_the_setting_of_a_taken_port() -> None:
    config = _config()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", config.grpc_port))
        taken.listen()
        with pytest.raises(UsageError, match=rf"port {config.grpc_port} .*TICKETFLOW_GRPC_PORT"):
            check_ports(config)


def test_check_ports_refuses_one_port_for_two_settings() -> None:
    config = _config()
    clash = _config(http_port=config.grpc_port, grpc_port=config.grpc_port)
    with pytest.raises(UsageError, match="TICKETFLOW_GRPC_PORT and TICKETFLOW_HTTP_PORT both use"):
        check_ports(clash)
