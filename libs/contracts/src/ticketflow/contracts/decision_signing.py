"""Decisions the api vouches for: an HMAC-SHA256 over one `decide` update (docs/architecture.md,
"The ticket workflow" and "Configuration").

The api checks an approver's token and signs the decision it sends; the core worker's `decide`
validator accepts only a decision signed with one of its keys. Anyone who reaches the Temporal
frontend can send the update, but without a key they cannot make a signature, so a forged decision
is refused before anything is written to history.

Pure (no I/O, no clock, no environment), so the workflow sandbox may import it. Keys come from
`TICKETFLOW_DECISION_KEYS` / `TICKETFLOW_DECISION_KEYS_FILE`, read by `ticketflow.runtime` at a
service's start: `kid:base64secret,kid2:base64secret`. The first key signs; every listed key
verifies, so a rotation is: add the new key (second) everywhere, make it first (the signer), and
drop the old one once no decision signed with it can still arrive (after the approval timeout).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .models import DecideInput

__all__ = [
    "KEY_ID_PATTERN",
    "MIN_SECRET_BYTES",
    "DecisionKey",
    "DecisionVerifier",
    "decision_message",
    "parse_decision_keys",
    "sign_decision",
]

KEY_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
MIN_SECRET_BYTES = 16
_KEY_ID = re.compile(KEY_ID_PATTERN)
# Bumped only if the signed message ever changes shape; old signatures then stop verifying.
_DOMAIN = "ticketflow/decide/v1"


@dataclass(frozen=True, slots=True)
class DecisionKey:
    """One shared signing key; `repr` never shows the secret."""

    key_id: str
    secret: bytes

    def __repr__(self) -> str:
        return f"DecisionKey(key_id={self.key_id!r}, secret=<hidden>)"


def parse_decision_keys(raw: str) -> tuple[DecisionKey, ...]:
    """Parse `kid:base64secret` entries separated by commas or newlines (`#` starts a comment
    line). Raises ValueError naming the bad entry by position and key id, never its secret."""
    keys: list[DecisionKey] = []
    entries = [
        entry.strip()
        for line in raw.splitlines()
        if not line.strip().startswith("#")
        for entry in line.split(",")
    ]
    for position, entry in enumerate((e for e in entries if e), start=1):
        kid, sep, encoded = entry.partition(":")
        kid, encoded = kid.strip(), encoded.strip()
        if not sep or not encoded:
            raise ValueError(f"entry {position} is not of the form kid:base64secret")
        if not _KEY_ID.match(kid):
            raise ValueError(
                f"entry {position}: the key id must be 1-64 of letters, digits and _ . -"
            )
        try:
            secret = base64.b64decode(
                encoded.replace("-", "+").replace("_", "/") + "=" * (-len(encoded) % 4),
                validate=True,
            )
        except (binascii.Error, ValueError):
            raise ValueError(f"entry {position} ({kid}): the secret is not base64") from None
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"entry {position} ({kid}): the secret must be at least {MIN_SECRET_BYTES} bytes "
                "(use 32 random bytes, e.g. `openssl rand -base64 32`)"
            )
        keys.append(DecisionKey(kid, secret))
    kids = [k.key_id for k in keys]
    if len(set(kids)) != len(kids):
        raise ValueError("a key id appears twice")
    return tuple(keys)


def decision_message(ticket_id: str, decision: DecideInput, key_id: str) -> bytes:
    """The bytes that are signed: one canonical JSON array of everything the decision means."""
    fields = [
        _DOMAIN,
        ticket_id,
        decision.approved,
        decision.approver,
        decision.reason,
        key_id,
    ]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _mac(key: DecisionKey, ticket_id: str, decision: DecideInput) -> str:
    message = decision_message(ticket_id, decision, key.key_id)
    return hmac.new(key.secret, message, hashlib.sha256).hexdigest()


def sign_decision(ticket_id: str, decision: DecideInput, key: DecisionKey) -> DecideInput:
    """A copy of ``decision`` carrying ``key``'s id and signature for ``ticket_id``."""
    return decision.model_copy(
        update={"key_id": key.key_id, "signature": _mac(key, ticket_id, decision)}
    )


class DecisionVerifier:
    """Checks signatures against every listed key (the signer and the ones being rotated out)."""

    def __init__(self, keys: Iterable[DecisionKey]) -> None:
        self._keys = {k.key_id: k for k in keys}

    def __bool__(self) -> bool:
        return bool(self._keys)

    @property
    def key_ids(self) -> Sequence[str]:
        return tuple(self._keys)

    def problem(self, ticket_id: str, decision: DecideInput) -> str | None:
        """None when the decision is signed for this ticket with a listed key, else why not
        (safe to show to the sender: it names no secret and no expected value)."""
        if not self._keys:
            return "the core worker has no decision keys configured (TICKETFLOW_DECISION_KEYS)"
        if not decision.signature or not decision.key_id:
            return "the decision is not signed by the api"
        key = self._keys.get(decision.key_id)
        if key is None:
            return f"the decision is signed with an unknown key id {decision.key_id!r}"
        expected = _mac(key, ticket_id, decision)
        presented = decision.signature.lower().encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(expected.encode("ascii"), presented):
            return "the decision's signature does not match"
        return None
