"""The saga store's JSON form of pending commands (pure helpers; no database)."""
from __future__ import annotations

import json
from decimal import Decimal

from stream_processors.saga import engine
from stream_processors.saga.model import Command
from stream_processors.saga.place_order import PLACE_ORDER_V1 as PLACE_ORDER
from stream_processors.saga.store import _command_json, _commands, _from_json

CMD = Command("cmd-1", "payments", "AuthorizePayment",
              {"order_id": "o-1", "amount": Decimal("25.50"),
               "lines": [{"sku": "a", "price": Decimal("0.10")}, {"sku": "b", "price": Decimal("7")}]})


def _restore(stored: dict) -> Command:
    # what store.load_with_pending does with a row's JSON
    (command,) = _commands([stored])
    return command


def test_command_json_is_plain_json() -> None:
    stored = _command_json(CMD)
    assert json.loads(json.dumps(stored)) == stored
    assert stored["record"]["amount"] == {"__decimal__": "25.50"}
    assert stored["record"]["lines"][1]["price"] == {"__decimal__": "7"}


def test_round_trip_keeps_decimal_values_and_exponents() -> None:
    restored = _restore(_command_json(CMD))
    assert restored == CMD
    assert isinstance(restored.record["amount"], Decimal)
    assert str(restored.record["amount"]) == "25.50"
    assert str(restored.record["lines"][0]["price"]) == "0.10"


def test_round_trip_of_the_saga_authorize_command() -> None:
    data = {"order_id": "o-1", "customer_id": "c-1", "items": [{"sku": "a", "quantity": 1, "unit_price": "9.99"}],
            "total_amount": "9.99", "currency": "USD", "payment_method": "pm_card_visa"}
    started = engine.start(PLACE_ORDER, "o-1", data)
    reserve = started.commands[0]
    authorize = engine.on_reply(PLACE_ORDER, started.state, "StockReserved", reserve.command_id).commands[0]
    assert authorize.command_type == "AuthorizePayment"
    assert _restore(json.loads(json.dumps(_command_json(authorize)))) == authorize
    assert _restore(json.loads(json.dumps(_command_json(reserve)))) == reserve


def test_from_json_leaves_other_values_alone() -> None:
    value = {"a": [1, "x", None, True, {"b": 2.5}], "__decimal__x": "1", "c": {"__decimal__": "1", "d": 2}}
    assert _from_json(value) == value
