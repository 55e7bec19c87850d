"""Where the projection listens (TICKETFLOW_PROJECTION_HOST / _PORT) apart from where the api
reaches it (TICKETFLOW_PROJECTION_ADDRESS), and the old single variable still doing both."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from ticketflow.projection.settings import Settings
from ticketflow.runtime.settings import settings_problems


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ADDRESS", "HOST", "PORT"):
        monkeypatch.delenv(f"TICKETFLOW_PROJECTION_{name}", raising=False)


def test_default_listens_on_loopback() -> None:
    assert Settings().listen_address == "127.0.0.1:50052"


def test_the_address_alone_still_sets_where_it_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    # Compatibility: before HOST/PORT, TICKETFLOW_PROJECTION_ADDRESS was the listen address too.
    monkeypatch.setenv("TICKETFLOW_PROJECTION_ADDRESS", "127.0.0.1:6001")
    assert Settings().listen_address == "127.0.0.1:6001"


def test_host_and_port_bind_while_the_address_names_how_others_reach_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETFLOW_PROJECTION_ADDRESS", "projection:50052")
    monkeypatch.setenv("TICKETFLOW_PROJECTION_HOST", "0.0.0.0")
    monkeypatch.setenv("TICKETFLOW_PROJECTION_PORT", "6002")
    settings = Settings()
    assert settings.listen_address == "0.0.0.0:6002"
    assert settings.projection_address == "projection:50052"


def test_each_unset_part_comes_from_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_PROJECTION_ADDRESS", "projection:6003")
    monkeypatch.setenv("TICKETFLOW_PROJECTION_HOST", "0.0.0.0")
    assert Settings().listen_address == "0.0.0.0:6003"
    monkeypatch.delenv("TICKETFLOW_PROJECTION_HOST")
    monkeypatch.setenv("TICKETFLOW_PROJECTION_PORT", "0")  # any free port
    assert Settings().listen_address == "projection:0"


def test_ipv6_host_is_bracketed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_PROJECTION_HOST", "::")
    assert Settings().listen_address == "[::]:50052"


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("projection_port", 70000, "TICKETFLOW_PROJECTION_PORT"),
        ("projection_host", "", "TICKETFLOW_PROJECTION_HOST"),
        ("projection_address", "no-port", "TICKETFLOW_PROJECTION_ADDRESS"),
    ],
)
def test_bad_values_name_their_variable(field: str, value: object, variable: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**{field: value})
    (problem,) = settings_problems(info.value)
    assert problem.startswith(f"{variable}: "), problem
