"""Deadlines, retries, parking and the operator's redrive / skip, driven through the pure saga engine."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from stream_processors.saga import engine
from stream_processors.saga.model import Decision, RetryPolicy, SagaState, SagaStatus, command_id
from stream_processors.saga.place_order import PLACE_ORDER_V1 as PLACE_ORDER
from stream_processors.saga.place_order import saga_data

ORDER_CREATED: dict[str, Any] = {
    "order_id": "o-1", "customer_id": "c-1",
    "items": [{"sku": "sku-a", "quantity": 2, "unit_price": Decimal("10.00")}],
    "total_amount": Decimal("20.00"), "currency": "EUR", "payment_method": "pm_card_visa",
    "created_at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
}
DATA = saga_data(ORDER_CREATED)
ORDER_ONLY = {"order_id": "o-1"}
STEP_NAMES = [s.name for s in PLACE_ORDER.steps]
FORWARD_REPLIES = [s.action.reply for s in PLACE_ORDER.steps]
RETRIABLE = [s.name for s in PLACE_ORDER.steps if s.retriable]
COMPENSATABLE = [s.name for s in PLACE_ORDER.steps if not s.retriable]

# Budgets differ on purpose, so a step that used the wrong budget is caught.
POLICY = RetryPolicy(step_timeout=1.0, max_backoff=5.0, forward_attempts=2, compensation_attempts=4)
DEFN = replace(PLACE_ORDER, policy=POLICY)


# --- helpers ----------------------------------------------------------------------------------------------------

def reply(decision: Decision, reply_type: str) -> Decision:
    """Answer the command the saga awaits; the reply must be applied."""
    state = decision.state
    assert state.awaiting != (), f"nothing awaited before {reply_type}"
    answered = engine.on_reply(DEFN, state, reply_type, state.awaiting[0].command_id)
    assert answered.applied, answered.note
    return answered


def drive(replies: list[str]) -> list[Decision]:
    decisions = [engine.start(DEFN, "o-1", DATA)]
    for reply_type in replies:
        decisions.append(reply(decisions[-1], reply_type))
    return decisions


def at_step(name: str) -> Decision:
    """The decision that sent the forward command of the named step."""
    return drive(FORWARD_REPLIES[:STEP_NAMES.index(name)])[-1]


def miss(decision: Decision, times: int) -> list[Decision]:
    """`times` consecutive missed deadlines; each one must be applied."""
    out = [decision]
    for _ in range(times):
        nxt = engine.on_deadline(DEFN, out[-1].state)
        assert nxt.applied, nxt.note
        out.append(nxt)
    return out[1:]


def park(decision: Decision) -> Decision:
    """Miss deadlines until the saga parks (a retriable step, a compensation or the failure action)."""
    parked = miss(decision, POLICY.compensation_attempts)[-1]
    assert parked.state.status is SagaStatus.PARKED, parked.note
    return parked


def only_command(decision: Decision) -> tuple[str, str, str, dict[str, Any]]:
    assert len(decision.commands) == 1, decision.commands
    cmd = decision.commands[0]
    return cmd.command_id, cmd.participant, cmd.command_type, cmd.record


def awaited_id(decision: Decision) -> str:
    assert decision.state.awaiting != ()
    return decision.state.awaiting[0].command_id


def compensating_at_release() -> Decision:
    """Payment declined: the saga compensates reserve_stock with ReleaseStock."""
    return drive(["StockReserved", "PaymentDeclined"])[-1]


def compensating_at_void() -> Decision:
    """The customer's cancel won the race at confirm_order: the saga voids the payment first."""
    return drive(["StockReserved", "PaymentAuthorized", "OrderCancelled"])[-1]


def failing_at_cancel() -> Decision:
    """Out of stock: nothing to compensate, the saga cancels the order."""
    return drive(["StockReservationFailed"])[-1]


IN_FLIGHT: dict[str, Callable[[], Decision]] = {
    "running_capture_payment": lambda: at_step("capture_payment"),
    "compensating_release_stock": compensating_at_release,
    "failing_cancel_order": failing_at_cancel,
}


# --- the retry policy ---------------------------------------------------------------------------------------------

def test_deadline_doubles_per_attempt_and_is_capped_at_max_backoff() -> None:
    assert [POLICY.deadline_after(a) for a in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert [RetryPolicy().deadline_after(a) for a in range(1, 6)] == [10.0, 20.0, 40.0, 60.0, 60.0]


def test_only_the_steps_after_the_pivot_are_retriable() -> None:
    assert RETRIABLE == ["confirm_order", "capture_payment", "commit_stock"]
    assert COMPENSATABLE == ["reserve_stock", "authorize_payment"]


# --- every decision that sends a command sets its deadline ------------------------------------------------------

NEW_COMMAND_PATHS = [
    FORWARD_REPLIES[:-1],
    ["StockReservationFailed"],
    ["StockReserved", "PaymentDeclined", "StockReleased"],
    ["StockReserved", "PaymentAuthorized", "OrderCancelled", "PaymentVoided", "StockReleased"],
]


@pytest.mark.parametrize("replies", NEW_COMMAND_PATHS, ids=["happy", "out_of_stock", "declined", "cancelled"])
def test_every_new_command_gets_the_first_deadline(replies: list[str]) -> None:
    decisions = drive(replies)
    for d in decisions:
        assert d.commands, d.note
        assert d.state.attempt == 1, d.note
        assert d.deadline_in == POLICY.deadline_after(1) == 1.0, d.note


def test_resends_get_exponentially_growing_capped_deadlines() -> None:
    policy = RetryPolicy(step_timeout=1.0, max_backoff=5.0, forward_attempts=1, compensation_attempts=6)
    defn = replace(PLACE_ORDER, policy=policy)
    decision = at_step("capture_payment")
    deadlines: list[float | None] = []
    for expected_attempt in range(2, 7):
        decision = engine.on_deadline(defn, decision.state)
        assert decision.commands and decision.state.attempt == expected_attempt
        deadlines.append(decision.deadline_in)
    assert deadlines == [policy.deadline_after(a) for a in range(2, 7)] == [2.0, 4.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize("final", [
    lambda: drive(FORWARD_REPLIES)[-1],
    lambda: drive(["StockReservationFailed", "OrderCancelled"])[-1],
    lambda: park(at_step("capture_payment")),
], ids=["completed", "failed", "parked"])
def test_decisions_that_send_nothing_set_no_deadline(final: Callable[[], Decision]) -> None:
    decision = final()
    assert decision.commands == ()
    assert decision.deadline_in is None


# --- a compensatable step that misses its deadline --------------------------------------------------------------

@pytest.mark.parametrize("name", COMPENSATABLE)
def test_compensatable_step_resends_the_same_command_below_its_budget(name: str) -> None:
    policy = RetryPolicy(step_timeout=1.0, max_backoff=5.0, forward_attempts=3, compensation_attempts=1)
    defn = replace(PLACE_ORDER, policy=policy)
    first = at_step(name)
    decision = first
    for expected_attempt in (2, 3):
        before = decision.state
        decision = engine.on_deadline(defn, before)
        assert decision.applied
        assert only_command(decision) == only_command(first)
        assert decision.state.status is SagaStatus.RUNNING
        assert decision.state.step == STEP_NAMES.index(name)
        assert decision.state.attempt == expected_attempt
        assert decision.state.awaiting == first.state.awaiting
        assert decision.state.version == before.version + 1
        assert decision.state.failure_reason is None


@pytest.mark.parametrize("name", COMPENSATABLE)
def test_reply_to_a_resent_command_is_applied(name: str) -> None:
    index = STEP_NAMES.index(name)
    resent = miss(at_step(name), POLICY.forward_attempts - 1)[-1]
    assert resent.state.attempt == POLICY.forward_attempts
    advanced = reply(resent, FORWARD_REPLIES[index])
    assert advanced.state.step == index + 1
    assert advanced.state.attempt == 1
    assert only_command(advanced)[2] == PLACE_ORDER.steps[index + 1].action.command


def test_reserve_stock_timing_out_releases_stock_then_cancels_with_timeout() -> None:
    resends = miss(at_step("reserve_stock"), POLICY.forward_attempts - 1)
    assert all(d.state.status is SagaStatus.RUNNING for d in resends)
    timed_out = miss(resends[-1], 1)[0]
    assert (timed_out.state.status, timed_out.state.step) == (SagaStatus.COMPENSATING, 0)
    assert timed_out.state.failure_reason == "TIMEOUT"
    assert timed_out.state.data["failure_reason"] == "TIMEOUT"
    release_id = command_id("o-1", "compensate", "reserve_stock", "ReleaseStock")
    assert only_command(timed_out) == (release_id, "inventory", "ReleaseStock", ORDER_ONLY)
    assert (timed_out.state.attempt, timed_out.deadline_in) == (1, POLICY.deadline_after(1))
    failing = reply(timed_out, "StockReleased")
    assert failing.state.status is SagaStatus.FAILING
    assert only_command(failing)[1:] == ("orders", "CancelOrder", {"order_id": "o-1", "reason": "TIMEOUT"})
    failed = reply(failing, "OrderCancelled")
    assert failed.state.status is SagaStatus.FAILED
    assert failed.state.failure_reason == "TIMEOUT"


def test_authorize_payment_timing_out_voids_it_then_releases_stock_then_cancels_with_timeout() -> None:
    timed_out = miss(at_step("authorize_payment"), POLICY.forward_attempts)[-1]
    assert (timed_out.state.status, timed_out.state.step) == (SagaStatus.COMPENSATING, 1)
    assert timed_out.state.failure_reason == "TIMEOUT"
    void_id = command_id("o-1", "compensate", "authorize_payment", "VoidPayment")
    assert only_command(timed_out) == (void_id, "payments", "VoidPayment", ORDER_ONLY)
    released = reply(timed_out, "PaymentVoided")
    assert (released.state.status, released.state.step) == (SagaStatus.COMPENSATING, 0)
    assert only_command(released)[1:] == ("inventory", "ReleaseStock", ORDER_ONLY)
    failing = reply(released, "StockReleased")
    assert only_command(failing)[1:] == ("orders", "CancelOrder", {"order_id": "o-1", "reason": "TIMEOUT"})
    failed = reply(failing, "OrderCancelled")
    assert (failed.state.status, failed.state.failure_reason) == (SagaStatus.FAILED, "TIMEOUT")


@pytest.mark.parametrize("name, late_replies", [
    ("reserve_stock", ["StockReserved", "StockReservationFailed"]),
    ("authorize_payment", ["PaymentAuthorized", "PaymentDeclined"]),
])
def test_late_reply_to_a_step_that_timed_out_is_ignored(name: str, late_replies: list[str]) -> None:
    forward_id = awaited_id(at_step(name))
    timed_out = miss(at_step(name), POLICY.forward_attempts)[-1]
    assert timed_out.state.status is SagaStatus.COMPENSATING
    for late in late_replies:
        ignored = engine.on_reply(DEFN, timed_out.state, late, forward_id)
        assert not ignored.applied
        assert ignored.commands == ()
        assert ignored.state == timed_out.state


# --- a retriable step that misses its deadline ------------------------------------------------------------------

@pytest.mark.parametrize("name", RETRIABLE)
def test_retriable_step_is_resent_then_parked_and_never_compensated(name: str) -> None:
    first = at_step(name)
    decisions = miss(first, POLICY.compensation_attempts)
    resends, parked = decisions[:-1], decisions[-1]
    assert len(resends) == POLICY.compensation_attempts - 1 > POLICY.forward_attempts
    for expected_attempt, d in enumerate(resends, start=2):
        assert only_command(d) == only_command(first)
        assert (d.state.status, d.state.attempt) == (SagaStatus.RUNNING, expected_attempt)
    assert parked.commands == ()
    assert parked.state.status is SagaStatus.PARKED
    assert parked.state.parked_from is SagaStatus.RUNNING
    assert parked.state.parked_reason is not None and name in parked.state.parked_reason
    assert parked.state.failure_reason is None
    assert parked.state.step == STEP_NAMES.index(name)
    assert parked.state.awaiting == first.state.awaiting


# --- compensations and the failure action that miss their deadline ----------------------------------------------

@pytest.mark.parametrize("make, status, command, label", [
    (compensating_at_release, SagaStatus.COMPENSATING, "ReleaseStock", "reserve_stock"),
    (compensating_at_void, SagaStatus.COMPENSATING, "VoidPayment", "authorize_payment"),
    (failing_at_cancel, SagaStatus.FAILING, "CancelOrder", "CancelOrder"),
], ids=["release_stock", "void_payment", "cancel_order"])
def test_compensation_and_failure_action_resend_then_park(make: Callable[[], Decision], status: SagaStatus,
                                                          command: str, label: str) -> None:
    first = make()
    assert first.state.status is status
    assert only_command(first)[2] == command
    decisions = miss(first, POLICY.compensation_attempts)
    for expected_attempt, d in enumerate(decisions[:-1], start=2):
        assert only_command(d) == only_command(first)
        assert (d.state.status, d.state.attempt) == (status, expected_attempt)
    parked = decisions[-1]
    assert parked.commands == ()
    assert parked.state.status is SagaStatus.PARKED
    assert parked.state.parked_from is status
    assert parked.state.parked_reason is not None and label in parked.state.parked_reason
    assert parked.state.awaiting == first.state.awaiting
    assert parked.state.failure_reason == first.state.failure_reason


# --- no deadline outside a saga in flight ------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: drive(FORWARD_REPLIES)[-1],
    lambda: drive(["StockReservationFailed", "OrderCancelled"])[-1],
    lambda: park(at_step("commit_stock")),
    lambda: park(compensating_at_release()),
], ids=["completed", "failed", "parked_running", "parked_compensating"])
def test_deadline_outside_a_saga_in_flight_is_not_applied(make: Callable[[], Decision]) -> None:
    state: SagaState = make().state
    decision = engine.on_deadline(DEFN, state)
    assert not decision.applied
    assert decision.commands == ()
    assert decision.state == state
    assert decision.deadline_in is None


def test_on_deadline_does_not_mutate_the_state_it_is_given() -> None:
    state = at_step("reserve_stock").state
    snapshot = replace(state, data=dict(state.data))
    engine.on_deadline(DEFN, replace(state, attempt=POLICY.forward_attempts))
    engine.on_deadline(DEFN, state)
    assert state == snapshot
    assert "failure_reason" not in state.data


# --- operator: redrive --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", IN_FLIGHT)
def test_redrive_resumes_where_it_parked_and_resends_the_same_command(name: str) -> None:
    first = IN_FLIGHT[name]()
    parked = park(first)
    redriven = engine.redrive(DEFN, parked.state)
    assert redriven.applied
    assert only_command(redriven) == only_command(first)
    assert redriven.state.status is first.state.status
    assert redriven.state.step == first.state.step
    assert redriven.state.awaiting == first.state.awaiting
    assert redriven.state.attempt == 1
    assert redriven.deadline_in == POLICY.deadline_after(1)
    assert (redriven.state.parked_reason, redriven.state.parked_from) == (None, None)
    assert redriven.state.version == parked.state.version + 1


@pytest.mark.parametrize("name", IN_FLIGHT)
def test_redrive_restores_the_full_retry_budget(name: str) -> None:
    redriven = engine.redrive(DEFN, park(IN_FLIGHT[name]()).state)
    decisions = miss(redriven, POLICY.compensation_attempts)
    assert all(d.commands for d in decisions[:-1])
    assert [d.state.attempt for d in decisions[:-1]] == list(range(2, POLICY.compensation_attempts + 1))
    assert decisions[-1].state.status is SagaStatus.PARKED


def test_reply_after_redrive_moves_the_saga_on() -> None:
    redriven = engine.redrive(DEFN, park(at_step("capture_payment")).state)
    moved = reply(redriven, "PaymentCaptured")
    assert only_command(moved)[2] == "CommitStock"
    assert moved.state.status is SagaStatus.RUNNING


@pytest.mark.parametrize("make", [
    lambda: at_step("capture_payment"),
    compensating_at_release,
    failing_at_cancel,
    lambda: drive(FORWARD_REPLIES)[-1],
    lambda: drive(["StockReservationFailed", "OrderCancelled"])[-1],
], ids=["running", "compensating", "failing", "completed", "failed"])
def test_redrive_and_skip_refuse_a_saga_that_is_not_parked(make: Callable[[], Decision]) -> None:
    state: SagaState = make().state
    with pytest.raises(ValueError, match="not PARKED"):
        engine.redrive(DEFN, state)
    with pytest.raises(ValueError, match="not PARKED"):
        engine.skip(DEFN, state)


# --- operator: skip -----------------------------------------------------------------------------------------------

def test_skip_at_capture_payment_moves_on_to_commit_stock() -> None:
    skipped = engine.skip(DEFN, park(at_step("capture_payment")).state)
    assert skipped.applied
    commit_id = command_id("o-1", "forward", "commit_stock", "CommitStock")
    assert only_command(skipped) == (commit_id, "inventory", "CommitStock", ORDER_ONLY)
    assert (skipped.state.status, skipped.state.step, skipped.state.attempt) == (SagaStatus.RUNNING, 4, 1)
    assert (skipped.state.parked_reason, skipped.state.parked_from) == (None, None)
    assert skipped.deadline_in == POLICY.deadline_after(1)


def test_skip_at_confirm_order_takes_the_success_reply() -> None:
    skipped = engine.skip(DEFN, park(at_step("confirm_order")).state)
    assert only_command(skipped)[2] == "CapturePayment"
    assert skipped.state.failure_reason is None


def test_skip_at_the_last_step_completes_the_saga() -> None:
    skipped = engine.skip(DEFN, park(at_step("commit_stock")).state)
    assert skipped.commands == ()
    assert skipped.state.status is SagaStatus.COMPLETED
    assert skipped.state.awaiting == ()
    assert skipped.deadline_in is None
    assert (skipped.state.parked_reason, skipped.state.parked_from) == (None, None)


def test_skip_of_void_payment_moves_on_to_release_stock() -> None:
    skipped = engine.skip(DEFN, park(compensating_at_void()).state)
    assert only_command(skipped)[1:] == ("inventory", "ReleaseStock", ORDER_ONLY)
    assert (skipped.state.status, skipped.state.step) == (SagaStatus.COMPENSATING, 0)
    assert skipped.state.failure_reason == "CUSTOMER_CANCELLED"


def test_skip_of_release_stock_moves_on_to_cancel_order() -> None:
    skipped = engine.skip(DEFN, park(compensating_at_release()).state)
    assert only_command(skipped)[1:] == ("orders", "CancelOrder",
                                         {"order_id": "o-1", "reason": "PAYMENT_DECLINED"})
    assert skipped.state.status is SagaStatus.FAILING
    assert skipped.deadline_in == POLICY.deadline_after(1)


def test_skip_of_a_timed_out_step_compensation_keeps_the_timeout_reason() -> None:
    timed_out = miss(at_step("reserve_stock"), POLICY.forward_attempts)[-1]
    skipped = engine.skip(DEFN, park(timed_out).state)
    assert only_command(skipped)[1:] == ("orders", "CancelOrder", {"order_id": "o-1", "reason": "TIMEOUT"})


def test_skip_of_cancel_order_fails_the_saga() -> None:
    skipped = engine.skip(DEFN, park(failing_at_cancel()).state)
    assert skipped.commands == ()
    assert skipped.state.status is SagaStatus.FAILED
    assert skipped.state.failure_reason == "OUT_OF_STOCK"
    assert skipped.deadline_in is None


def test_the_awaited_reply_arriving_after_parking_resumes_the_saga() -> None:
    d = replace(PLACE_ORDER, policy=RetryPolicy(compensation_attempts=1))
    s = engine.start(d, "o-late", DATA).state
    for reply in ("StockReserved", "PaymentAuthorized", "OrderConfirmed"):
        s = engine.on_reply(d, s, reply, s.awaiting[0].command_id).state
    parked = engine.on_deadline(d, s).state
    assert parked.status is SagaStatus.PARKED
    decision = engine.on_reply(d, parked, "PaymentCaptured", parked.awaiting[0].command_id)
    assert decision.applied and decision.state.status is SagaStatus.RUNNING
    assert decision.state.parked_reason is None
    assert [c.command_type for c in decision.commands] == ["CommitStock"]
