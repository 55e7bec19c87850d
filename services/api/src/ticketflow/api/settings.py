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

__all__ = ["POLICY_MAX_S", "Approver", "Settings", "parse_approver_tokens"]

_APPROVER_NAME = re.compile(rf"^[A-Za-z0-9_.@-]{{1,{MAX_ID_CHARS}}}$")


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
}
# Upper bound of the api's own deadlines and intervals.
_MAX_DEADLINE_S = 3600.0


@dataclass(frozen=True, slots=True)
class Approver:
    """A human allowed to decide tickets; `repr` never shows the token."""

    name: str
    token: str

    def __repr__(self) -> str:
        return f"Approver(name={self.name!r}, token=<hidden>)"


def parse_approver_tokens(raw: str) -> tuple[Approver, ...]:
    """Parse `name:token,name:token`. Raises ValueError naming the bad entry (never its token)."""
    approvers: list[Approver] = []
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
        if not _APPROVER_NAME.match(name):
            raise ValueError(
                f"entry {position}: approver name must be 1-{MAX_ID_CHARS} of "
                "letters, digits and _ . @ -"
            )
        if any(ch.isspace() for ch in token):
            raise ValueError(f"entry {position} ({name}): the token contains whitespace")
        approvers.append(Approver(name=name, token=token))
    seen_names = [a.name for a in approvers]
    if len(set(seen_names)) != len(seen_names):
        raise ValueError("an approver name appears twice")
    if len({a.token for a in approvers}) != len(approvers):
        raise ValueError("two approvers share a token (a token must identify one approver)")
    return tuple(approvers)


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

    # Deadlines of the calls to Temporal. A read must answer fast or fall back; readiness is cheap.
    query_timeout_s: float = Field(2.0, gt=0, le=_MAX_DEADLINE_S)
    rpc_timeout_s: float = Field(10.0, gt=0, le=_MAX_DEADLINE_S)
    health_timeout_s: float = Field(1.0, gt=0, le=_MAX_DEADLINE_S)
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

    _approvers: tuple[Approver, ...] = PrivateAttr(default=())
    _policy: Policy = PrivateAttr(default_factory=Policy)

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        try:
            self._approvers = parse_approver_tokens(self.approver_tokens.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"TICKETFLOW_APPROVER_TOKENS is malformed: {exc}") from None
        problems = {
            field: f"must be at most {limit:.0f} seconds ({label})"
            for field, (limit, label) in POLICY_MAX_S.items()
            if not getattr(self, field) <= limit  # `not <=` refuses nan too
        }
        try:
            # Every Policy field this class also has (same name); the others keep their defaults.
            shared = Policy.model_fields.keys() & type(self).model_fields.keys()
            self._policy = Policy(**{field: getattr(self, field) for field in shared})
        except ValidationError as exc:
            for err in exc.errors():
                problems.setdefault(str(err["loc"][0]), err["msg"])
        if problems:
            listed = "; ".join(f"{env_var(field)}: {msg}" for field, msg in problems.items())
            raise ValueError(f"invalid policy: {listed}")
        return self

    @property
    def approvers(self) -> tuple[Approver, ...]:
        return self._approvers

    @property
    def policy(self) -> Policy:
        """The contracts `Policy` new tickets are started with."""
        return self._policy.model_copy()
