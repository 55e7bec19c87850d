"""The api's signature over a decision: what it covers, rotation, and key parsing."""

from __future__ import annotations

import base64

import pytest
from ticketflow.contracts import DecideInput
from ticketflow.contracts.decision_signing import (
    DecisionKey,
    DecisionVerifier,
    parse_decision_keys,
    sign_decision,
)

OLD = DecisionKey("k1", b"o" * 32)
NEW = DecisionKey("k2", b"n" * 32)
DECISION = DecideInput(approved=True, approver="alice", reason="checked")


def test_a_signed_decision_verifies_for_its_ticket_only() -> None:
    signed = sign_decision("t-1", DECISION, NEW)
    verifier = DecisionVerifier([NEW])
    assert signed.key_id == "k2" and signed.signature
    assert verifier.problem("t-1", signed) is None
    assert verifier.problem("t-2", signed) == "the decision's signature does not match"


@pytest.mark.parametrize(
    "change",
    [{"approved": False}, {"approver": "mallory"}, {"reason": "other"}, {"reason": None}],
)
def test_every_field_of_the_decision_is_covered(change: dict[str, object]) -> None:
    signed = sign_decision("t-1", DECISION, NEW)
    tampered = signed.model_copy(update=change)
    assert DecisionVerifier([NEW]).problem("t-1", tampered) == (
        "the decision's signature does not match"
    )


def test_unsigned_unknown_key_and_no_keys_are_refused() -> None:
    verifier = DecisionVerifier([NEW])
    assert verifier.problem("t-1", DECISION) == "the decision is not signed by the api"
    assert "unknown key id 'k1'" in str(
        verifier.problem("t-1", sign_decision("t-1", DECISION, OLD))
    )
    assert "no decision keys" in str(DecisionVerifier([]).problem("t-1", DECISION))
    # A key id swapped onto another key's signature does not verify either.
    relabelled = sign_decision("t-1", DECISION, OLD).model_copy(update={"key_id": "k2"})
    assert DecisionVerifier([OLD, NEW]).problem("t-1", relabelled) is not None
    garbage = DECISION.model_copy(update={"key_id": "k2", "signature": "é" * 64})
    assert verifier.problem("t-1", garbage) == "the decision's signature does not match"


def test_rotation_the_previous_key_verifies_while_it_is_listed() -> None:
    by_old = sign_decision("t-1", DECISION, OLD)
    assert DecisionVerifier([NEW, OLD]).problem("t-1", by_old) is None
    assert DecisionVerifier([NEW]).problem("t-1", by_old) is not None


def test_parse_keys_accepts_both_base64_alphabets_and_newlines() -> None:
    std = base64.b64encode(b"\xfb" * 32).decode()
    url = base64.urlsafe_b64encode(b"\xfb" * 32).decode().rstrip("=")
    keys = parse_decision_keys(f"# comment\nk2:{std}, k1:{url}\n")
    assert [k.key_id for k in keys] == ["k2", "k1"]
    assert keys[0].secret == keys[1].secret == b"\xfb" * 32
    assert "secret=<hidden>" in repr(keys[0]) and std not in repr(keys)
    assert parse_decision_keys("  ") == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("k1", "entry 1 is not of the form kid:base64secret"),
        ("bad id:" + base64.b64encode(b"x" * 32).decode(), "entry 1: the key id"),
        ("k1:not*base64", "entry 1 (k1): the secret is not base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "at least 16 bytes"),
        ("k1:{s},k1:{s}".format(s=base64.b64encode(b"x" * 32).decode()), "appears twice"),
    ],
)
def test_parse_keys_refuses_bad_entries_without_echoing_secrets(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        parse_decision_keys(raw)
    assert "not*base64" not in str(err.value)
