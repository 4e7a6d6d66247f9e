"""The continuous checks' violation lifecycle: repair what is safe a bounded number of times, then hand over to an
operator; resolve what is no longer found."""
from __future__ import annotations

from reconciliation.checks import Divergence, Kind, Repair
from stream_processors.reconciler.lifecycle import MAX_REPAIRS, Known, Status, decide

REFUND = Divergence(Kind.CHARGE_ON_CANCELLED, "o", "payment CAPTURED", None, Repair.REFUND_PAYMENT, {"order_id": "o"})
MISMATCH = Divergence(Kind.AMOUNT_MISMATCH, "o", "order 10, payment 12", None)


def test_a_new_repairable_violation_is_repaired_and_rechecked() -> None:
    out = decide([REFUND], {})
    assert out.repairs == [REFUND] and out.recheck
    assert [(r.kind, r.status, r.repairs_sent) for r in out.rows] == [("CHARGE_ON_CANCELLED", Status.REPAIRING, 1)]
    assert out.new == out.rows


def test_a_violation_without_a_safe_repair_waits_for_an_operator() -> None:
    out = decide([MISMATCH], {})
    assert out.repairs == [] and not out.recheck
    assert [(r.status, r.repair) for r in out.rows] == [(Status.NEEDS_OPERATOR, None)]


def test_a_repair_that_does_not_take_is_retried_then_handed_over() -> None:
    again = decide([REFUND], {"CHARGE_ON_CANCELLED": Known("CHARGE_ON_CANCELLED", Status.REPAIRING, 1)})
    assert again.repairs == [REFUND] and again.rows[0].repairs_sent == 2 and again.new == []
    spent = decide([REFUND], {"CHARGE_ON_CANCELLED": Known("CHARGE_ON_CANCELLED", Status.REPAIRING, MAX_REPAIRS)})
    assert spent.repairs == [] and spent.rows[0].status == Status.NEEDS_OPERATOR


def test_what_is_no_longer_found_is_resolved_and_can_open_again() -> None:
    known = {"CHARGE_ON_CANCELLED": Known("CHARGE_ON_CANCELLED", Status.REPAIRING, 1),
             "AMOUNT_MISMATCH": Known("AMOUNT_MISMATCH", Status.RESOLVED, 0)}
    out = decide([MISMATCH], known)
    assert out.resolved == ["CHARGE_ON_CANCELLED"]
    assert [r.kind for r in out.new] == ["AMOUNT_MISMATCH"]  # resolved before, found again: a new violation
