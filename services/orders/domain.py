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
    CANCELLING = "CANCELLING"  # a confirmed order the customer cancelled: its refund is in progress
    CANCELLED = "CANCELLED"


class CancelReason(StrEnum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    CUSTOMER_CANCELLED = "CUSTOMER_CANCELLED"
    TIMEOUT = "TIMEOUT"


class Channel(StrEnum):
    """Where the customer placed the order (OrderCreated v2); unknown for orders placed without saying."""
    WEB = "web"
    MOBILE = "mobile"
    STORE = "store"
    PARTNER = "partner"


class OrderRuleViolation(ValueError):
    """The request breaks an order rule; the API answers 422 with this message."""


class InvalidTransition(Exception):
    """A state change that the order's current state forbids (e.g. confirming a cancelled order)."""


class StaleVersion(Exception):
    """The caller's If-Match names a version the order no longer has (API: 412)."""

    def __init__(self, order_id: str, expected: int, actual: int) -> None:
        super().__init__(f"order {order_id} is at version {actual}, not {expected}")
        self.expected, self.actual = expected, actual


class AlreadyCancelled(Exception):
    """A customer cancellation of an order that is already cancelled or being cancelled (API: 409)."""


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
    channel: Channel | None = None

    @property
    def total_amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0")).quantize(MONEY_EXP)


@dataclass(frozen=True)
class CatalogPrice:
    """The orders service's copy of a SKU's price (from inventory's PriceChanged events)."""
    unit_price: Decimal
    currency: str
    version: int


@dataclass(frozen=True)
class RequestedLine:
    sku: str
    quantity: int
    unit_price: Decimal | None = None  # what the client saw, if it says; the catalog decides


class NotOrderable(Exception):
    """A SKU without a known price (API: 409)."""

    def __init__(self, skus: list[str]) -> None:
        super().__init__(f"no price known for {', '.join(skus)}")
        self.skus = skus


class PriceChanged(Exception):
    """The client's price for a SKU is not the current one (API: 409 price_changed, with the current prices)."""

    def __init__(self, current: dict[str, Decimal]) -> None:
        super().__init__("the price of " + ", ".join(f"{sku} is {price}" for sku, price in current.items()))
        self.current = current


def price_lines(requested: list[RequestedLine], catalog: dict[str, CatalogPrice], currency: str) -> list[OrderLine]:
    """Order lines at the catalog's prices: the server, never the client, sets what an order costs. A price the client
    gives must be the current one; every SKU must have a price, in the order's currency."""
    skus = [r.sku for r in requested]
    if len(set(skus)) != len(skus):
        raise OrderRuleViolation("each sku may appear only once per order; sum the quantities instead")
    unknown = sorted({r.sku for r in requested if r.sku not in catalog})
    if unknown:
        raise NotOrderable(unknown)
    other = sorted({r.sku for r in requested if catalog[r.sku].currency != currency})
    if other:
        raise OrderRuleViolation(f"{', '.join(other)} not sold in {currency} (priced in "
                                 f"{', '.join(sorted({catalog[s].currency for s in other}))})")
    changed = {r.sku: catalog[r.sku].unit_price for r in requested
               if r.unit_price is not None and r.unit_price != catalog[r.sku].unit_price}
    if changed:
        raise PriceChanged(changed)
    return [OrderLine(r.sku, r.quantity, catalog[r.sku].unit_price) for r in requested]


def newer_price(current: CatalogPrice | None, incoming: CatalogPrice) -> bool:
    """A copy keeps the highest version: a redelivered or overtaken PriceChanged changes nothing."""
    return current is None or incoming.version > current.version


def place(order_id: str, customer_id: str, lines: list[OrderLine], currency: str, payment_method: str,
          channel: Channel | None = None) -> Order:
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
    order = Order(order_id, customer_id, tuple(lines), currency, payment_method, channel=channel)
    if order.total_amount >= Decimal("1e16"):
        raise OrderRuleViolation("total amount too large")
    return order


def _has_cents_precision(value: Decimal) -> bool:
    try:
        return value == value.quantize(MONEY_EXP)
    except InvalidOperation:  # too many digits to quantize at all
        return False


def confirm(order: Order) -> Order | None:
    """The confirmed order, or None when it already is (a duplicate command changes nothing; a CANCELLING order was
    confirmed before the customer cancelled it)."""
    if order.status in (OrderStatus.CONFIRMED, OrderStatus.CANCELLING):
        return None
    if order.status is OrderStatus.CANCELLED:
        raise InvalidTransition(f"order {order.order_id} is cancelled; it cannot be confirmed")
    return replace(order, status=OrderStatus.CONFIRMED, version=order.version + 1)


def cancel(order: Order, reason: CancelReason) -> Order | None:
    """The cancelled order, or None when it already is cancelled. A CANCELLING order (refunded by now) closes with
    the customer's reason, whatever `reason` says."""
    if order.status is OrderStatus.CANCELLED:
        return None
    if order.status is OrderStatus.CONFIRMED:
        raise InvalidTransition(f"order {order.order_id} is confirmed; cancelling it needs a refund")
    if order.status is OrderStatus.CANCELLING:
        reason = CancelReason.CUSTOMER_CANCELLED
    return replace(order, status=OrderStatus.CANCELLED, cancel_reason=reason, version=order.version + 1)


def request_cancellation(order: Order, if_match: int | None = None) -> Order:
    """A customer's cancel. Precedence: the order row decides. Whatever committed first on it wins:
    - PENDING (the saga has not confirmed yet): cancelled now; the saga sees it and compensates, and a ConfirmOrder
      arriving later is refused.
    - CONFIRMED (the confirmation won the race): CANCELLING; a refund saga refunds the payment, returns the stock and
      then closes the order as CANCELLED.
    Raises StaleVersion when `if_match` is not the current version, AlreadyCancelled for a second cancel."""
    if if_match is not None and if_match != order.version:
        raise StaleVersion(order.order_id, if_match, order.version)
    if order.status in (OrderStatus.CANCELLED, OrderStatus.CANCELLING):
        raise AlreadyCancelled(f"order {order.order_id} is already {order.status.value}")
    if order.status is OrderStatus.CONFIRMED:
        return replace(order, status=OrderStatus.CANCELLING, version=order.version + 1)
    return replace(order, status=OrderStatus.CANCELLED, cancel_reason=CancelReason.CUSTOMER_CANCELLED,
                   version=order.version + 1)
