"""A saga definition changes while instances are in flight, on the real stack: place_order v1 (steps one after the
other) is what the saga workers start until the deploy of v2 (stock and payment in parallel). Sagas started on v1
keep v1's steps after the deploy (payment is not asked while their stock reservation waits), new ones run v2
(payment asked beside it), and all of them end, each on the version it started with."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, text

from tests.e2e.invariants import check_order_consistency, saga_statuses
from tests.support import eventually, restart_saga_workers
from walsaga import operate
from walsaga.client import Gateway
from walsaga.stack import apps, procs
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack

ON_V1 = {"WALSAGA_SAGA_START_VERSIONS": "place_order=1"}


class SagaWorkers:
    """The saga workers' deploys: each restarts them one by one with its settings; the last one sticks."""

    def __init__(self, stack: StackConfig) -> None:
        self.stack = stack
        self.env: dict[str, str] | None = None

    def deploy(self, env: dict[str, str] | None) -> None:
        restart_saga_workers(self.stack, env)
        self.env = env


@pytest.fixture
def saga_workers(stack: StackConfig) -> Iterator[SagaWorkers]:
    """The saga workers start new sagas on v1 (as the release before v2 did); back on the defaults at the end."""
    workers = SagaWorkers(stack)
    workers.deploy(ON_V1)
    yield workers
    if workers.env is not None:
        workers.deploy(None)


@pytest.fixture
def resume_inventory(stack: StackConfig) -> Iterator[Callable[[], None]]:
    """Stops inventory's command consumer (sagas wait on their stock step) and gives a way to start it again; it
    is running again after the test whatever happened."""
    names = [apps.consumer_name("inventory", i) for i in range(stack.consumer_instances)]
    for name in names:
        procs.stop(stack, name)

    def resume() -> None:
        for i, name in enumerate(names):
            if not procs.read_pid(stack, name):
                apps.start_consumer(stack, "inventory", instance=i)
    yield resume
    resume()


def _place(gateway: Gateway, sku: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        resp = gateway.place_order(f"rollout-{i}", [{"sku": sku, "quantity": 1}])
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["order_id"])
    return ids


def _versions(saga: Engine, ids: list[str]) -> dict[str, int]:
    with saga.connect() as conn:
        return dict(conn.execute(text("SELECT saga_id, definition_version FROM saga_instance "
                                      "WHERE saga_id = ANY(:ids)"), {"ids": ids}).all())


def _asked_for_payment(payments: Engine, ids: list[str]) -> set[str]:
    with payments.connect() as conn:
        return set(conn.execute(text("SELECT order_id FROM payments WHERE order_id = ANY(:ids)"),
                                {"ids": ids}).scalars())


def test_instances_finish_on_the_version_they_started_while_new_ones_start_on_the_new(
        stack: StackConfig, gateway: Gateway, engines: dict[str, Engine], saga_workers: SagaWorkers,
        resume_inventory: Callable[[], None]) -> None:
    sku = f"rollout-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 100, unit_price="4.00")
    first = _place(gateway, sku, 4)

    def started(ids: list[str], version: int) -> None:
        found = _versions(engines["saga"], ids)
        assert found == dict.fromkeys(ids, version), found

    eventually(lambda: started(first, 1), timeout=30)
    saga_workers.deploy(None)  # the deploy of v2, while the v1 instances wait for their stock
    in_use = operate.versions_in_use(stack)
    assert any(line.startswith("place_order v1 ") and "RUNNING" in line and line.endswith("in the catalog")
               for line in in_use), in_use
    second = _place(gateway, sku, 4)
    eventually(lambda: started(second, 2), timeout=30)
    # v2 asks for payment beside the stock; the v1 instances still wait for stock before they ask
    eventually(lambda: _has_all(_asked_for_payment(engines["payments"], second), second), timeout=30)
    assert _asked_for_payment(engines["payments"], first) == set()

    resume_inventory()
    ids = first + second

    def all_ended() -> None:
        statuses = saga_statuses(engines["saga"], ids)
        assert set(statuses.values()) == {"COMPLETED"}, statuses

    eventually(all_ended, timeout=120, interval=0.5)
    assert _versions(engines["saga"], ids) == {**dict.fromkeys(first, 1), **dict.fromkeys(second, 2)}
    for order_id in ids:
        assert check_order_consistency(gateway, order_id)["status"] == "CONFIRMED"


def _has_all(found: set[str], wanted: list[str]) -> None:
    assert found == set(wanted), f"{len(found)} of {len(wanted)} asked for payment"
