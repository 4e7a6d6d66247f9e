"""The payment-provider port and the built-in simulated provider (Stripe's test payment methods)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

APPROVING = {"pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_visa_debit"}
DECLINING = {
    "pm_card_chargeDeclined": "card_declined",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
}


@dataclass(frozen=True)
class Authorization:
    approved: bool
    provider_ref: str
    decline_code: str | None = None


class PaymentProvider(Protocol):
    """Every call carries an idempotency key: the provider answers a repeated key with the first result, so an
    ambiguous answer (charged, then timed out) can be retried without charging twice."""

    def authorize(self, idempotency_key: str, amount: Decimal, currency: str, payment_method: str) -> Authorization: ...

    def capture(self, idempotency_key: str, provider_ref: str) -> None: ...

    def void(self, idempotency_key: str, provider_ref: str) -> None: ...


class SimulatedProvider:
    """Deterministic: the same key gives the same reference, as a real provider's idempotency would."""

    def authorize(self, idempotency_key: str, amount: Decimal, currency: str, payment_method: str) -> Authorization:
        ref = f"sim_{uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex[:24]}"
        if payment_method in APPROVING:
            return Authorization(True, ref)
        return Authorization(False, ref, DECLINING.get(payment_method, "unsupported_payment_method"))

    def capture(self, idempotency_key: str, provider_ref: str) -> None:
        return None

    def void(self, idempotency_key: str, provider_ref: str) -> None:
        return None
