"""The DTM baseline submits the place-order saga in DTM's terms (pure: the submit body)."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from bench.dtm import DtmUnavailable, _listen_on_loopback, saga_request
from schemas import participants
from stream_processors.saga.place_order import PLACE_ORDER

URLS = {"orders": "http://o", "inventory": "http://i", "payments": "http://p"}
ORDER = {"customer_id": "c1", "currency": "USD", "payment_method": "pm_card_visa", "total_amount": Decimal("19.98"),
         "items": [{"sku": "s1", "quantity": 2, "unit_price": "9.99"}]}


def test_the_saga_runs_the_same_steps_as_walsagas_with_reasoned_cancels_between_them() -> None:
    body = saga_request("g1", ORDER, URLS, "tok")
    assert (body["gid"], body["trans_type"]) == ("g1", "saga")
    assert [(s["action"].rsplit("/", 1)[-1], s["compensate"].rsplit("/", 1)[-1]) for s in body["steps"]] == [
        ("", "CancelOrder"), ("ReserveStock", "ReleaseStock"), ("", "CancelOrder"),
        ("AuthorizePayment", "VoidPayment"), ("ConfirmOrder", ""), ("CapturePayment", ""), ("CommitStock", "")]
    assert body["steps"][1]["action"] == "http://i/inventory/saga-branches/ReserveStock"
    payloads = [json.loads(p) for p in body["payloads"]]
    assert [payloads[0]["reason"], payloads[2]["reason"]] == ["OUT_OF_STOCK", "PAYMENT_DECLINED"]
    assert payloads[1] == {"order_id": "g1", "lines": [{"sku": "s1", "quantity": 2}]}
    assert payloads[3]["amount"] == "19.98"  # money as an exact decimal string, never a float
    assert body["branch_headers"] == {"Authorization": "Bearer tok"}  # DTM passes the staff token to every branch


def test_the_dtm_build_is_patched_to_listen_on_loopback_only(tmp_path: Path) -> None:
    server_go = tmp_path / "svr.go"
    server_go.write_text('app.Run(fmt.Sprintf(":%d", conf.HTTPPort))\nnet.Listen("tcp", fmt.Sprintf(":%d", p))\n')
    _listen_on_loopback(server_go)
    assert server_go.read_text().count('fmt.Sprintf("127.0.0.1:%d"') == 2 and '":%d"' not in server_go.read_text()


def test_a_dtm_source_that_changed_its_listeners_is_refused_not_built_open(tmp_path: Path) -> None:
    server_go = tmp_path / "svr.go"
    server_go.write_text('app.Run(fmt.Sprintf(":%d", conf.HTTPPort))\n')
    with pytest.raises(DtmUnavailable, match="not patched"):
        _listen_on_loopback(server_go)


def test_dtm_calls_the_commands_of_walsagas_place_order_on_their_owners() -> None:
    """The baseline sends what walsaga's place_order sends (its failure action, CancelOrder, once per reason), each
    to the participant the registry names as the command's owner."""
    body = saga_request("g1", ORDER, URLS, "tok")
    called = {url for s in body["steps"] for url in (s["action"], s["compensate"]) if url}
    assert {url.rsplit("/", 1)[-1] for url in called} == {a.command for a in PLACE_ORDER.actions()}
    for url in called:
        service, command = url.split("/")[-3], url.rsplit("/", 1)[-1]
        assert url.startswith(URLS[service]) and participants.owner_of(command).name == service
