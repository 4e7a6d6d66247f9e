"""Orders domain: placement rules, confirm/cancel transitions, money arithmetic."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from services.orders import domain
from services.orders.domain import (
    CancelReason,
    InvalidTransition,
    Order,
    OrderLine,
    OrderRuleViolation,
    OrderStatus,
    cancel,
    confirm,
    place,
)


def _line(sku: str = "sku-1", quantity: int = 1, unit_price: str = "10.00") -> OrderLine:
    return OrderLine(sku, quantity, Decimal(unit_price))


def _place(lines: list[OrderLine] | None = None, currency: str = "USD", payment_method: str = "pm_card_visa") -> Order:
    return place("order-1", "customer-1", [_line()] if lines is None else lines, currency, payment_method)


def test_place_returns_a_pending_order_at_version_1() -> None:
    order = _place([_line("a", 2, "3.50"), _line("b", 1, "0.99")])
    assert order.status is OrderStatus.PENDING
    assert order.version == 1
    assert order.cancel_reason is None
    assert order.lines == (_line("a", 2, "3.50"), _line("b", 1, "0.99"))
    assert (order.order_id, order.customer_id, order.currency, order.payment_method) == (
        "order-1", "customer-1", "USD", "pm_card_visa")
    assert order.channel is None  # a client that does not say where it sells


def test_an_order_keeps_its_channel_through_its_transitions() -> None:
    order = place("order-1", "customer-1", [_line()], "USD", "pm_card_visa", channel=domain.Channel.MOBILE)
    assert order.channel is domain.Channel.MOBILE
    assert confirm(order).channel is domain.Channel.MOBILE


@pytest.mark.parametrize("lines, message", [
    ([], "at least one item"),
    ([_line("a"), _line("a")], "only once"),
    ([_line("a", 0)], "quantity of a must be positive"),
    ([_line("a", -1)], "quantity of a must be positive"),
    ([_line("a", 1, "0")], "unit_price of a must be positive"),
    ([_line("a", 1, "-1.00")], "unit_price of a must be positive"),
    ([_line("a", 1, "1.001")], "more than 2 decimal places"),
    ([_line("a", 1, "9999999999999999.99"), _line("b", 1, "0.01")], "too large"),
])
def test_place_rejects_lines_that_break_a_rule(lines: list[OrderLine], message: str) -> None:
    with pytest.raises(OrderRuleViolation, match=message):
        _place(lines)


def test_place_accepts_the_largest_total_below_the_limit() -> None:
    assert _place([_line("a", 1, "9999999999999999.99")]).total_amount == Decimal("9999999999999999.99")


def test_place_accepts_a_trailing_zero_third_decimal() -> None:
    # 1.000 is numerically 1.00: it has no significant third decimal place
    assert _place([_line("a", 1, "1.000")]).total_amount == Decimal("1.00")


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "", "U1D"])
def test_place_rejects_a_currency_that_is_not_iso_4217_shaped(currency: str) -> None:
    with pytest.raises(OrderRuleViolation, match="currency"):
        _place(currency=currency)


@pytest.mark.parametrize("method", ["card_visa", "pm_", "pm_card-visa", "PM_card", "pm_" + "x" * 65])
def test_place_rejects_a_malformed_payment_method(method: str) -> None:
    with pytest.raises(OrderRuleViolation, match="payment_method"):
        _place(payment_method=method)


def test_place_accepts_a_64_character_payment_method_suffix() -> None:
    assert _place(payment_method="pm_" + "x" * 64).payment_method == "pm_" + "x" * 64


def test_total_amount_sums_lines_as_exact_decimals() -> None:
    # 0.1 + 0.2 in binary floats would not be 0.30
    order = _place([_line("a", 1, "0.10"), _line("b", 1, "0.20"), _line("c", 3, "19.99")])
    assert order.total_amount == Decimal("60.27")
    assert isinstance(order.total_amount, Decimal)
    assert order.total_amount.as_tuple().exponent == -2


def test_line_amount_is_quantity_times_unit_price_quantized() -> None:
    line = _line("a", 7, "1.10")
    assert line.amount == Decimal("7.70")
    assert str(line.amount) == "7.70"


def test_confirm_moves_pending_to_confirmed_and_bumps_version() -> None:
    order = _place()
    confirmed = confirm(order)
    assert confirmed is not None
    assert confirmed.status is OrderStatus.CONFIRMED
    assert confirmed.version == order.version + 1
    assert order.status is OrderStatus.PENDING  # the input is not mutated


def test_confirm_of_a_confirmed_order_is_a_duplicate() -> None:
    confirmed = confirm(_place())
    assert confirmed is not None
    assert confirm(confirmed) is None


def test_confirm_of_a_cancelled_order_is_an_invalid_transition() -> None:
    cancelled = cancel(_place(), CancelReason.OUT_OF_STOCK)
    assert cancelled is not None
    with pytest.raises(InvalidTransition, match="order-1 is cancelled"):
        confirm(cancelled)


@pytest.mark.parametrize("reason", list(CancelReason))
def test_cancel_moves_pending_to_cancelled_with_its_reason(reason: CancelReason) -> None:
    order = _place()
    cancelled = cancel(order, reason)
    assert cancelled is not None
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.cancel_reason is reason
    assert cancelled.version == order.version + 1


def test_cancel_of_a_cancelled_order_is_a_duplicate_and_keeps_the_first_reason() -> None:
    cancelled = cancel(_place(), CancelReason.PAYMENT_DECLINED)
    assert cancelled is not None
    assert cancel(cancelled, CancelReason.CUSTOMER_CANCELLED) is None
    assert cancelled.cancel_reason is CancelReason.PAYMENT_DECLINED


def test_cancel_of_a_confirmed_order_is_an_invalid_transition() -> None:
    confirmed = replace(_place(), status=OrderStatus.CONFIRMED)
    with pytest.raises(InvalidTransition, match="order-1 is confirmed"):
        cancel(confirmed, CancelReason.CUSTOMER_CANCELLED)


# --- customer cancellation --------------------------------------------------------------------------------------

def _order(status: OrderStatus, version: int = 1) -> Order:
    return replace(_place(), status=status, version=version)


def test_cancelling_a_pending_order_cancels_it_with_the_customer_reason() -> None:
    after = domain.request_cancellation(_order(OrderStatus.PENDING, 1), if_match=1)
    assert (after.status, after.cancel_reason, after.version) == (OrderStatus.CANCELLED,
                                                                    CancelReason.CUSTOMER_CANCELLED, 2)


def test_cancelling_a_confirmed_order_starts_its_refund() -> None:
    after = domain.request_cancellation(_order(OrderStatus.CONFIRMED, 2))
    assert (after.status, after.cancel_reason, after.version) == (OrderStatus.CANCELLING, None, 3)


def test_a_stale_if_match_is_refused_with_both_versions() -> None:
    with pytest.raises(domain.StaleVersion) as exc:
        domain.request_cancellation(_order(OrderStatus.PENDING, 2), if_match=1)
    assert (exc.value.expected, exc.value.actual) == (1, 2)


@pytest.mark.parametrize("status", [OrderStatus.CANCELLED, OrderStatus.CANCELLING])
def test_a_second_cancel_is_a_conflict(status: OrderStatus) -> None:
    with pytest.raises(domain.AlreadyCancelled):
        domain.request_cancellation(_order(status))


def test_a_cancelling_order_closes_as_customer_cancelled_and_was_confirmed() -> None:
    cancelling = _order(OrderStatus.CANCELLING, 3)
    closed = domain.cancel(cancelling, CancelReason.TIMEOUT)
    assert closed is not None and closed.cancel_reason is CancelReason.CUSTOMER_CANCELLED
    assert domain.confirm(cancelling) is None  # a late duplicate ConfirmOrder: it was confirmed


def test_confirming_an_order_the_customer_cancelled_first_is_refused() -> None:
    cancelled = domain.request_cancellation(_order(OrderStatus.PENDING))
    with pytest.raises(domain.InvalidTransition):
        domain.confirm(cancelled)
