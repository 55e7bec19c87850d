"""Settings of the api service, from `TICKETFLOW_*` environment variables.

The shared ones (Temporal address, namespace, log level) come from `ticketflow.runtime`'s
`ServiceSettings` (docs/architecture.md, "Configuration"), the decision keys the api signs with
(`TICKETFLOW_DECISION_KEYS`, `TICKETFLOW_DECISION_KEYS_FILE`) from its `DecisionKeySettings`.
Built once in `main()` by `load_settings` (or by a test) and handed to `create_app`; never read at
import time. Problems a single field cannot see (approver tokens, the policy as a whole) are
refused by `_derive` with a message that names the variable, never its value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict
from ticketflow.contracts import MAX_ID_CHARS, Policy, names
from ticketflow.runtime import env_var
from ticketflow.runtime.decision_keys import DecisionKeySettings

__all__ = [
    "POLICY_MAX_S",
    "READMODEL_TOKEN_MIN_CHARS",
    "Approver",
    "Settings",
    "TokenHolder",
    "parse_approver_tokens",
    "parse_tokens",
]

_TOKEN_NAME = re.compile(rf"^[A-Za-z0-9_.@-]{{1,{MAX_ID_CHARS}}}$")
# The read-model token is a machine secret (no human types it): long enough not to be guessed.
READMODEL_TOKEN_MIN_CHARS = 16


def _policy_default(field: str) -> Any:
    return Policy.model_fields[field].default


_DAY_S = 24 * 3600.0
# Upper bounds of the policy's durations, checked here rather than in the contracts' `Policy` (whose
# JSON schema is a compatibility snapshot). Past them a value is a typo, and a big enough one
# overflows `workflow.now() + timedelta(...)` inside the workflow, leaving the ticket stuck.
POLICY_MAX_S: dict[str, tuple[float, str]] = {
    "approval_timeout_s": (365 * _DAY_S, "365 days"),
    "agent_schedule_to_start_s": (_DAY_S, "1 day"),
    "agent_start_to_close_s": (_DAY_S, "1 day"),
    "agent_heartbeat_timeout_s": (_DAY_S, "1 day"),
    "fallback_schedule_to_start_s": (_DAY_S, "1 day"),
    "fallback_start_to_close_s": (_DAY_S, "1 day"),
    "side_effect_start_to_close_s": (3600.0, "1 hour"),
    "primary_recheck_schedule_to_start_s": (_DAY_S, "1 day"),
}
# Upper bound of the api's own deadlines and intervals.
_MAX_DEADLINE_S = 3600.0


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """Someone with a bearer token: an approver (decides) or a viewer (reads); `repr` never shows
    the token."""

    name: str
    token: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, token=<hidden>)"


Approver = TokenHolder  # the name the approver tokens always had


def parse_approver_tokens(raw: str) -> tuple[TokenHolder, ...]:
    """Parse `name:token,name:token`. Raises ValueError naming the bad entry (never its token)."""
    return parse_tokens(raw, "approver")


def parse_tokens(raw: str, role: str) -> tuple[TokenHolder, ...]:
    """Parse `name:token,name:token` of `role`s (approver, viewer). Raises ValueError naming the
    bad entry (never its token)."""
    holders: list[TokenHolder] = []
    if not raw.strip():
        return ()
    for position, entry in enumerate(raw.split(","), start=1):
        entry = entry.strip()
        if not entry:
            raise ValueError(f"entry {position} is empty (stray comma?)")
        name, sep, token = entry.partition(":")
        name, token = name.strip(), token.strip()
        if not sep or not token:
            raise ValueError(f"entry {position} is not of the form name:token")
        if not _TOKEN_NAME.match(name):
            raise ValueError(
                f"entry {position}: {role} name must be 1-{MAX_ID_CHARS} of "
                "letters, digits and _ . @ -"
            )
        if any(ch.isspace() for ch in token):
            raise ValueError(f"entry {position} ({name}): the token contains whitespace")
        holders.append(TokenHolder(name=name, token=token))
    seen_names = [a.name for a in holders]
    if len(set(seen_names)) != len(seen_names):
        raise ValueError(f"a {role} name appears twice")
    if len({a.token for a in holders}) != len(holders):
        raise ValueError(f"two {role}s share a token (a token must identify one {role})")
    return tuple(holders)


class Settings(DecisionKeySettings):
    """Everything the api service reads from its environment (beyond `ServiceSettings`)."""

    # The prefix and frozen come from ServiceSettings. "forbid" refuses a misspelt keyword
    # (`Settings(temporal_adress=...)` in a test or an embedding program) instead of ignoring it;
    # the environment is read field by field, so another service's TICKETFLOW_* variable in the
    # same environment is never an extra.
    model_config = SettingsConfigDict(extra="forbid")

    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=0, le=65535)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(50051, ge=0, le=65535)
    projection_address: str = "127.0.0.1:50052"
    # `name:token,name:token`. Optional: without it the api still submits and reads tickets, and
    # every decision is refused (401), so a missing secret fails closed, never open.
    approver_tokens: SecretStr = SecretStr("")
    # `name:token,...` like the approvers'. Unset (the dev default), reads are open to anyone who
    # reaches the api; set, every read (GET /tickets, GET /tickets/{id}, gRPC GetTicket) needs a
    # viewer's or an approver's token (docs/architecture.md, "Who may read what").
    viewer_tokens: SecretStr = SecretStr("")
    # Sent as `authorization: Bearer <token>` on every call to the projection's read API, which
    # refuses calls without it when it has the same token set.
    readmodel_token: SecretStr = SecretStr("")
    # Where tickets are started. Only tests point this elsewhere (a fresh queue per test session).
    core_queue: str = Field(names.CORE_QUEUE, min_length=1)

    # Policy travelling in each new ticket's workflow input (fixed for the ticket's life).
    confidence_threshold: float = _policy_default("confidence_threshold")
    auto_approve_limit_cents: int = _policy_default("auto_approve_limit_cents")
    approval_timeout_s: float = _policy_default("approval_timeout_s")
    agent_schedule_to_start_s: float = _policy_default("agent_schedule_to_start_s")
    fallback_schedule_to_start_s: float = _policy_default("fallback_schedule_to_start_s")
    # Finer knobs (same naming): per-attempt budgets and liveness.
    agent_start_to_close_s: float = _policy_default("agent_start_to_close_s")
    agent_heartbeat_timeout_s: float = _policy_default("agent_heartbeat_timeout_s")
    fallback_start_to_close_s: float = _policy_default("fallback_start_to_close_s")
    side_effect_start_to_close_s: float = _policy_default("side_effect_start_to_close_s")
    # After a fallback answer that looks auto-approvable, the primary is asked again this long
    # (0: never) before a human sees the ticket; fallback answers below the confidence floor are
    # not asked again.
    primary_recheck_schedule_to_start_s: float = _policy_default(
        "primary_recheck_schedule_to_start_s"
    )
    fallback_recheck_min_confidence: float = _policy_default("fallback_recheck_min_confidence")

    # Deadlines of the calls to Temporal. A read must answer fast or fall back; readiness is cheap.
    # Short enough that a client with a 5 s timeout sees a 503, not its own timeout, while Temporal
    # is down; long enough for a healthy server under load. The decide update waits for the
    # workflow's answer (a worker), so it has a budget of its own.
    query_timeout_s: float = Field(2.0, gt=0, le=_MAX_DEADLINE_S)
    rpc_timeout_s: float = Field(3.0, gt=0, le=_MAX_DEADLINE_S)
    decide_timeout_s: float = Field(10.0, gt=0, le=_MAX_DEADLINE_S)
    health_timeout_s: float = Field(1.0, gt=0, le=_MAX_DEADLINE_S)
    # Retries of a call Temporal could not take (UNAVAILABLE and the like), within its deadline.
    # The SDK's default is 10 retries over up to 10 s: what made every call take 6-10 s to fail.
    rpc_retries: int = Field(2, ge=0, le=10)
    # The circuit breaker around the calls to Temporal (`_circuit.py`): open after this many
    # consecutive failures, answer 503 at once, probe with a health check after the cool-down.
    circuit_failures: int = Field(3, ge=1, le=1000)
    circuit_cooldown_s: float = Field(2.0, gt=0, le=_MAX_DEADLINE_S)
    # Deadline of a read-model lookup (the fallback of GET /tickets/{id} and GetTicket).
    read_model_timeout_s: float = Field(1.0, gt=0, le=_MAX_DEADLINE_S)
    # How often the gRPC health status of TicketService follows Temporal's reachability.
    health_interval_s: float = Field(5.0, gt=0, le=_MAX_DEADLINE_S)
    # In-flight requests get this long to finish after SIGTERM (HTTP and gRPC alike).
    shutdown_grace_s: float = Field(10.0, gt=0, le=_MAX_DEADLINE_S)
    # Request bodies above this are refused with 413 before they are parsed.
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # Slow clients (connections.py): a request's headers, then its body, must arrive within these;
    # the first also bounds a gRPC connection's handshake.
    http_header_timeout_s: float = Field(10.0, gt=0, le=_MAX_DEADLINE_S)
    http_body_timeout_s: float = Field(30.0, gt=0, le=_MAX_DEADLINE_S)
    # Open connections at most; unset: a share of the descriptor limit (`connections.py`).
    http_max_connections: int | None = Field(None, ge=1)
    grpc_max_connections: int | None = Field(None, ge=1)
    # The approvals console (`console/`): the currency refunds are shown in (amounts are cents of
    # it), and how long a sign-in lasts before the approver signs in again.
    console_currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    console_session_s: float = Field(8 * 3600.0, ge=60, le=7 * 24 * 3600)

    _approvers: tuple[TokenHolder, ...] = PrivateAttr(default=())
    _viewers: tuple[TokenHolder, ...] = PrivateAttr(default=())
    _policy: Policy = PrivateAttr(default_factory=Policy)

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        try:
            self._approvers = parse_approver_tokens(self.approver_tokens.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"TICKETFLOW_APPROVER_TOKENS is malformed: {exc}") from None
        try:
            self._viewers = parse_tokens(self.viewer_tokens.get_secret_value(), "viewer")
        except ValueError as exc:
            raise ValueError(f"TICKETFLOW_VIEWER_TOKENS is malformed: {exc}") from None
        readmodel_token = self.readmodel_token.get_secret_value()
        if readmodel_token and (
            len(readmodel_token) < READMODEL_TOKEN_MIN_CHARS
            or any(ch.isspace() for ch in readmodel_token)
        ):
            raise ValueError(
                f"TICKETFLOW_READMODEL_TOKEN must be at least {READMODEL_TOKEN_MIN_CHARS} "
                "characters without whitespace (`openssl rand -hex 32` makes one), the same on "
                "the api and the projection"
            )
        problems = {
            field: f"must be at most {limit:.0f} seconds ({label})"
            for field, (limit, label) in POLICY_MAX_S.items()
            if not getattr(self, field) <= limit  # `not <=` refuses nan too
        }
        # Every Policy field this class also has (same name); the others keep their defaults.
        shared = Policy.model_fields.keys() & type(self).model_fields.keys()
        values = {field: getattr(self, field) for field in shared}
        # The re-ask delays the moment a human can see the ticket: never by more than a human
        # is given to decide it. Unset, it follows a shorter approval timeout down.
        recheck = "primary_recheck_schedule_to_start_s"
        if recheck not in self.model_fields_set:
            values[recheck] = min(values[recheck], self.approval_timeout_s)
        elif recheck not in problems and not values[recheck] <= self.approval_timeout_s:
            problems[recheck] = (
                f"must not exceed {env_var('approval_timeout_s')}; lower it, or set 0 to hand "
                "fallback answers to a human at once"
            )
        try:
            self._policy = Policy(**values)
        except ValidationError as exc:
            for err in exc.errors():
                problems.setdefault(str(err["loc"][0]), err["msg"])
        if problems:
            listed = "; ".join(f"{env_var(field)}: {msg}" for field, msg in problems.items())
            raise ValueError(f"invalid policy: {listed}")
        return self

    @property
    def approvers(self) -> tuple[TokenHolder, ...]:
        return self._approvers

    @property
    def viewers(self) -> tuple[TokenHolder, ...]:
        """Who may only read; empty when reads are open (TICKETFLOW_VIEWER_TOKENS unset)."""
        return self._viewers

    @property
    def policy(self) -> Policy:
        """The contracts `Policy` new tickets are started with."""
        return self._policy.model_copy()
