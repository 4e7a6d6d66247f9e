"""Inventory: pure stock and price rules. Reserving moves units available -> reserved (all lines or none), committing
removes them from reserved (they left the warehouse), releasing moves them back. A SKU's price is versioned like its
stock: each change is a new version, announced as PriceChanged for the orders service's copy."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    REJECTED = "REJECTED"
    RETURNED = "RETURNED"  # committed units came back (the order was cancelled after confirmation and refunded)


class StockRuleViolation(Exception):
    """A transition the reservation's state forbids, e.g. releasing units that already left the warehouse."""


@dataclass(frozen=True)
class StockLevel:
    sku: str
    available: int
    reserved: int = 0
    committed: int = 0
    version: int = 1


@dataclass(frozen=True)
class Price:
    sku: str
    unit_price: Decimal
    currency: str
    version: int = 1


def set_price(current: Price | None, sku: str, unit_price: Decimal, currency: str) -> Price | None:
    """The SKU's new price, or None when it does not change (an unchanged PUT announces nothing)."""
    if unit_price <= 0 or unit_price != unit_price.quantize(Decimal("0.01")):
        raise ValueError("a price is positive, in cents")
    if current is None:
        return Price(sku, unit_price, currency)
    if (current.unit_price, current.currency) == (unit_price, currency):
        return None
    return replace(current, unit_price=unit_price, currency=currency, version=current.version + 1)


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True)
class ReserveOutcome:
    levels: dict[str, StockLevel]  # the new levels; empty when nothing was reserved
    short_skus: list[str]          # lines that could not be served (unknown sku or not enough available)

    @property
    def ok(self) -> bool:
        return not self.short_skus


def set_available(current: StockLevel | None, sku: str, available: int) -> StockLevel:
    if available < 0:
        raise ValueError("available must be >= 0")
    if current is None:
        return StockLevel(sku, available)
    return replace(current, available=available, version=current.version + 1)


def merge_lines(lines: Sequence[Line]) -> list[Line]:
    """One line per sku (quantities summed), so two lines of one sku can never each pass the check alone."""
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    return [Line(sku, qty) for sku, qty in totals.items()]


def reserve(levels: Mapping[str, StockLevel], lines: Sequence[Line]) -> ReserveOutcome:
    lines = merge_lines(lines)
    short = sorted(line.sku for line in lines
                   if line.quantity <= 0 or line.sku not in levels or levels[line.sku].available < line.quantity)
    if short:
        return ReserveOutcome({}, short)
    return ReserveOutcome({line.sku: _move(levels[line.sku], available=-line.quantity, reserved=line.quantity)
                           for line in lines}, [])


def release(levels: Mapping[str, StockLevel], lines: Sequence[Line]) -> dict[str, StockLevel]:
    lines = merge_lines(lines)
    return {line.sku: _move(levels[line.sku], available=line.quantity, reserved=-line.quantity) for line in lines}


def commit(levels: Mapping[str, StockLevel], lines: Sequence[Line]) -> dict[str, StockLevel]:
    lines = merge_lines(lines)
    return {line.sku: _move(levels[line.sku], reserved=-line.quantity, committed=line.quantity) for line in lines}


def give_back(levels: Mapping[str, StockLevel], lines: Sequence[Line]) -> dict[str, StockLevel]:
    """Committed units back to available (a refunded order's goods return to the shelf)."""
    lines = merge_lines(lines)
    return {line.sku: _move(levels[line.sku], committed=-line.quantity, available=line.quantity) for line in lines}


def _move(level: StockLevel, available: int = 0, reserved: int = 0, committed: int = 0) -> StockLevel:
    after = replace(level, available=level.available + available, reserved=level.reserved + reserved,
                    committed=level.committed + committed, version=level.version + 1)
    if min(after.available, after.reserved, after.committed) < 0:
        raise StockRuleViolation(f"stock of {level.sku} would go negative: {after}")
    return after


def next_status_on_reserve(current: ReservationStatus | None) -> str:
    """What a ReserveStock does given the reservation already recorded for the order:
    'reserve' (first time), 'reply_reserved' (already holds stock), 'refuse' (compensated or rejected before)."""
    if current is None:
        return "reserve"
    if current in (ReservationStatus.RESERVED, ReservationStatus.COMMITTED):
        return "reply_reserved"
    return "refuse"


def next_status_on_release(current: ReservationStatus | None) -> str:
    """'release', 'noop', or 'barrier' (the release overtook its reservation: remember it so the late reserve is
    refused). Releasing committed stock is a rule violation: it needs a return, not a compensation."""
    if current is None:
        return "barrier"
    if current is ReservationStatus.RESERVED:
        return "release"
    if current is ReservationStatus.COMMITTED:
        raise StockRuleViolation("committed stock cannot be released")
    return "noop"


def next_status_on_commit(current: ReservationStatus | None) -> str:
    return _forward(current, ReservationStatus.RESERVED, ReservationStatus.COMMITTED, "commit")


def next_status_on_return(current: ReservationStatus | None) -> str:
    return _forward(current, ReservationStatus.COMMITTED, ReservationStatus.RETURNED, "return")


def _forward(current: ReservationStatus | None, source: ReservationStatus, target: ReservationStatus,
             action: str) -> str:
    """`action` when the reservation is in `source`, 'noop' when it already is in `target`, else a violation."""
    if current is source:
        return action
    if current is target:
        return "noop"
    raise StockRuleViolation(f"cannot {action} a reservation that is {current}")
