"""Reconciliation rules, pure: given what every service database says about one order (or one SKU), which
divergences exist and which repair is safe. No I/O; reconciliation/scan.py feeds it, repair.py acts on it."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum


class Kind(StrEnum):
    ORPHAN_PAYMENT = "ORPHAN_PAYMENT"              # a payment for an order the orders service does not have
    MISSING_PAYMENT = "MISSING_PAYMENT"            # a confirmed order without a captured payment
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"            # the payment's amount or currency differs from the order's
    CHARGE_ON_CANCELLED = "CHARGE_ON_CANCELLED"    # a cancelled order whose payment is still captured or authorized
    STUCK_SAGA = "STUCK_SAGA"                      # a saga parked, or unfinished past its SLA
    STOCK_DRIFT = "STOCK_DRIFT"                    # stock held against the order's state, or a SKU's totals off
    NOTIFICATION_MISSING = "NOTIFICATION_MISSING"  # a final state without its notification on a channel
    NOTIFICATION_DOUBLED = "NOTIFICATION_DOUBLED"  # more notifications than final states x channels


class Repair(StrEnum):
    """Safe repairs: each is a command a participant already handles idempotently."""
    REFUND_PAYMENT = "RefundPayment"
    VOID_PAYMENT = "VoidPayment"
    RELEASE_STOCK = "ReleaseStock"
    SEND_NOTIFICATION = "SendNotification"


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    customer_id: str
    status: str
    cancel_reason: str | None
    total_amount: Decimal
    currency: str
    updated_at: datetime


@dataclass(frozen=True)
class PaymentRow:
    order_id: str
    status: str
    amount: Decimal
    currency: str
    updated_at: datetime


@dataclass(frozen=True)
class SagaRow:
    saga_id: str
    status: str
    updated_at: datetime
    parked_reason: str | None = None


@dataclass(frozen=True)
class OrderFacts:
    """Everything the service databases hold about one order id (any part may be missing)."""
    order_id: str
    order: OrderRow | None = None
    payment: PaymentRow | None = None
    reservation: str | None = None                     # the reservation's status in inventory
    reservation_updated_at: datetime | None = None
    notifications: Counter = field(default_factory=Counter)  # (type, channel) -> rows
    saga: SagaRow | None = None

    def last_change(self) -> datetime | None:
        times = [t for t in (self.order and self.order.updated_at, self.payment and self.payment.updated_at,
                             self.reservation_updated_at, self.saga and self.saga.updated_at) if t]
        return max(times) if times else None


@dataclass(frozen=True)
class Divergence:
    kind: Kind
    subject: str          # the order id, or the SKU for a SKU-level drift
    detail: str
    since: datetime | None  # the last change of the subject (the report's age histogram)
    repair: Repair | None = None
    repair_record: dict | None = None


FINAL_NOTIFICATION = {"CONFIRMED": "OrderConfirmed", "CANCELLED": "OrderCancelled"}
TERMINAL_SAGA = {"COMPLETED", "FAILED"}


def check_order(facts: OrderFacts, channels: Iterable[str], now: datetime, saga_sla_s: float) -> list[Divergence]:
    out: list[Divergence] = []
    o, p, since = facts.order, facts.payment, facts.last_change()

    def add(kind: Kind, detail: str, repair: Repair | None = None, record: dict | None = None) -> None:
        out.append(Divergence(kind, facts.order_id, detail, since, repair, record))

    only = {"order_id": facts.order_id}
    if saga_in_flight(facts.saga):
        return _check_saga(facts, now, saga_sla_s)  # not judged while its saga still works on it (or is stuck)
    if o is None:
        if p is not None:
            repair = {"CAPTURED": Repair.REFUND_PAYMENT, "AUTHORIZED": Repair.VOID_PAYMENT}.get(p.status)
            add(Kind.ORPHAN_PAYMENT, f"payment {p.status} {p.amount} {p.currency} for an unknown order", repair,
                only if repair else None)
        return out
    if p is not None and (p.amount != o.total_amount or p.currency != o.currency):
        add(Kind.AMOUNT_MISMATCH, f"order {o.total_amount} {o.currency}, payment {p.amount} {p.currency}")
    if o.status == "CONFIRMED":
        if p is None or p.status != "CAPTURED":
            add(Kind.MISSING_PAYMENT, f"order CONFIRMED, payment {p.status if p else 'absent'}")
        if facts.reservation != "COMMITTED":
            add(Kind.STOCK_DRIFT, f"order CONFIRMED, reservation {facts.reservation or 'absent'}")
    elif o.status == "CANCELLED":
        if p is not None and p.status in ("CAPTURED", "AUTHORIZED"):
            repair = Repair.REFUND_PAYMENT if p.status == "CAPTURED" else Repair.VOID_PAYMENT
            add(Kind.CHARGE_ON_CANCELLED, f"order CANCELLED ({o.cancel_reason}), payment {p.status}", repair, only)
        if facts.reservation == "RESERVED":
            add(Kind.STOCK_DRIFT, "order CANCELLED, stock still RESERVED", Repair.RELEASE_STOCK, only)
        elif facts.reservation == "COMMITTED":
            add(Kind.STOCK_DRIFT, "order CANCELLED, stock COMMITTED and never returned")
    out += _check_notifications(facts, o, list(channels))
    return out


def saga_in_flight(saga: SagaRow | None) -> bool:
    return saga is not None and saga.status not in TERMINAL_SAGA


def recheck_at(facts: OrderFacts, saga_sla_s: float) -> datetime | None:
    """When an order whose saga is still running should be looked at again (its SLA), or None if it is settled."""
    s = facts.saga
    if s is None or s.status in TERMINAL_SAGA or s.status == "PARKED":
        return None
    return s.updated_at + timedelta(seconds=saga_sla_s)


def _check_notifications(facts: OrderFacts, o: OrderRow, channels: list[str]) -> list[Divergence]:
    """One notification per final state and channel. A customer-cancelled order that was refunded had been
    confirmed first, so its OrderConfirmed notification is allowed too, but never re-sent: telling a customer an
    order is confirmed after it was cancelled would be wrong."""
    out: list[Divergence] = []
    since = facts.last_change()
    required = {FINAL_NOTIFICATION[o.status]} if o.status in FINAL_NOTIFICATION else set()
    allowed = set(required)
    if o.status == "CANCELLED" and o.cancel_reason == "CUSTOMER_CANCELLED" and facts.payment is not None \
            and facts.payment.status == "REFUNDED":
        allowed.add("OrderConfirmed")
    for ntype in sorted(required):
        for channel in channels:
            if facts.notifications[(ntype, channel)] == 0:
                detail = "" if ntype == "OrderConfirmed" else (o.cancel_reason or "")
                out.append(Divergence(Kind.NOTIFICATION_MISSING, facts.order_id, f"no {ntype} on {channel}", since,
                                      Repair.SEND_NOTIFICATION,
                                      {"order_id": o.order_id, "customer_id": o.customer_id, "type": ntype,
                                       "channel": channel, "detail": detail}))
    for (ntype, channel), n in sorted(facts.notifications.items()):
        if n > 1 or ntype not in allowed:
            out.append(Divergence(Kind.NOTIFICATION_DOUBLED, facts.order_id,
                                  f"{n} x {ntype} on {channel} for an order {o.status}", since))
    return out


def _check_saga(facts: OrderFacts, now: datetime, saga_sla_s: float) -> list[Divergence]:
    s = facts.saga
    if s is None or s.status in TERMINAL_SAGA:
        return []
    if s.status == "PARKED":
        return [Divergence(Kind.STUCK_SAGA, facts.order_id, f"saga PARKED: {s.parked_reason}", s.updated_at)]
    age = (now - s.updated_at).total_seconds()
    if age > saga_sla_s:
        return [Divergence(Kind.STUCK_SAGA, facts.order_id, f"saga {s.status} for {age:.0f}s (SLA {saga_sla_s:.0f}s)",
                           s.updated_at)]
    return []


@dataclass(frozen=True)
class SkuBalance:
    sku: str
    reserved: int
    committed: int
    reserved_by_orders: int
    committed_by_orders: int
    updated_at: datetime


def check_sku(b: SkuBalance) -> list[Divergence]:
    if (b.reserved, b.committed) == (b.reserved_by_orders, b.committed_by_orders):
        return []
    return [Divergence(Kind.STOCK_DRIFT, b.sku,
                       f"stock says reserved {b.reserved} / committed {b.committed}; the reservations add up to "
                       f"{b.reserved_by_orders} / {b.committed_by_orders}", b.updated_at)]
