"""Notifications: deterministic identities, message texts and the fan-out of final order states."""
from __future__ import annotations

import uuid

import pytest

from schemas import codec
from services.notifications.domain import Channel, NotificationType, message, notification_id
from stream_processors.notifications.fanout import FINAL_STATES, commands_for

CONFIRMED = {"order_id": "o-1", "customer_id": "c-1", "version": 2}
CANCELLED = {"order_id": "o-1", "customer_id": "c-1", "reason": "OUT_OF_STOCK", "version": 2}


def test_notification_id_is_a_deterministic_uuid() -> None:
    nid = notification_id("o-1", NotificationType.ORDER_CONFIRMED, Channel.LOG)
    assert nid == notification_id("o-1", NotificationType.ORDER_CONFIRMED, Channel.LOG)
    assert uuid.UUID(nid).version == 5


def test_notification_id_differs_per_order_type_and_channel() -> None:
    ids = {notification_id(o, t, c) for o in ("o-1", "o-2") for t in NotificationType for c in Channel}
    assert len(ids) == 2 * len(NotificationType) * len(Channel)


def test_message_for_a_confirmed_order() -> None:
    assert message(NotificationType.ORDER_CONFIRMED, "o-1", "ignored") == "Your order o-1 is confirmed."


def test_message_for_a_cancelled_order_names_the_reason() -> None:
    assert message(NotificationType.ORDER_CANCELLED, "o-1", "OUT_OF_STOCK") == \
        "Your order o-1 was cancelled (OUT_OF_STOCK)."
    assert message(NotificationType.ORDER_CANCELLED, "o-1", "") == "Your order o-1 was cancelled (no reason given)."


def test_final_states_are_the_notification_types() -> None:
    assert FINAL_STATES == {t.value for t in NotificationType}


@pytest.mark.parametrize("event_type", ["OrderCreated", "StockReserved", "PaymentAuthorized", "NotificationSent"])
def test_non_final_events_produce_no_command(event_type: str) -> None:
    assert commands_for(event_type, CONFIRMED, ["log", "webhook"]) == ()


def test_one_command_per_channel() -> None:
    cmds = commands_for("OrderConfirmed", CONFIRMED, ["log", "webhook"])
    assert [c.record["channel"] for c in cmds] == ["log", "webhook"]
    assert {(c.participant, c.command_type) for c in cmds} == {("notifications", "SendNotification")}
    assert len({c.command_id for c in cmds}) == 2
    for c in cmds:
        assert c.record == {"order_id": "o-1", "customer_id": "c-1",
                            "type": "OrderConfirmed", "channel": c.record["channel"], "detail": ""}


def test_no_channels_means_no_command() -> None:
    assert commands_for("OrderConfirmed", CONFIRMED, []) == ()


def test_cancelled_carries_its_reason_as_detail() -> None:
    (cmd,) = commands_for("OrderCancelled", CANCELLED, ["log"])
    assert cmd.record["type"] == "OrderCancelled"
    assert cmd.record["detail"] == "OUT_OF_STOCK"


def test_command_ids_are_deterministic_across_replays() -> None:
    first = commands_for("OrderCancelled", CANCELLED, ["log", "webhook"])
    replay = commands_for("OrderCancelled", dict(CANCELLED), ["log", "webhook"])
    assert first == replay
    other_state = commands_for("OrderConfirmed", CONFIRMED, ["log", "webhook"])
    other_order = commands_for("OrderCancelled", {**CANCELLED, "order_id": "o-2"}, ["log", "webhook"])
    ids = {c.command_id for c in first}
    assert ids.isdisjoint(c.command_id for c in other_state)
    assert ids.isdisjoint(c.command_id for c in other_order)


def test_fanout_commands_satisfy_the_send_notification_contract() -> None:
    for cmd in commands_for("OrderCancelled", CANCELLED, [c.value for c in Channel]):
        payload, version = codec.encode(cmd.command_type, cmd.record)
        assert codec.decode(cmd.command_type, version, payload) == cmd.record
