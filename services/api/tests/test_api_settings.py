"""Settings from the environment, approver tokens, and the constant-time token check."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError
from ticketflow.api import connections
from ticketflow.api import settings as settings_module
from ticketflow.api.auth import TokenVerifier
from ticketflow.api.settings import Settings, parse_approver_tokens
from ticketflow.contracts import Policy, names


def test_defaults_follow_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("TICKETFLOW_")]:
        monkeypatch.delenv(var)
    settings = Settings()
    assert settings.temporal_address == "127.0.0.1:7233"
    assert settings.namespace == "default"
    assert (settings.http_host, settings.http_port, settings.grpc_port) == (
        "127.0.0.1",
        8000,
        50051,
    )
    assert settings.projection_address == "127.0.0.1:50052"
    assert settings.core_queue == names.CORE_QUEUE
    assert settings.approvers == ()
    assert settings.policy == Policy()


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_TEMPORAL_ADDRESS", "10.0.0.5:7233")
    monkeypatch.setenv("TICKETFLOW_HTTP_PORT", "9000")
    monkeypatch.setenv("TICKETFLOW_APPROVER_TOKENS", " alice:tok-a , bob:tok-b ")
    monkeypatch.setenv("TICKETFLOW_CONFIDENCE_THRESHOLD", "0.6")
    monkeypatch.setenv("TICKETFLOW_AUTO_APPROVE_LIMIT_CENTS", "100")
    monkeypatch.setenv("TICKETFLOW_APPROVAL_TIMEOUT_S", "60")
    monkeypatch.setenv("TICKETFLOW_AGENT_SCHEDULE_TO_START_S", "2.5")
    monkeypatch.setenv("TICKETFLOW_FALLBACK_SCHEDULE_TO_START_S", "7")
    settings = Settings()
    assert settings.temporal_address == "10.0.0.5:7233"
    assert settings.http_port == 9000
    assert [(a.name, a.token) for a in settings.approvers] == [("alice", "tok-a"), ("bob", "tok-b")]
    policy = settings.policy
    assert policy.confidence_threshold == 0.6
    assert policy.auto_approve_limit_cents == 100
    assert policy.approval_timeout_s == 60
    assert policy.agent_schedule_to_start_s == 2.5
    assert policy.fallback_schedule_to_start_s == 7
    assert policy.agent_start_to_close_s == Policy().agent_start_to_close_s
    assert policy.primary_recheck_schedule_to_start_s == 60  # unset: follows the approval timeout


def test_recheck_knobs_are_read_and_bounded_by_the_approval_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKETFLOW_PRIMARY_RECHECK_SCHEDULE_TO_START_S", "45")
    monkeypatch.setenv("TICKETFLOW_FALLBACK_RECHECK_MIN_CONFIDENCE", "0.3")
    policy = Settings().policy
    assert policy.primary_recheck_schedule_to_start_s == 45
    assert policy.fallback_recheck_min_confidence == 0.3
    monkeypatch.setenv("TICKETFLOW_PRIMARY_RECHECK_SCHEDULE_TO_START_S", "0")
    assert Settings().policy.primary_recheck_schedule_to_start_s == 0  # off
    # The re-ask must not hold a ticket back from humans longer than they get to decide it:
    # unset, it follows a shorter approval timeout; set above it, it is refused.
    monkeypatch.setenv("TICKETFLOW_APPROVAL_TIMEOUT_S", "60")
    monkeypatch.delenv("TICKETFLOW_PRIMARY_RECHECK_SCHEDULE_TO_START_S")
    assert Settings().policy.primary_recheck_schedule_to_start_s == 60
    monkeypatch.setenv("TICKETFLOW_PRIMARY_RECHECK_SCHEDULE_TO_START_S", "61")
    with pytest.raises(
        ValidationError,
        match="TICKETFLOW_PRIMARY_RECHECK_SCHEDULE_TO_START_S: must not exceed "
        "TICKETFLOW_APPROVAL_TIMEOUT_S",
    ):
        Settings()
    monkeypatch.setenv("TICKETFLOW_FALLBACK_RECHECK_MIN_CONFIDENCE", "1.5")
    with pytest.raises(ValidationError, match="TICKETFLOW_FALLBACK_RECHECK_MIN_CONFIDENCE"):
        Settings()


def test_tokens_never_show_in_repr() -> None:
    settings = Settings(approver_tokens="alice:super-secret")
    assert "super-secret" not in repr(settings)
    assert "super-secret" not in repr(settings.approvers)


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("alice", "entry 1 is not of the form name:token"),
        ("alice:", "entry 1 is not of the form name:token"),
        (":tok", "approver name"),
        ("alice:tok,,bob:tok2", "entry 2 is empty"),
        ("alice:tok,", "entry 2 is empty"),
        ("al ice:tok", "approver name"),
        ("alice:to k", "whitespace"),
        ("alice:tok,alice:tok2", "appears twice"),
        ("alice:tok,bob:tok", "share a token"),
    ],
)
def test_malformed_tokens_are_refused_clearly(raw: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_approver_tokens(raw)
    with pytest.raises(ValidationError, match="TICKETFLOW_APPROVER_TOKENS is malformed"):
        Settings(approver_tokens=raw)


def test_token_with_colon_keeps_it() -> None:
    (approver,) = parse_approver_tokens("alice:abc:def")
    assert (approver.name, approver.token) == ("alice", "abc:def")


def test_bad_policy_names_the_variable() -> None:
    with pytest.raises(ValidationError, match="TICKETFLOW_CONFIDENCE_THRESHOLD"):
        Settings(confidence_threshold=1.5)
    with pytest.raises(ValidationError, match="TICKETFLOW_AUTO_APPROVE_LIMIT_CENTS"):
        Settings(auto_approve_limit_cents=-1)


@pytest.mark.parametrize(
    ("field", "too_big"),
    [
        ("approval_timeout_s", 366 * 24 * 3600.0),
        ("approval_timeout_s", 1e12),
        ("agent_schedule_to_start_s", 86401.0),
        ("agent_start_to_close_s", 1e12),
        ("agent_heartbeat_timeout_s", 1e9),
        ("fallback_schedule_to_start_s", 86401.0),
        ("fallback_start_to_close_s", 86401.0),
        ("side_effect_start_to_close_s", 3601.0),
        ("primary_recheck_schedule_to_start_s", 86401.0),
    ],
)
def test_policy_durations_have_upper_bounds(
    monkeypatch: pytest.MonkeyPatch, field: str, too_big: float
) -> None:
    """Past them `workflow.now() + timedelta(...)` overflows in the workflow: refuse at start."""
    var = f"TICKETFLOW_{field.upper()}"
    for raw in (repr(too_big), "inf", "nan"):
        monkeypatch.setenv(var, raw)
        with pytest.raises(ValidationError, match=f"invalid policy: {var}: must be at most"):
            Settings()
    limit, _ = settings_module.POLICY_MAX_S[field]
    monkeypatch.setenv(var, repr(limit))
    assert getattr(Settings().policy, field) == limit


def test_every_policy_duration_is_bounded() -> None:
    durations = {name for name in Policy.model_fields if name.endswith("_s")}
    assert set(settings_module.POLICY_MAX_S) == durations
    assert Settings().policy == Policy()  # the defaults are within the bounds


@pytest.mark.parametrize(
    "field",
    [
        "query_timeout_s",
        "rpc_timeout_s",
        "health_timeout_s",
        "read_model_timeout_s",
        "health_interval_s",
        "shutdown_grace_s",
        "http_header_timeout_s",
        "http_body_timeout_s",
    ],
)
def test_api_deadlines_are_bounded(field: str) -> None:
    for value in (float("inf"), float("nan"), 1e12):
        with pytest.raises(ValidationError, match=field):
            Settings(**{field: value})


def test_connection_limits_default_to_a_share_of_the_descriptor_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in [v for v in os.environ if v.startswith("TICKETFLOW_")]:
        monkeypatch.delenv(var)
    monkeypatch.setattr(connections, "descriptor_limit", lambda: 256)
    settings = Settings()
    assert (settings.http_header_timeout_s, settings.http_body_timeout_s) == (10.0, 30.0)
    assert connections.http_limits(settings).max_connections == 128
    assert connections.grpc_max_connections(settings) == 64
    monkeypatch.setattr(connections, "descriptor_limit", lambda: 1 << 20)
    assert connections.http_limits(settings).max_connections == 4096
    assert connections.grpc_max_connections(settings) == 1024
    explicit = Settings(http_max_connections=10, grpc_max_connections=5)
    assert connections.http_limits(explicit).max_connections == 10
    assert connections.grpc_max_connections(explicit) == 5
    for field in ("http_max_connections", "grpc_max_connections"):
        with pytest.raises(ValidationError, match=field):
            Settings(**{field: 0})


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(temporal_adress="typo:7233")  # type: ignore[call-arg]


def test_verifier_identifies_exactly_one_approver() -> None:
    verifier = TokenVerifier(parse_approver_tokens("alice:tok-a,bob:tok-b"))
    assert verifier.identify("tok-a") == "alice"
    assert verifier.identify("tok-b") == "bob"
    for wrong in ("", "tok-", "tok-a ", "TOK-A", "tok-c", "tok-a" * 1000, "alice"):
        assert verifier.identify(wrong) is None
    assert not TokenVerifier(())
