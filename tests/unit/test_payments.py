"""Payments: the forward-only status machine and the simulated provider."""
from __future__ import annotations

from decimal import Decimal
from itertools import product

import pytest

from services.payments.domain import Payment, PaymentRuleViolation, PaymentStatus, move
from services.payments.provider import CHARGE_THEN_TIMEOUT, Authorization, simulated_authorization

S = PaymentStatus
ALLOWED = {(S.AUTHORIZED, S.CAPTURED), (S.AUTHORIZED, S.VOIDED), (S.CAPTURED, S.REFUNDED)}
FORBIDDEN = [(a, b) for a, b in product(S, S) if a is not b and (a, b) not in ALLOWED]


def _payment(status: PaymentStatus) -> Payment:
    return Payment("pay-1", "order-1", Decimal("12.34"), "EUR", status, provider_ref="sim_x", version=3)


@pytest.mark.parametrize("source, target", sorted(ALLOWED))
def test_move_allows_the_forward_transitions(source: PaymentStatus, target: PaymentStatus) -> None:
    before = _payment(source)
    after = move(before, target)
    assert after is not None
    assert after.status is target
    assert after.version == before.version + 1
    assert (after.payment_id, after.amount, after.provider_ref) == ("pay-1", Decimal("12.34"), "sim_x")


@pytest.mark.parametrize("source, target", FORBIDDEN)
def test_move_refuses_every_other_transition(source: PaymentStatus, target: PaymentStatus) -> None:
    with pytest.raises(PaymentRuleViolation, match=f"pay-1 is {source}; cannot become {target}"):
        move(_payment(source), target)


@pytest.mark.parametrize("status", list(S))
def test_move_to_the_current_status_is_a_duplicate(status: PaymentStatus) -> None:
    assert move(_payment(status), status) is None


def test_the_transition_tables_cover_every_pair() -> None:
    assert len(ALLOWED) + len(FORBIDDEN) + len(S) == len(S) ** 2


@pytest.mark.parametrize("method", ["pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_visa_debit"])
def test_simulated_provider_approves_the_approving_test_cards(method: str) -> None:
    result = simulated_authorization("authorize:o1", method)
    assert result.approved
    assert result.decline_code is None
    assert result.provider_ref.startswith("sim_")


@pytest.mark.parametrize("method, code", [
    ("pm_card_chargeDeclined", "card_declined"),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
    ("pm_card_unknown", "unsupported_payment_method"),
])
def test_simulated_provider_declines_with_a_code(method: str, code: str) -> None:
    result = simulated_authorization("authorize:o1", method)
    assert result == Authorization(False, result.provider_ref, code)
    assert not result.approved


def test_same_idempotency_key_gives_the_same_provider_ref() -> None:
    first = simulated_authorization("authorize:o1", "pm_card_visa")
    again = simulated_authorization("authorize:o1", "pm_card_visa")
    other = simulated_authorization("authorize:o2", "pm_card_visa")
    assert first == again
    assert other.provider_ref != first.provider_ref
    assert len(first.provider_ref) == len("sim_") + 24


def test_the_ambiguous_fault_method_approves() -> None:
    assert simulated_authorization("authorize:o1", CHARGE_THEN_TIMEOUT).approved


def test_outside_test_mode_the_fault_method_is_an_unsupported_one() -> None:
    answer = simulated_authorization("authorize:o1", CHARGE_THEN_TIMEOUT, fault_injection=False)
    assert (answer.approved, answer.decline_code) == (False, "unsupported_payment_method")
