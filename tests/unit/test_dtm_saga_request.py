"""The DTM baseline submits the place-order saga in DTM's terms (pure: the submit body)."""
from __future__ import annotations

import json
from decimal import Decimal

from bench.dtm import saga_request

URLS = {"orders": "http://o", "inventory": "http://i", "payments": "http://p"}
ORDER = {"customer_id": "c1", "currency": "USD", "payment_method": "pm_card_visa", "total_amount": Decimal("19.98"),
         "items": [{"sku": "s1", "quantity": 2, "unit_price": "9.99"}]}


def test_the_saga_runs_the_same_steps_as_walsagas_with_reasoned_cancels_between_them() -> None:
    body = saga_request("g1", ORDER, URLS)
    assert (body["gid"], body["trans_type"]) == ("g1", "saga")
    assert [(s["action"].rsplit("/", 1)[-1], s["compensate"].rsplit("/", 1)[-1]) for s in body["steps"]] == [
        ("", "CancelOrder"), ("ReserveStock", "ReleaseStock"), ("", "CancelOrder"),
        ("AuthorizePayment", "VoidPayment"), ("ConfirmOrder", ""), ("CapturePayment", ""), ("CommitStock", "")]
    assert body["steps"][1]["action"] == "http://i/inventory/saga-branches/ReserveStock"
    payloads = [json.loads(p) for p in body["payloads"]]
    assert [payloads[0]["reason"], payloads[2]["reason"]] == ["OUT_OF_STOCK", "PAYMENT_DECLINED"]
    assert payloads[1] == {"order_id": "g1", "lines": [{"sku": "s1", "quantity": 2}]}
    assert payloads[3]["amount"] == "19.98"  # money as an exact decimal string, never a float
