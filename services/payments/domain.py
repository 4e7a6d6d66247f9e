"""Payments: pure rules. A payment belongs to one order; its status only moves forward."""
from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum


class PaymentStatus(StrEnum):
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    DECLINED = "DECLINED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


class PaymentRuleViolation(Exception):
    """A transition the payment's state forbids (e.g. capturing a voided authorization)."""


@dataclass(frozen=True)
class Payment:
    payment_id: str
    order_id: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    provider_ref: str | None = None
    decline_code: str | None = None
    version: int = 1
    customer_id: str | None = None  # whose payment it is (who may read it)


_ALLOWED = {
    PaymentStatus.AUTHORIZED: {PaymentStatus.CAPTURED, PaymentStatus.VOIDED},
    PaymentStatus.CAPTURED: {PaymentStatus.REFUNDED},
    PaymentStatus.DECLINED: set(),
    PaymentStatus.VOIDED: set(),
    PaymentStatus.REFUNDED: set(),
}


def move(payment: Payment, to: PaymentStatus) -> Payment | None:
    """The payment in state `to`, None if it already is there (duplicate), or PaymentRuleViolation."""
    if payment.status is to:
        return None
    if to not in _ALLOWED[payment.status]:
        raise PaymentRuleViolation(f"payment {payment.payment_id} is {payment.status}; cannot become {to}")
    return replace(payment, status=to, version=payment.version + 1)
