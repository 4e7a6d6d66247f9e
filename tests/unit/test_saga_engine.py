"""The place-order saga driven through the pure engine: forward steps, failures, compensations, stale replies."""
from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas import codec
from services.orders.domain import CancelReason
from stream_processors.saga import engine
from stream_processors.saga.catalog import DEFINITIONS, STARTERS, by_version, newest
from stream_processors.saga.model import (
    Action,
    Command,
    Decision,
    SagaDefinition,
    SagaState,
    SagaStatus,
    Step,
    command_id,
)
from stream_processors.saga.place_order import PLACE_ORDER as PLACE_ORDER_V2
from stream_processors.saga.place_order import PLACE_ORDER_V1 as PLACE_ORDER
from stream_processors.saga.place_order import saga_data
from stream_processors.saga.refund_order import REFUND_ORDER

ORDER_CREATED: dict[str, Any] = {
    "order_id": "o-1", "customer_id": "c-1",
    "items": [{"sku": "sku-a", "quantity": 2, "unit_price": Decimal("10.00")},
              {"sku": "sku-b", "quantity": 1, "unit_price": Decimal("5.55")}],
    "total_amount": Decimal("25.55"), "currency": "EUR", "payment_method": "pm_card_visa",
    "created_at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
}
DATA = saga_data(ORDER_CREATED)
ORDER_ONLY = {"order_id": "o-1"}
STEP_NAMES = [s.name for s in PLACE_ORDER.steps]
FORWARD_REPLIES = [s.action.reply for s in PLACE_ORDER.steps]


def drive(replies: list[str], saga_id: str = "o-1") -> list[Decision]:
    """Start the saga and answer the awaited command with each reply in turn; every reply must be applied."""
    decisions = [engine.start(PLACE_ORDER, saga_id, {**DATA, "order_id": saga_id})]
    for reply in replies:
        state = decisions[-1].state
        assert state.awaiting != (), f"nothing awaited before {reply}"
        decision = engine.on_reply(PLACE_ORDER, state, reply, state.awaiting[0].command_id)
        assert decision.applied, decision.note
        decisions.append(decision)
    return decisions


def only_command(decision: Decision) -> Command:
    assert len(decision.commands) == 1, decision.commands
    return decision.commands[0]


def assert_ignored(state: SagaState, reply_type: str, causation_id: str) -> None:
    decision = engine.on_reply(PLACE_ORDER, state, reply_type, causation_id)
    assert not decision.applied
    assert decision.commands == ()
    assert decision.state == state


# --- happy path -------------------------------------------------------------------------------------------------

HAPPY = [
    ("inventory", "ReserveStock", {"order_id": "o-1", "lines": [{"sku": "sku-a", "quantity": 2},
                                                                {"sku": "sku-b", "quantity": 1}]}),
    ("payments", "AuthorizePayment", {"order_id": "o-1", "customer_id": "c-1", "amount": Decimal("25.55"),
                                      "currency": "EUR", "payment_method": "pm_card_visa"}),
    ("orders", "ConfirmOrder", ORDER_ONLY),
    ("payments", "CapturePayment", ORDER_ONLY),
    ("inventory", "CommitStock", ORDER_ONLY),
]


@pytest.mark.parametrize("index", range(len(HAPPY)))
def test_happy_path_step_emits_its_command(index: int) -> None:
    decision = drive(FORWARD_REPLIES[:index])[-1]
    cmd = only_command(decision)
    assert (cmd.participant, cmd.command_type, cmd.record) == HAPPY[index]
    assert cmd.command_id == command_id("o-1", "forward", STEP_NAMES[index], HAPPY[index][1])
    state = decision.state
    assert (state.status, state.step) == (SagaStatus.RUNNING, index)
    assert state.awaiting != () and state.awaiting[0].command_id == cmd.command_id


def test_authorize_amount_is_a_decimal_equal_to_the_order_total() -> None:
    amount = only_command(drive(["StockReserved"])[-1]).record["amount"]
    assert isinstance(amount, Decimal)
    assert amount == ORDER_CREATED["total_amount"]


def test_happy_path_completes_after_the_last_reply() -> None:
    final = drive(FORWARD_REPLIES)[-1]
    assert final.commands == ()
    assert final.state.status is SagaStatus.COMPLETED
    assert final.state.status.terminal
    assert final.state.awaiting == ()
    assert final.state.failure_reason is None


# --- failures and compensations ---------------------------------------------------------------------------------

def test_out_of_stock_fails_without_compensation() -> None:
    decisions = drive(["StockReservationFailed", "OrderCancelled"])
    failing = decisions[1]
    assert failing.state.status is SagaStatus.FAILING
    assert failing.state.failure_reason == "OUT_OF_STOCK"
    cmd = only_command(failing)
    assert (cmd.participant, cmd.command_type, cmd.record) == (
        "orders", "CancelOrder", {"order_id": "o-1", "reason": "OUT_OF_STOCK"})
    assert decisions[2].state.status is SagaStatus.FAILED
    assert decisions[2].commands == ()
    assert decisions[2].state.failure_reason == "OUT_OF_STOCK"


def test_payment_declined_releases_stock_then_cancels() -> None:
    decisions = drive(["StockReserved", "PaymentDeclined", "StockReleased", "OrderCancelled"])
    compensating, failing, failed = decisions[2:]
    assert (compensating.state.status, compensating.state.step) == (SagaStatus.COMPENSATING, 0)
    assert (only_command(compensating).participant, only_command(compensating).command_type,
            only_command(compensating).record) == ("inventory", "ReleaseStock", ORDER_ONLY)
    assert failing.state.status is SagaStatus.FAILING
    assert only_command(failing).record == {"order_id": "o-1", "reason": "PAYMENT_DECLINED"}
    assert failed.state.status is SagaStatus.FAILED
    assert failed.state.failure_reason == "PAYMENT_DECLINED"


def test_customer_cancel_compensates_newest_first() -> None:
    decisions = drive(["StockReserved", "PaymentAuthorized", "OrderCancelled",
                       "PaymentVoided", "StockReleased", "OrderCancelled"])
    emitted = [(c.participant, c.command_type, c.record) for d in decisions[3:] for c in d.commands]
    assert emitted == [("payments", "VoidPayment", ORDER_ONLY),
                       ("inventory", "ReleaseStock", ORDER_ONLY),
                       ("orders", "CancelOrder", {"order_id": "o-1", "reason": "CUSTOMER_CANCELLED"})]
    assert [d.state.status for d in decisions[3:]] == [SagaStatus.COMPENSATING, SagaStatus.COMPENSATING,
                                                     SagaStatus.FAILING, SagaStatus.FAILED]
    assert decisions[-1].state.failure_reason == "CUSTOMER_CANCELLED"


def test_failure_and_forward_command_ids_never_collide() -> None:
    decisions = drive(["StockReserved", "PaymentAuthorized", "OrderCancelled",
                       "PaymentVoided", "StockReleased", "OrderCancelled"])
    ids = [c.command_id for d in decisions for c in d.commands]
    assert len(ids) == len(set(ids)) == 6


# --- every step of the definition -------------------------------------------------------------------------------

@pytest.mark.parametrize("index", range(len(PLACE_ORDER.steps)), ids=STEP_NAMES)
def test_every_step_awaits_its_reply_and_failures_and_advances(index: int) -> None:
    step = PLACE_ORDER.steps[index]
    at_step = drive(FORWARD_REPLIES[:index])[-1]
    assert only_command(at_step).command_type == step.action.command
    assert only_command(at_step).participant == step.action.participant
    assert at_step.state.awaiting != ()
    assert at_step.state.awaiting[0].replies == (step.action.reply, *step.failures)
    advanced = drive(FORWARD_REPLIES[:index + 1])[-1]
    if index + 1 < len(PLACE_ORDER.steps):
        assert advanced.state.step == index + 1
        assert only_command(advanced).command_type == PLACE_ORDER.steps[index + 1].action.command
    else:
        assert advanced.state.status is SagaStatus.COMPLETED


FAILURES = [(i, reply, reason) for i, s in enumerate(PLACE_ORDER.steps) for reply, reason in s.failures.items()]


@pytest.mark.parametrize("index, failure_reply, reason", FAILURES, ids=[f[1] for f in FAILURES])
def test_every_failure_runs_earlier_compensations_newest_first_then_the_failure_action(
        index: int, failure_reply: str, reason: str) -> None:
    compensations = [s.compensation for s in reversed(PLACE_ORDER.steps[:index]) if s.compensation is not None]
    replies = [*FORWARD_REPLIES[:index], failure_reply, *(c.reply for c in compensations),
               PLACE_ORDER.failure_action.reply]
    decisions = drive(replies)
    after_failure = decisions[index + 1:]
    emitted = [only_command(d) for d in after_failure[:-1]]
    expected = [*compensations, PLACE_ORDER.failure_action]
    assert [(c.participant, c.command_type) for c in emitted] == [(a.participant, a.command) for a in expected]
    assert emitted[-1].record == {"order_id": "o-1", "reason": reason}
    assert after_failure[-1].state.status is SagaStatus.FAILED
    assert after_failure[-1].state.failure_reason == reason


@pytest.mark.parametrize("step", [s for s in PLACE_ORDER.steps if s.compensation], ids=lambda s: s.name)
def test_every_compensation_targets_the_participant_of_its_step(step: Step) -> None:
    assert step.compensation is not None
    assert step.compensation.participant == step.action.participant
    assert step.compensation.build(DATA) == ORDER_ONLY


def test_steps_after_the_pivot_cannot_fail_or_be_compensated() -> None:
    pivot = STEP_NAMES.index("confirm_order")
    for step in PLACE_ORDER.steps[pivot + 1:]:
        assert step.failures == {} and step.compensation is None, step.name
    assert PLACE_ORDER.steps[pivot].compensation is None


def test_failure_reasons_are_cancel_reasons_the_orders_service_accepts() -> None:
    for _, _, reason in FAILURES:
        assert CancelReason(reason).value == reason


def _actions(defn: SagaDefinition) -> list[Action]:
    return [*([defn.failure_action] if defn.failure_action else []), *(s.action for s in defn.all_steps()),
            *(s.compensation for s in defn.all_steps() if s.compensation)]


@pytest.mark.parametrize("defn", DEFINITIONS, ids=[f"{d.name}.v{d.version}" for d in DEFINITIONS])
def test_every_message_a_saga_sends_or_awaits_has_a_schema(defn: SagaDefinition) -> None:
    for name in [*(a.command for a in _actions(defn)), *defn.reply_types(), *defn.interrupts, *defn.followups,
                 *STARTERS]:
        assert codec.latest_version(name) >= 1, name


@pytest.mark.parametrize("defn", DEFINITIONS, ids=[f"{d.name}.v{d.version}" for d in DEFINITIONS])
def test_every_command_built_from_saga_data_encodes(defn: SagaDefinition) -> None:
    data = {**DATA, "failure_reason": "OUT_OF_STOCK"}
    for action in _actions(defn):
        payload, version = codec.encode(action.command, action.build(data))
        assert codec.decode(action.command, version, payload) == action.build(data)


def test_reply_types_and_registries() -> None:
    assert PLACE_ORDER.reply_types() == {"StockReserved", "StockReservationFailed", "StockReleased",
                                         "PaymentAuthorized", "PaymentDeclined", "PaymentVoided", "OrderConfirmed",
                                         "OrderCancelled", "PaymentCaptured", "StockCommitted"}
    assert REFUND_ORDER.reply_types() == {"PaymentRefunded", "StockReturned", "OrderCancelled"}
    assert by_version(DEFINITIONS) == {("place_order", 1): PLACE_ORDER, ("place_order", 2): PLACE_ORDER_V2,
                                       ("refund_order", 1): REFUND_ORDER}
    assert PLACE_ORDER_V2.reply_types() == PLACE_ORDER.reply_types()
    assert [s.name for s in PLACE_ORDER_V2.all_steps()] == STEP_NAMES  # the same steps, two stages in parallel
    assert {event: s.saga for event, s in STARTERS.items()} == {"OrderCreated": "place_order"}
    assert set(PLACE_ORDER.followups.values()) <= set(newest(DEFINITIONS))


def test_a_new_instance_starts_on_the_newest_version_and_a_chained_saga_on_its_own_newest() -> None:
    v2 = replace(PLACE_ORDER, version=2, steps=PLACE_ORDER.steps[1:])
    assert newest([PLACE_ORDER, v2, REFUND_ORDER]) == {"place_order": v2, "refund_order": REFUND_ORDER}
    started = engine.start(v2, "o-1", DATA)
    assert started.state.definition_version == 2
    assert [c.command_type for c in started.commands] == ["AuthorizePayment"]  # v2's first step
    completed = replace(started.state, status=SagaStatus.COMPLETED, awaiting=None)
    refund_v3 = replace(REFUND_ORDER, version=3)
    chained = engine.chain(refund_v3, completed, "cancel requested")
    assert (chained.state.definition, chained.state.definition_version) == ("refund_order", 3)


def test_a_version_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="place_order v1 is declared twice"):
        by_version([PLACE_ORDER, replace(PLACE_ORDER, steps=PLACE_ORDER.steps[:1])])


def test_saga_data_is_json_safe() -> None:
    assert DATA == {"order_id": "o-1", "customer_id": "c-1",
                    "items": [{"sku": "sku-a", "quantity": 2, "unit_price": "10.00"},
                              {"sku": "sku-b", "quantity": 1, "unit_price": "5.55"}],
                    "total_amount": "25.55", "currency": "EUR", "payment_method": "pm_card_visa"}


# --- stale, unexpected and late replies -------------------------------------------------------------------------

def test_reply_with_another_causation_id_is_ignored() -> None:
    state = drive([])[-1].state
    assert_ignored(state, "StockReserved", str(uuid.uuid4()))
    assert_ignored(state, "StockReserved", "")


def test_reply_of_an_unexpected_type_is_ignored() -> None:
    state = drive([])[-1].state
    assert state.awaiting != ()
    assert_ignored(state, "PaymentAuthorized", state.awaiting[0].command_id)
    assert_ignored(state, "StockReleased", state.awaiting[0].command_id)


def test_duplicate_of_an_already_applied_reply_is_ignored() -> None:
    decisions = drive(["StockReserved"])
    first_command = only_command(decisions[0]).command_id
    assert_ignored(decisions[1].state, "StockReserved", first_command)


@pytest.mark.parametrize("replies", [FORWARD_REPLIES, ["StockReservationFailed", "OrderCancelled"]],
                         ids=["completed", "failed"])
def test_replies_after_a_terminal_state_are_ignored(replies: list[str]) -> None:
    decisions = drive(replies)
    final = decisions[-1].state
    assert final.status.terminal
    for d in decisions:
        for cmd in d.commands:
            for reply in PLACE_ORDER.reply_types():
                assert_ignored(final, reply, cmd.command_id)


def test_terminal_status_flags() -> None:
    assert {s for s in SagaStatus if s.terminal} == {SagaStatus.COMPLETED, SagaStatus.FAILED}


# --- determinism and versions -----------------------------------------------------------------------------------

PATHS = [FORWARD_REPLIES,
         ["StockReservationFailed", "OrderCancelled"],
         ["StockReserved", "PaymentDeclined", "StockReleased", "OrderCancelled"],
         ["StockReserved", "PaymentAuthorized", "OrderCancelled", "PaymentVoided", "StockReleased", "OrderCancelled"]]


@pytest.mark.parametrize("replies", PATHS, ids=["happy", "out_of_stock", "declined", "customer_cancelled"])
def test_command_ids_are_deterministic_per_saga(replies: list[str]) -> None:
    def ids(saga_id: str) -> list[str]:
        return [c.command_id for d in drive(replies, saga_id) for c in d.commands]

    assert ids("o-1") == ids("o-1")
    assert set(ids("o-1")).isdisjoint(ids("o-2"))
    assert all(uuid.UUID(i).version == 5 for i in ids("o-1"))


@pytest.mark.parametrize("replies", PATHS, ids=["happy", "out_of_stock", "declined", "customer_cancelled"])
def test_version_increases_with_every_applied_decision(replies: list[str]) -> None:
    versions = [d.state.version for d in drive(replies)]
    assert versions[0] == 1
    assert all(a < b for a, b in zip(versions, versions[1:], strict=False)), versions


def test_engine_does_not_mutate_the_state_it_is_given() -> None:
    state = drive([])[-1].state
    snapshot = (state.status, state.step, dict(state.data), state.awaiting, state.version)
    assert state.awaiting != ()
    engine.on_reply(PLACE_ORDER, state, "StockReservationFailed", state.awaiting[0].command_id)
    assert (state.status, state.step, dict(state.data), state.awaiting, state.version) == snapshot
    assert "failure_reason" not in state.data


# --- the engine's compensation walk on a made-up definition ------------------------------------------------------

def _act(name: str) -> Action:
    return Action("p", name, f"{name}Done", lambda data: {"id": data["id"]})


MIXED = SagaDefinition(
    name="mixed",
    steps=(Step("a", _act("A"), compensation=_act("UndoA")),
           Step("b", _act("B")),  # nothing to undo: the walk must skip it
           Step("c", _act("C"), compensation=_act("UndoC")),
           Step("d", _act("D"), failures={"DFailed": "D_FAILED"})),
    failure_action=_act("Fail"),
)


def test_compensation_walk_skips_steps_without_a_compensation() -> None:
    decision = engine.start(MIXED, "s-1", {"id": "s-1"})
    sent = [only_command(decision).command_type]
    for reply in ["ADone", "BDone", "CDone", "DFailed", "UndoCDone", "UndoADone", "FailDone"]:
        state = decision.state
        assert state.awaiting != ()
        decision = engine.on_reply(MIXED, state, reply, state.awaiting[0].command_id)
        assert decision.applied, decision.note
        sent += [c.command_type for c in decision.commands]
    assert sent == ["A", "B", "C", "D", "UndoC", "UndoA", "Fail"]
    assert decision.state.status is SagaStatus.FAILED
    assert decision.state.failure_reason == "D_FAILED"
