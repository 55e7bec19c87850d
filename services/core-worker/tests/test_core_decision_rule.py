"""Which fallback answers are worth asking the primary again (``_decision.worth_rechecking``): only
ones a human would not have to see had the primary given them."""

from __future__ import annotations

import pytest
from ticketflow.contracts.models import (
    ActionKind,
    Category,
    Classification,
    Draft,
    ModelTier,
    Policy,
)
from ticketflow.core_worker._decision import worth_rechecking

P, F = ModelTier.PRIMARY, ModelTier.FALLBACK


def _answer(tier: ModelTier, confidence: float, refund: int | None = None) -> Classification:
    return Classification(
        category=Category.REFUND if refund else Category.ACCOUNT,
        confidence=confidence,
        action=ActionKind.REFUND if refund else ActionKind.REPLY_ONLY,
        refund_cents=refund,
        model=f"m-{tier.value}",
        tier=tier,
    )


@pytest.mark.parametrize(
    ("classification", "draft_tier", "expected"),
    [
        pytest.param(_answer(P, 0.95), P, False, id="all-primary"),
        pytest.param(_answer(F, 0.45), F, True, id="fallback-confident-on-its-scale"),
        pytest.param(_answer(F, 0.45, refund=5_000), F, True, id="fallback-refund-at-limit"),
        pytest.param(_answer(F, 0.45, refund=5_001), F, False, id="fallback-big-refund"),
        pytest.param(_answer(F, 0.40), F, False, id="fallback-unsure"),
        pytest.param(_answer(P, 0.95), F, True, id="primary-classified-fallback-drafted"),
        pytest.param(_answer(P, 0.60), F, False, id="primary-unsure-fallback-drafted"),
    ],
)
def test_which_fallback_answers_are_worth_asking_the_primary_again(
    classification: Classification, draft_tier: ModelTier, expected: bool
) -> None:
    draft = Draft(text="hi", model="m", tier=draft_tier)
    assert worth_rechecking(classification, draft, Policy()) is expected


def test_a_recheck_budget_of_zero_turns_it_off() -> None:
    draft = Draft(text="hi", model="m", tier=F)
    assert not worth_rechecking(
        _answer(F, 0.45), draft, Policy(primary_recheck_schedule_to_start_s=0)
    )
