"""Orders: pure rules and state transitions. No I/O; every function returns the new state and the event to publish."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum

MONEY_EXP = Decimal("0.01")
CURRENCY = re.compile(r"^[A-Z]{3}$")
PAYMENT_METHOD = re.compile(r"^pm_[A-Za-z0-9_]{1,64}$")


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


class CancelReason(StrEnum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    CUSTOMER_CANCELLED = "CUSTOMER_CANCELLED"
    TIMEOUT = "TIMEOUT"


class OrderRuleViolation(ValueError):
    """The request breaks an order rule; the API answers 422 with this message."""


class InvalidTransition(Exception):
    """A state change that the order's current state forbids (e.g. confirming a cancelled order)."""


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(MONEY_EXP)


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    lines: tuple[OrderLine, ...]
    currency: str
    payment_method: str
    status: OrderStatus = OrderStatus.PENDING
    cancel_reason: CancelReason | None = None
    version: int = 1

    @property
    def total_amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0")).quantize(MONEY_EXP)


def place(order_id: str, customer_id: str, lines: list[OrderLine], currency: str, payment_method: str) -> Order:
    if not lines:
        raise OrderRuleViolation("an order needs at least one item")
    skus = [line.sku for line in lines]
    if len(set(skus)) != len(skus):
        raise OrderRuleViolation("each sku may appear only once per order; sum the quantities instead")
    for line in lines:
        if line.quantity <= 0:
            raise OrderRuleViolation(f"quantity of {line.sku} must be positive")
        if not line.unit_price.is_finite():
            raise OrderRuleViolation(f"unit_price of {line.sku} must be a finite number")
        if line.unit_price <= 0:
            raise OrderRuleViolation(f"unit_price of {line.sku} must be positive")
        if not _has_cents_precision(line.unit_price):
            raise OrderRuleViolation(f"unit_price of {line.sku} has more than 2 decimal places")
    if not CURRENCY.match(currency):
        raise OrderRuleViolation("currency must be an ISO 4217 code such as USD")
    if not PAYMENT_METHOD.match(payment_method):
        raise OrderRuleViolation("payment_method must look like pm_card_visa")
    order = Order(order_id, customer_id, tuple(lines), currency, payment_method)
    if order.total_amount >= Decimal("1e16"):
        raise OrderRuleViolation("total amount too large")
    return order


def _has_cents_precision(value: Decimal) -> bool:
    try:
        return value == value.quantize(MONEY_EXP)
    except InvalidOperation:  # too many digits to quantize at all
        return False


def confirm(order: Order) -> Order | None:
    """The confirmed order, or None when it already is (a duplicate command changes nothing)."""
    if order.status is OrderStatus.CONFIRMED:
        return None
    if order.status is OrderStatus.CANCELLED:
        raise InvalidTransition(f"order {order.order_id} is cancelled; it cannot be confirmed")
    return replace(order, status=OrderStatus.CONFIRMED, version=order.version + 1)


def cancel(order: Order, reason: CancelReason) -> Order | None:
    """The cancelled order, or None when it already is cancelled."""
    if order.status is OrderStatus.CANCELLED:
        return None
    if order.status is OrderStatus.CONFIRMED:
        raise InvalidTransition(f"order {order.order_id} is confirmed; cancelling it needs a refund")
    return replace(order, status=OrderStatus.CANCELLED, cancel_reason=reason, version=order.version + 1)
