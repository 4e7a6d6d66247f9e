"""Reconciliation rules on hand-made facts: each divergence kind, its safe repair (or none), and the merge join."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from reconciliation.checks import (
    Kind,
    OrderFacts,
    OrderRow,
    PaymentRow,
    Repair,
    SagaRow,
    SkuBalance,
    check_order,
    check_sku,
    recheck_at,
)
from reconciliation.report import Report, age_bucket, render_html
from reconciliation.scan import merge

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
OLD = NOW - timedelta(minutes=10)


def order(status: str, reason: str | None = None, amount: str = "10.00") -> OrderRow:
    return OrderRow("o", "c", status, reason, Decimal(amount), "EUR", OLD)


def payment(status: str, amount: str = "10.00", currency: str = "EUR") -> PaymentRow:
    return PaymentRow("o", status, Decimal(amount), currency, OLD)


def notes(*types: str) -> Counter:
    return Counter({(t, "log"): 1 for t in types})


def kinds(facts: OrderFacts) -> list[tuple[Kind, Repair | None]]:
    return [(d.kind, d.repair) for d in check_order(facts, ["log"], NOW, saga_sla_s=300)]


def test_consistent_orders_have_no_divergence() -> None:
    confirmed = OrderFacts("o", order("CONFIRMED"), payment("CAPTURED"), "COMMITTED", OLD, notes("OrderConfirmed"),
                           SagaRow("o", "COMPLETED", OLD))
    declined = OrderFacts("o", order("CANCELLED", "PAYMENT_DECLINED"), payment("DECLINED"), "RELEASED", OLD,
                          notes("OrderCancelled"), SagaRow("o", "FAILED", OLD))
    refunded = OrderFacts("o", order("CANCELLED", "CUSTOMER_CANCELLED"), payment("REFUNDED"), "RETURNED", OLD,
                          notes("OrderConfirmed", "OrderCancelled"), SagaRow("o", "COMPLETED", OLD))
    out_of_stock = OrderFacts("o", order("CANCELLED", "OUT_OF_STOCK"), None, "REJECTED", OLD,
                              notes("OrderCancelled"), SagaRow("o", "FAILED", OLD))
    for facts in (confirmed, declined, refunded, out_of_stock):
        assert kinds(facts) == []


def test_orphan_payments_are_voided_or_refunded() -> None:
    assert kinds(OrderFacts("o", None, payment("AUTHORIZED"))) == [(Kind.ORPHAN_PAYMENT, Repair.VOID_PAYMENT)]
    assert kinds(OrderFacts("o", None, payment("CAPTURED"))) == [(Kind.ORPHAN_PAYMENT, Repair.REFUND_PAYMENT)]
    assert kinds(OrderFacts("o", None, payment("VOIDED"))) == [(Kind.ORPHAN_PAYMENT, None)]


def test_a_confirmed_order_needs_a_captured_payment_and_committed_stock() -> None:
    facts = OrderFacts("o", order("CONFIRMED"), None, "RESERVED", OLD, notes("OrderConfirmed"))
    assert kinds(facts) == [(Kind.MISSING_PAYMENT, None), (Kind.STOCK_DRIFT, None)]


def test_amount_mismatch_is_reported_for_an_operator() -> None:
    facts = OrderFacts("o", order("CONFIRMED"), payment("CAPTURED", "11.00"), "COMMITTED", OLD, notes("OrderConfirmed"))
    assert kinds(facts) == [(Kind.AMOUNT_MISMATCH, None)]
    facts = OrderFacts("o", order("CONFIRMED"), payment("CAPTURED", currency="USD"), "COMMITTED", OLD,
                       notes("OrderConfirmed"))
    assert kinds(facts) == [(Kind.AMOUNT_MISMATCH, None)]


def test_a_cancelled_order_keeps_no_charge_and_no_stock() -> None:
    facts = OrderFacts("o", order("CANCELLED", "TIMEOUT"), payment("CAPTURED"), "RESERVED", OLD,
                       notes("OrderCancelled"))
    assert kinds(facts) == [(Kind.CHARGE_ON_CANCELLED, Repair.REFUND_PAYMENT), (Kind.STOCK_DRIFT, Repair.RELEASE_STOCK)]
    facts = OrderFacts("o", order("CANCELLED", "TIMEOUT"), payment("AUTHORIZED"), "COMMITTED", OLD,
                       notes("OrderCancelled"))
    assert kinds(facts) == [(Kind.CHARGE_ON_CANCELLED, Repair.VOID_PAYMENT), (Kind.STOCK_DRIFT, None)]


def test_notifications_missing_are_resent_and_doubles_reported() -> None:
    missing = check_order(OrderFacts("o", order("CANCELLED", "OUT_OF_STOCK"), reservation="REJECTED"), ["log"], NOW,
                          300)
    assert [(d.kind, d.repair) for d in missing] == [(Kind.NOTIFICATION_MISSING, Repair.SEND_NOTIFICATION)]
    assert missing[0].repair_record == {"order_id": "o", "customer_id": "c", "type": "OrderCancelled",
                                        "channel": "log", "detail": "OUT_OF_STOCK"}
    doubled = OrderFacts("o", order("CONFIRMED"), payment("CAPTURED"), "COMMITTED", OLD,
                         Counter({("OrderConfirmed", "log"): 2, ("OrderCancelled", "log"): 1}))
    assert kinds(doubled) == [(Kind.NOTIFICATION_DOUBLED, None), (Kind.NOTIFICATION_DOUBLED, None)]


def test_parked_or_overdue_sagas_are_stuck() -> None:
    base = dict(order=order("PENDING"), reservation="RESERVED", reservation_updated_at=OLD)
    assert kinds(OrderFacts("o", saga=SagaRow("o", "PARKED", OLD, "VoidPayment unanswered"), **base)) == [
        (Kind.STUCK_SAGA, None)]
    assert kinds(OrderFacts("o", saga=SagaRow("o", "RUNNING", OLD), **base)) == [(Kind.STUCK_SAGA, None)]
    assert kinds(OrderFacts("o", saga=SagaRow("o", "RUNNING", NOW - timedelta(seconds=5)), **base)) == []


def test_an_order_whose_saga_is_still_running_is_not_judged_yet() -> None:
    capturing = OrderFacts("o", order("CONFIRMED"), payment("AUTHORIZED"), "RESERVED", OLD,
                           saga=SagaRow("o", "RUNNING", NOW - timedelta(seconds=2)))
    assert kinds(capturing) == []
    assert recheck_at(capturing, 300) == NOW - timedelta(seconds=2) + timedelta(seconds=300)
    settled = OrderFacts("o", order("CONFIRMED"), payment("CAPTURED"), "COMMITTED", OLD, notes("OrderConfirmed"),
                         SagaRow("o", "COMPLETED", OLD))
    assert recheck_at(settled, 300) is None


def test_sku_totals_must_match_the_reservations() -> None:
    assert check_sku(SkuBalance("s", 2, 5, 2, 5, OLD)) == []
    (d,) = check_sku(SkuBalance("s", 7, 5, 2, 5, OLD))
    assert d.kind is Kind.STOCK_DRIFT and d.subject == "s" and d.repair is None


def test_merge_join_groups_rows_by_key_across_streams() -> None:
    def rows(*keys: str):  # type: ignore[no-untyped-def]
        return iter([SimpleNamespace(k=k) for k in keys])

    merged = [(k, {n: len(v) for n, v in g.items()})
              for k, g in merge({"a": rows("1", "3", "5"), "b": rows("2", "3", "3"), "c": rows()})]
    assert merged == [("1", {"a": 1, "b": 0, "c": 0}), ("2", {"a": 0, "b": 1, "c": 0}),
                      ("3", {"a": 1, "b": 2, "c": 0}), ("5", {"a": 1, "b": 0, "c": 0})]


@pytest.mark.parametrize("seconds, label", [(5, "< 1 min"), (120, "1-5 min"), (7200, "1-6 h"), (9e6, "> 1 day")])
def test_age_buckets(seconds: float, label: str) -> None:
    assert age_bucket(seconds) == label


def test_the_html_report_has_both_charts_and_the_samples() -> None:
    report = Report(NOW, "every order")
    for d in check_order(OrderFacts("o", None, payment("CAPTURED")), ["log"], NOW, 300):
        report.add(d, NOW, repaired=True)
    report.finished_at = NOW
    page = render_html(report.to_json())
    assert page.count("<svg") == 2 and "ORPHAN_PAYMENT" in page and "RefundPayment (sent)" in page
    assert report.to_json()["by_kind"]["ORPHAN_PAYMENT"] == 1 and report.to_json()["repairs_sent"] == {
        "RefundPayment": 1}


def test_a_refund_by_reconciliation_never_triggers_an_order_confirmed_notification() -> None:
    """A declined order whose payment was captured behind the API and then refunded by a repair was never
    confirmed: nothing may tell the customer otherwise."""
    repaired = OrderFacts("o", order("CANCELLED", "PAYMENT_DECLINED"), payment("REFUNDED"), "RELEASED", OLD,
                          notes("OrderCancelled"), SagaRow("o", "FAILED", OLD))
    assert kinds(repaired) == []
    refunded_by_customer = OrderFacts("o", order("CANCELLED", "CUSTOMER_CANCELLED"), payment("REFUNDED"), "RETURNED",
                                      OLD, notes("OrderCancelled"), SagaRow("o", "COMPLETED", OLD))
    assert kinds(refunded_by_customer) == []  # its OrderConfirmed notification may exist, but is not re-sent
