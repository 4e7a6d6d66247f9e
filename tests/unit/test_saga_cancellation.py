"""A customer's cancel in the pure engine: before the pivot it interrupts the place-order saga (compensate the
in-flight step and the completed ones, then CancelOrder); after the pivot it queues the refund saga, which starts
on the same instance as soon as the place-order saga completes."""
from __future__ import annotations

from decimal import Decimal

import pytest

from stream_processors.saga import engine
from stream_processors.saga.model import Decision, SagaStatus
from stream_processors.saga.place_order import PLACE_ORDER_V1 as PLACE_ORDER
from stream_processors.saga.place_order import saga_data
from stream_processors.saga.refund_order import REFUND_ORDER

DATA = saga_data({"order_id": "o-1", "customer_id": "c-1",
                  "items": [{"sku": "sku-a", "quantity": 2, "unit_price": Decimal("10.00")}],
                  "total_amount": Decimal("20.00"), "currency": "EUR", "payment_method": "pm_card_visa"})
REASON = PLACE_ORDER.interrupts["OrderCancelled"]


def run(replies: list[str]) -> Decision:
    decision = engine.start(PLACE_ORDER, "o-1", DATA)
    for reply in replies:
        assert decision.state.awaiting != ()
        decision = engine.on_reply(PLACE_ORDER, decision.state, reply, decision.state.awaiting[0].command_id)
        assert decision.applied, decision.note
    return decision


def commands(decision: Decision) -> list[str]:
    return [c.command_type for c in decision.commands]


def test_cancel_while_reserving_compensates_the_in_flight_reservation_then_cancels() -> None:
    decision = engine.interrupt(PLACE_ORDER, run([]).state, REASON)
    assert decision.state.status is SagaStatus.COMPENSATING
    assert decision.state.failure_reason == "CUSTOMER_CANCELLED"
    assert commands(decision) == ["ReleaseStock"]  # may overtake the ReserveStock: the inventory barrier holds
    decision = engine.on_reply(PLACE_ORDER, decision.state, "StockReleased", decision.state.awaiting[0].command_id)
    assert commands(decision) == ["CancelOrder"]
    assert decision.commands[0].record == {"order_id": "o-1", "reason": "CUSTOMER_CANCELLED"}


def test_cancel_while_authorizing_voids_the_payment_and_releases_the_stock() -> None:
    decision = engine.interrupt(PLACE_ORDER, run(["StockReserved"]).state, REASON)
    assert commands(decision) == ["VoidPayment"]
    decision = engine.on_reply(PLACE_ORDER, decision.state, "PaymentVoided", decision.state.awaiting[0].command_id)
    assert commands(decision) == ["ReleaseStock"]


def test_the_late_reply_of_the_interrupted_step_is_ignored() -> None:
    reserving = run([]).state
    interrupted = engine.interrupt(PLACE_ORDER, reserving, REASON).state
    late = engine.on_reply(PLACE_ORDER, interrupted, "StockReserved", reserving.awaiting[0].command_id)
    assert not late.applied and late.state == interrupted


@pytest.mark.parametrize("replies", [
    ["StockReserved", "PaymentAuthorized"],                                        # ConfirmOrder in flight
    ["StockReserved", "PaymentAuthorized", "OrderConfirmed"],                      # capturing
    ["StockReserved", "PaymentAuthorized", "OrderConfirmed", "PaymentCaptured", "StockCommitted"],  # completed
    ["StockReservationFailed"],                                                    # already failing
])
def test_from_the_pivot_on_an_interrupt_changes_nothing(replies: list[str]) -> None:
    state = run(replies).state
    decision = engine.interrupt(PLACE_ORDER, state, REASON)
    assert not decision.applied and decision.commands == () and decision.state == state


def test_a_refund_queued_during_capture_starts_when_the_saga_completes() -> None:
    capturing = run(["StockReserved", "PaymentAuthorized", "OrderConfirmed"]).state
    queued = engine.queue_followup(capturing, "refund_order")
    assert queued.applied and queued.commands == ()
    assert queued.state.data["followup"] == "refund_order" and queued.state.status is SagaStatus.RUNNING
    again = engine.queue_followup(queued.state, "refund_order")
    assert not again.applied
    decision = engine.on_reply(PLACE_ORDER, queued.state, "PaymentCaptured", queued.state.awaiting[0].command_id)
    decision = engine.on_reply(PLACE_ORDER, decision.state, "StockCommitted", decision.state.awaiting[0].command_id)
    assert decision.state.status is SagaStatus.COMPLETED
    refund = engine.chain(REFUND_ORDER, decision.state, decision.note)
    assert refund.state.definition == "refund_order" and refund.state.status is SagaStatus.RUNNING
    assert "followup" not in refund.state.data and refund.state.saga_id == "o-1"
    assert commands(refund) == ["RefundPayment"]


def test_the_refund_saga_runs_refund_return_close_and_completes() -> None:
    done = run(["StockReserved", "PaymentAuthorized", "OrderConfirmed", "PaymentCaptured", "StockCommitted"])
    decision = engine.chain(REFUND_ORDER, done.state, "customer cancelled")
    sent = commands(decision)
    for reply in ("PaymentRefunded", "StockReturned"):
        decision = engine.on_reply(REFUND_ORDER, decision.state, reply, decision.state.awaiting[0].command_id)
        sent += commands(decision)
    assert sent == ["RefundPayment", "ReturnStock", "CancelOrder"]
    assert decision.commands[0].record == {"order_id": "o-1", "reason": "CUSTOMER_CANCELLED"}
    decision = engine.on_reply(REFUND_ORDER, decision.state, "OrderCancelled", decision.state.awaiting[0].command_id)
    assert decision.state.status is SagaStatus.COMPLETED


def test_refund_commands_never_reuse_a_place_order_command_id() -> None:
    done = run(["StockReserved", "PaymentAuthorized", "OrderConfirmed", "PaymentCaptured", "StockCommitted"])
    refund = engine.chain(REFUND_ORDER, done.state, "")
    failing = engine.interrupt(PLACE_ORDER, run([]).state, REASON)
    failing = engine.on_reply(PLACE_ORDER, failing.state, "StockReleased", failing.state.awaiting[0].command_id)
    assert refund.commands[0].command_id != failing.commands[0].command_id


def test_a_refund_step_that_never_answers_parks_instead_of_failing() -> None:
    done = run(["StockReserved", "PaymentAuthorized", "OrderConfirmed", "PaymentCaptured", "StockCommitted"])
    state = engine.chain(REFUND_ORDER, done.state, "").state
    for _ in range(REFUND_ORDER.policy.compensation_attempts - 1):
        state = engine.on_deadline(REFUND_ORDER, state).state
    parked = engine.on_deadline(REFUND_ORDER, state)
    assert parked.state.status is SagaStatus.PARKED
    assert "refund_payment: RefundPayment" in (parked.state.parked_reason or "")


def test_only_a_completed_saga_chains() -> None:
    with pytest.raises(ValueError):
        engine.chain(REFUND_ORDER, run(["StockReserved"]).state, "")
