"""The decision signing keys shared by the api (signs) and the core worker (verifies).

``DecisionKeySettings`` adds ``TICKETFLOW_DECISION_KEYS`` (``kid:base64secret,...``) and
``TICKETFLOW_DECISION_KEYS_FILE`` (a file of the same entries, one per line or comma-separated,
``#`` comments) to a service's settings; both may be set, the variable's keys come first. The
first key signs, every key verifies (rotation: ``ticketflow.contracts.decision_signing``). A bad
entry or an unreadable file stops the process (exit code 2) naming the variable, never a secret.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import PrivateAttr, SecretStr, model_validator
from ticketflow.contracts.decision_signing import DecisionKey, parse_decision_keys

from .settings import ServiceSettings

__all__ = ["DecisionKeySettings", "load_decision_keys"]


def load_decision_keys(inline: str, file: Path | None) -> tuple[DecisionKey, ...]:
    """The keys of ``inline`` then of ``file``. Raises ValueError naming the variable."""
    try:
        keys = parse_decision_keys(inline)
    except ValueError as exc:
        raise ValueError(f"TICKETFLOW_DECISION_KEYS is malformed: {exc}") from None
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ValueError(f"TICKETFLOW_DECISION_KEYS_FILE cannot be read: {why}") from None
        try:
            keys += parse_decision_keys(text)
        except ValueError as exc:
            raise ValueError(f"TICKETFLOW_DECISION_KEYS_FILE is malformed: {exc}") from None
    kids = [k.key_id for k in keys]
    if len(set(kids)) != len(kids):
        raise ValueError(
            "a key id appears twice across TICKETFLOW_DECISION_KEYS and TICKETFLOW_DECISION_KEYS_FILE"
        )
    return keys


class DecisionKeySettings(ServiceSettings):
    """``ServiceSettings`` plus the decision keys (a service that signs or verifies decisions)."""

    decision_keys: SecretStr = SecretStr("")
    decision_keys_file: Path | None = None

    _decision_keys: tuple[DecisionKey, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _load_decision_keys(self) -> DecisionKeySettings:
        self._decision_keys = load_decision_keys(
            self.decision_keys.get_secret_value(), self.decision_keys_file
        )
        return self

    @property
    def keys_for_decisions(self) -> tuple[DecisionKey, ...]:
        """Every key, the signer first; empty when none is configured."""
        return self._decision_keys
