"""Parallel steps, through the pure engine: place_order v2 reserves the stock and authorizes the payment together,
then confirms, then captures and commits together. A stage is done when every step of it is; a business failure of
one step compensates the others of its stage, done or still in flight, then the earlier stages; a deadline re-sends
only what is unanswered; the stored form of several awaited commands reads back the same."""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from stream_processors.saga import engine, store
from stream_processors.saga.model import Awaiting, Decision, SagaDefinition, SagaStatus, Step
from stream_processors.saga.place_order import CAPTURE_PAYMENT, PLACE_ORDER, PLACE_ORDER_V1, RESERVE_STOCK

DATA: dict[str, Any] = {"order_id": "o-1", "customer_id": "c-1", "total_amount": "25.55", "currency": "EUR",
                        "payment_method": "pm_card_visa", "items": [{"sku": "a", "quantity": 2, "unit_price": "9"}]}


def sent(decision: Decision) -> dict[str, str]:
    """command type -> command id of what the decision sends"""
    return {c.command_type: c.command_id for c in decision.commands}


def reply(decision: Decision, command_id: str, reply_type: str) -> Decision:
    answered = engine.on_reply(PLACE_ORDER, decision.state, reply_type, command_id)
    assert answered.applied, answered.note
    return answered


def started() -> Decision:
    return engine.start(PLACE_ORDER, "o-1", DATA)


def test_the_first_stage_sends_both_commands_and_moves_on_when_both_answered_in_either_order() -> None:
    first = started()
    ids = sent(first)
    assert set(ids) == {"ReserveStock", "AuthorizePayment"} and first.state.step == 0
    assert first.deadline_in is not None
    for order in (["ReserveStock", "AuthorizePayment"], ["AuthorizePayment", "ReserveStock"]):
        replies = {"ReserveStock": "StockReserved", "AuthorizePayment": "PaymentAuthorized"}
        half = reply(first, ids[order[0]], replies[order[0]])
        assert half.commands == () and half.state.status is SagaStatus.RUNNING
        assert [a.command_id for a in half.state.awaiting] == [ids[order[1]]]
        assert half.deadline_in is not None  # the other one keeps a deadline
        # the same reply again is not awaited any more
        assert not engine.on_reply(PLACE_ORDER, half.state, replies[order[0]], ids[order[0]]).applied
        confirming = reply(half, ids[order[1]], replies[order[1]])
        assert list(sent(confirming)) == ["ConfirmOrder"] and confirming.state.step == 1


def test_the_last_stage_captures_and_commits_together_then_completes() -> None:
    first = started()
    ids = sent(first)
    confirming = reply(reply(first, ids["ReserveStock"], "StockReserved"), ids["AuthorizePayment"],
                       "PaymentAuthorized")
    finishing = reply(confirming, sent(confirming)["ConfirmOrder"], "OrderConfirmed")
    last = sent(finishing)
    assert set(last) == {"CapturePayment", "CommitStock"}
    done = reply(reply(finishing, last["CommitStock"], "StockCommitted"), last["CapturePayment"], "PaymentCaptured")
    assert done.state.status is SagaStatus.COMPLETED and done.state.awaiting == () and done.deadline_in is None


@pytest.mark.parametrize(("failed", "failure", "other", "compensation", "reason"), [
    ("ReserveStock", "StockReservationFailed", "AuthorizePayment", "VoidPayment", "OUT_OF_STOCK"),
    ("AuthorizePayment", "PaymentDeclined", "ReserveStock", "ReleaseStock", "PAYMENT_DECLINED"),
])
@pytest.mark.parametrize("other_answered", [True, False], ids=["other done", "other in flight"])
def test_a_failure_compensates_the_other_step_of_its_stage_done_or_in_flight(
        failed: str, failure: str, other: str, compensation: str, reason: str, other_answered: bool) -> None:
    first = started()
    ids = sent(first)
    before = first
    if other_answered:
        other_done = {"ReserveStock": "StockReserved", "AuthorizePayment": "PaymentAuthorized"}[other]
        before = reply(first, ids[other], other_done)
    compensating = reply(before, ids[failed], failure)
    assert compensating.state.status is SagaStatus.COMPENSATING and compensating.state.failure_reason == reason
    assert list(sent(compensating)) == [compensation]  # the failed step did nothing: it is not compensated
    if not other_answered:  # the other step's late answer is not awaited any more (its compensation is)
        late = "StockReserved" if other == "ReserveStock" else "PaymentAuthorized"
        assert not engine.on_reply(PLACE_ORDER, compensating.state, late, ids[other]).applied
    compensated = {"VoidPayment": "PaymentVoided", "ReleaseStock": "StockReleased"}[compensation]
    cancelling = reply(compensating, sent(compensating)[compensation], compensated)
    assert list(sent(cancelling)) == ["CancelOrder"] and cancelling.state.status is SagaStatus.FAILING
    assert reply(cancelling, sent(cancelling)["CancelOrder"], "OrderCancelled").state.status is SagaStatus.FAILED


def test_a_deadline_resends_only_the_unanswered_command_then_times_out_the_whole_stage() -> None:
    first = started()
    ids = sent(first)
    half = reply(first, ids["ReserveStock"], "StockReserved")
    resent = engine.on_deadline(PLACE_ORDER, half.state)
    assert sent(resent) == {"AuthorizePayment": ids["AuthorizePayment"]} and resent.state.attempt == 2
    state = resent.state
    for _ in range(PLACE_ORDER.policy.forward_attempts - 2):
        state = engine.on_deadline(PLACE_ORDER, state).state
    timed_out = engine.on_deadline(PLACE_ORDER, state)
    # the authorization may have happened late: both steps of the stage are compensated, together
    assert set(sent(timed_out)) == {"ReleaseStock", "VoidPayment"}
    assert timed_out.state.failure_reason == "TIMEOUT" and "authorize_payment: AuthorizePayment" in timed_out.note
    comp = sent(timed_out)
    released = reply(timed_out, comp["ReleaseStock"], "StockReleased")
    assert released.commands == () and [a.command_id for a in released.state.awaiting] == [comp["VoidPayment"]]
    assert list(sent(reply(released, comp["VoidPayment"], "PaymentVoided"))) == ["CancelOrder"]


def test_a_customer_cancel_before_the_pivot_compensates_the_whole_stage() -> None:
    first = started()
    interrupted = engine.interrupt(PLACE_ORDER, first.state, "CUSTOMER_CANCELLED")
    assert set(sent(interrupted)) == {"ReleaseStock", "VoidPayment"}
    assert interrupted.state.status is SagaStatus.COMPENSATING


def test_a_parked_compensation_is_skipped_by_the_operator_and_the_saga_moves_on() -> None:
    first = started()
    interrupted = engine.interrupt(PLACE_ORDER, first.state, "CUSTOMER_CANCELLED")
    comp = sent(interrupted)
    waiting = reply(interrupted, comp["ReleaseStock"], "StockReleased")
    parked = engine.park(waiting.state, "void unanswered")
    skipped = engine.skip(PLACE_ORDER, parked.state)
    assert list(sent(skipped)) == ["CancelOrder"] and "authorize_payment: VoidPayment" in skipped.note
    redriven = engine.redrive(PLACE_ORDER, parked.state)
    assert sent(redriven) == {"VoidPayment": comp["VoidPayment"]}


def test_several_awaited_commands_are_stored_and_read_back_and_one_keeps_the_previous_form() -> None:
    many = (Awaiting("c1", ("StockReserved", "StockReservationFailed")), Awaiting("c2", ("PaymentAuthorized",)))
    columns = store._awaiting_columns(many)
    assert store._awaiting(columns["awaiting_command_id"], json.loads(columns["awaiting_replies"])) == many
    one = store._awaiting_columns(many[:1])
    assert json.loads(one["awaiting_replies"]) == ["StockReserved", "StockReservationFailed"]  # as release 1 wrote
    assert store._awaiting(one["awaiting_command_id"], json.loads(one["awaiting_replies"])) == many[:1]
    none = store._awaiting_columns(())
    assert store._awaiting(none["awaiting_command_id"], json.loads(none["awaiting_replies"])) == ()


def test_v2_runs_the_steps_of_v1_in_fewer_stages_and_a_mixed_stage_is_refused() -> None:
    assert [s.name for s in PLACE_ORDER.all_steps()] == [s.name for s in PLACE_ORDER_V1.all_steps()]
    assert (len(PLACE_ORDER_V1.steps), len(PLACE_ORDER.steps)) == (5, 3)
    with pytest.raises(ValueError, match="all retriable"):
        SagaDefinition("mixed", ((RESERVE_STOCK, CAPTURE_PAYMENT),), failure_action=None)
    with pytest.raises(ValueError, match="repeat"):
        replace(PLACE_ORDER, steps=(RESERVE_STOCK, (RESERVE_STOCK,)))
    assert isinstance(PLACE_ORDER.stage(1)[0], Step) and PLACE_ORDER.stage(1)[0].name == "confirm_order"
