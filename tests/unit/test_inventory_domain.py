"""Inventory domain: all-or-none reservation, release, commit, the negative-stock guard, idempotency decisions."""
from __future__ import annotations

import pytest

from services.inventory.domain import (
    Line,
    ReservationStatus,
    StockLevel,
    StockRuleViolation,
    commit,
    give_back,
    next_status_on_commit,
    next_status_on_release,
    next_status_on_reserve,
    next_status_on_return,
    release,
    reserve,
    set_available,
)


def _levels(**available: int) -> dict[str, StockLevel]:
    return {sku: StockLevel(sku, qty) for sku, qty in available.items()}


def test_reserve_moves_units_from_available_to_reserved_for_every_line() -> None:
    outcome = reserve(_levels(a=5, b=3), [Line("a", 2), Line("b", 3)])
    assert outcome.ok
    assert outcome.short_skus == []
    assert outcome.levels == {"a": StockLevel("a", 3, 2, 0, 2), "b": StockLevel("b", 0, 3, 0, 2)}


def test_reserve_of_exactly_the_available_quantity_succeeds() -> None:
    outcome = reserve(_levels(a=4), [Line("a", 4)])
    assert outcome.ok
    assert outcome.levels["a"].available == 0
    assert outcome.levels["a"].reserved == 4


def test_reserve_of_one_more_than_available_fails() -> None:
    outcome = reserve(_levels(a=4), [Line("a", 5)])
    assert not outcome.ok
    assert outcome.short_skus == ["a"]
    assert outcome.levels == {}


def test_reserve_is_all_or_none_when_one_line_is_short() -> None:
    levels = _levels(a=10, b=1)
    outcome = reserve(levels, [Line("a", 2), Line("b", 2)])
    assert not outcome.ok
    assert outcome.short_skus == ["b"]
    assert outcome.levels == {}  # "a" had enough but nothing was reserved
    assert levels["a"] == StockLevel("a", 10)  # the input levels are untouched


def test_reserve_reports_unknown_skus_as_short_sorted() -> None:
    outcome = reserve(_levels(b=1), [Line("zz", 1), Line("b", 5), Line("aa", 1)])
    assert outcome.short_skus == ["aa", "b", "zz"]
    assert not outcome.ok


def test_release_moves_reserved_units_back_to_available() -> None:
    reserved = reserve(_levels(a=5), [Line("a", 3)]).levels
    released = release(reserved, [Line("a", 3)])
    assert released == {"a": StockLevel("a", 5, 0, 0, 3)}


def test_commit_moves_reserved_units_to_committed() -> None:
    reserved = reserve(_levels(a=5), [Line("a", 3)]).levels
    committed = commit(reserved, [Line("a", 3)])
    assert committed == {"a": StockLevel("a", 2, 0, 3, 3)}


def test_release_of_more_than_reserved_is_a_rule_violation() -> None:
    with pytest.raises(StockRuleViolation, match="a would go negative"):
        release({"a": StockLevel("a", 5, reserved=1)}, [Line("a", 2)])


def test_commit_of_more_than_reserved_is_a_rule_violation() -> None:
    with pytest.raises(StockRuleViolation, match="a would go negative"):
        commit({"a": StockLevel("a", 5, reserved=1)}, [Line("a", 2)])


def test_set_available_creates_a_level_then_bumps_its_version() -> None:
    created = set_available(None, "a", 7)
    assert created == StockLevel("a", 7)
    updated = set_available(created, "a", 0)
    assert (updated.available, updated.version) == (0, 2)


def test_set_available_rejects_a_negative_quantity() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        set_available(None, "a", -1)


@pytest.mark.parametrize("current, expected", [
    (None, "reserve"),
    (ReservationStatus.RESERVED, "reply_reserved"),
    (ReservationStatus.COMMITTED, "reply_reserved"),
    (ReservationStatus.RELEASED, "refuse"),  # includes the barrier a release left before its reservation
    (ReservationStatus.REJECTED, "refuse"),
])
def test_next_status_on_reserve(current: ReservationStatus | None, expected: str) -> None:
    assert next_status_on_reserve(current) == expected


@pytest.mark.parametrize("current, expected", [
    (None, "barrier"),  # the release overtook its reservation
    (ReservationStatus.RESERVED, "release"),
    (ReservationStatus.RELEASED, "noop"),
    (ReservationStatus.REJECTED, "noop"),
])
def test_next_status_on_release(current: ReservationStatus | None, expected: str) -> None:
    assert next_status_on_release(current) == expected


def test_next_status_on_release_of_committed_stock_is_a_rule_violation() -> None:
    with pytest.raises(StockRuleViolation, match="committed"):
        next_status_on_release(ReservationStatus.COMMITTED)


def test_a_barrier_release_makes_the_late_reservation_refused() -> None:
    # the handler records a barrier as RELEASED; the late ReserveStock must then be refused
    assert next_status_on_release(None) == "barrier"
    assert next_status_on_reserve(ReservationStatus.RELEASED) == "refuse"


@pytest.mark.parametrize("current, expected", [
    (ReservationStatus.RESERVED, "commit"),
    (ReservationStatus.COMMITTED, "noop"),
])
def test_next_status_on_commit(current: ReservationStatus, expected: str) -> None:
    assert next_status_on_commit(current) == expected


@pytest.mark.parametrize("current", [None, ReservationStatus.RELEASED, ReservationStatus.REJECTED])
def test_next_status_on_commit_without_a_live_reservation_is_a_rule_violation(
        current: ReservationStatus | None) -> None:
    with pytest.raises(StockRuleViolation, match="cannot commit"):
        next_status_on_commit(current)



def test_two_lines_of_one_sku_are_checked_together() -> None:
    outcome = reserve({"a": StockLevel("a", 5)}, [Line("a", 3), Line("a", 3)])
    assert not outcome.ok and outcome.short_skus == ["a"]


def test_non_positive_quantities_are_short_not_reserved() -> None:
    outcome = reserve({"a": StockLevel("a", 5)}, [Line("a", 0)])
    assert outcome.short_skus == ["a"] and outcome.levels == {}


# --- returning the stock of a refunded order ----------------------------------------------------------------------

def test_give_back_moves_committed_units_to_available() -> None:
    after = give_back({"a": StockLevel("a", available=1, reserved=0, committed=3, version=4)}, [Line("a", 2)])
    assert after["a"] == StockLevel("a", available=3, reserved=0, committed=1, version=5)
    with pytest.raises(StockRuleViolation):
        give_back({"a": StockLevel("a", available=1, committed=1)}, [Line("a", 2)])


@pytest.mark.parametrize("current, expected", [(ReservationStatus.COMMITTED, "return"),
                                               (ReservationStatus.RETURNED, "noop")])
def test_only_committed_stock_returns_and_a_repeat_is_a_noop(current: ReservationStatus, expected: str) -> None:
    assert next_status_on_return(current) == expected


@pytest.mark.parametrize("current", [None, ReservationStatus.RESERVED, ReservationStatus.RELEASED,
                                     ReservationStatus.REJECTED])
def test_returning_stock_that_never_left_is_a_violation(current: ReservationStatus | None) -> None:
    with pytest.raises(StockRuleViolation):
        next_status_on_return(current)
