"""Deadlines, parking and the operator CLI against the real stack: a silent participant makes a step time out and
the saga compensate with TIMEOUT; compensations that get no answer park the saga; `walsaga sagas`, `saga show`,
`saga redrive`, `saga skip`, `dlq list` and `dlq replay` do what they say."""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Producer
from sqlalchemy import Engine, text

from schemas import topics
from schemas.headers import Envelope
from tests.conftest import TEST_PORT_OFFSET
from tests.support import eventually
from walsaga.cli import main as walsaga_cli
from walsaga.client import Gateway
from walsaga.stack import apps, kafka_acls, procs
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack
Cli = Callable[..., str]


@pytest.fixture()
def impatient_processors(stack: StackConfig) -> Iterator[None]:
    """The Faust worker with 1 s deadlines and budgets of 2 attempts, for these tests only."""
    procs.stop(stack, "processors-0")
    apps.start_processors(stack, range(1), {"WALSAGA_STEP_TIMEOUT_S": "1", "WALSAGA_FORWARD_ATTEMPTS": "2",
                                            "WALSAGA_COMPENSATION_ATTEMPTS": "2"})
    yield
    procs.stop(stack, "processors-0")
    apps.start_processors(stack, range(1))


@pytest.fixture()
def cli(stack: StackConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    monkeypatch.setenv("WALSAGA_HOME", str(stack.home))
    monkeypatch.setenv("WALSAGA_PORT_OFFSET", str(TEST_PORT_OFFSET))

    def run(*args: str) -> str:
        capsys.readouterr()
        assert walsaga_cli(list(args)) == 0, args
        return capsys.readouterr().out
    return run


def _saga(engines: dict[str, Engine], order_id: str) -> str | None:
    with engines["saga"].connect() as c:
        return c.execute(text("SELECT status FROM saga_instance WHERE saga_id = :s"), {"s": order_id}).scalar()


def _wait_saga(engines: dict[str, Engine], order_id: str, status: str, timeout: float = 60) -> None:
    def probe() -> None:
        assert _saga(engines, order_id) == status
    eventually(probe, timeout, interval=0.2)


def _stocked(gateway: Gateway, engines: dict[str, Engine], sku: str) -> str:
    """Stock and price a SKU, and wait until the orders service's price copy has it: the orders consumer applies
    the price, and these tests stop that consumer."""
    gateway.set_stock(sku, 5, unit_price="4.00")

    def priced() -> None:
        with engines["orders"].connect() as c:
            assert c.execute(text("SELECT count(*) FROM catalog_price WHERE sku = :s"), {"s": sku}).scalar() == 1
    eventually(priced, timeout=30)
    return sku


def _order(gateway: Gateway, sku: str, pm: str = "pm_card_visa") -> str:
    resp = gateway.place_order("ops-customer", [{"sku": sku, "quantity": 2, "unit_price": "4.00"}], pm)
    assert resp.status_code == 202
    return resp.json()["order_id"]


def test_silent_participant_times_out_parks_the_void_and_its_late_answer_finishes_the_saga(
        stack: StackConfig, gateway: Gateway, engines: dict[str, Engine], impatient_processors: None,
        cli: Cli) -> None:
    sku = _stocked(gateway, engines, f"ops-timeout-{uuid.uuid4().hex[:6]}")
    procs.stop(stack, "payments-consumer")
    try:
        order_id = _order(gateway, sku)
        _wait_saga(engines, order_id, "PARKED")
        assert order_id in cli("sagas")
        history = cli("saga", "show", order_id)
        assert "re-sent AuthorizePayment" in history and "timed out" in history and "VoidPayment" in history
        assert "parked" in history
    finally:
        apps.start_consumer(stack, "payments")
    # the payments service now applies the late authorization, then the void: the void's reply un-parks the saga
    _wait_saga(engines, order_id, "FAILED")
    # the read side follows the orders service's events, which may land a moment after the saga's last reply
    eventually(lambda: _assert_cancelled(gateway, order_id, "TIMEOUT"), timeout=30)
    assert [p["status"] for p in gateway.payments(order_id)] == ["VOIDED"]
    stock = gateway.stock(sku)
    assert (stock["available"], stock["reserved"], stock["committed"]) == (5, 0, 0)


def test_operator_redrives_a_parked_saga(stack: StackConfig, gateway: Gateway, engines: dict[str, Engine],
                                         impatient_processors: None, cli: Cli) -> None:
    sku = _stocked(gateway, engines, f"ops-redrive-{uuid.uuid4().hex[:6]}")
    procs.stop(stack, "orders-consumer")
    try:
        order_id = _order(gateway, sku)
        _wait_saga(engines, order_id, "PARKED")  # confirm_order is past the pivot: retried, then parked
        assert "ConfirmOrder" in cli("saga", "redrive", order_id)
        assert _saga(engines, order_id) == "RUNNING"
    finally:
        apps.start_consumer(stack, "orders")
    _wait_saga(engines, order_id, "COMPLETED")
    eventually(lambda: _assert_status(gateway, order_id, "CONFIRMED"), timeout=30)
    assert [p["status"] for p in gateway.payments(order_id)] == ["CAPTURED"]
    assert "re-driven by operator" in cli("saga", "show", order_id)


def test_operator_skips_the_step_a_parked_saga_waits_for(stack: StackConfig, gateway: Gateway,
                                                         engines: dict[str, Engine], impatient_processors: None,
                                                         cli: Cli) -> None:
    sku = _stocked(gateway, engines, f"ops-skip-{uuid.uuid4().hex[:6]}")
    procs.stop(stack, "orders-consumer")
    try:
        order_id = _order(gateway, sku)
        _wait_saga(engines, order_id, "PARKED")
        assert "CapturePayment" in cli("saga", "skip", order_id)
        _wait_saga(engines, order_id, "COMPLETED")  # capture and commit ran after the skipped confirmation
    finally:
        apps.start_consumer(stack, "orders")
    # the queued confirmation is applied when the orders consumer is back: every service agrees in the end
    eventually(lambda: _assert_status(gateway, order_id, "CONFIRMED"), timeout=30)
    assert [p["status"] for p in gateway.payments(order_id)] == ["CAPTURED"]
    assert gateway.stock(sku)["committed"] == 2
    assert "operator skipped confirm_order" in cli("saga", "show", order_id)


def _assert_status(gateway: Gateway, order_id: str, status: str) -> None:
    assert gateway.order(order_id)["status"] == status


def _assert_cancelled(gateway: Gateway, order_id: str, reason: str) -> None:
    order = gateway.order(order_id)
    assert (order["status"], order["cancel_reason"]) == ("CANCELLED", reason)


def test_dead_letters_are_listed_and_replayed_from_the_cli(stack: StackConfig, cli: Cli) -> None:
    key = f"dlq-cli-{uuid.uuid4().hex[:8]}"
    env = Envelope(str(uuid.uuid4()), "ReserveStock", 1, key, key, str(uuid.uuid4()))
    producer = Producer(kafka_acls.admin(stack).confluent())
    producer.produce(topics.INVENTORY_COMMANDS, key=key.encode(), value=b"\x00garbage", headers=env.to_headers())
    assert producer.flush(10) == 0

    first = eventually(lambda: _letters_for(cli, stack, key, 1), timeout=60)
    partition, offset = first[0]
    assert "replayed to walsaga.inventory.commands" in cli("dlq", "replay", "--partition", str(partition),
                                                           "--offset", str(offset))
    # still poison after the replay: it comes back to the dead-letter topic, once more
    eventually(lambda: _letters_for(cli, stack, key, 2), timeout=60)


def _letters_for(cli: Cli, stack: StackConfig, key: str, count: int) -> list[tuple[int, int]]:
    from walsaga import operate

    found = [(d.partition, d.offset) for d in operate.read_dead_letters(stack, 100_000) if d.key == key.encode()]
    assert len(found) == count, f"{len(found)} dead letters for {key}, want {count}"
    listing = cli("dlq", "list", "--limit", "100000")
    for partition, offset in found:
        line = next(ln for ln in listing.splitlines() if ln.startswith(f"{partition}:{offset} "))
        assert re.search(r"from walsaga\.inventory\.commands\[\d+\]@\d+ by inventory", line), line
        assert "reason: undecodable" in line
    return found
