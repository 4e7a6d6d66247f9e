"""A rolling upgrade of a contract on the real stack, while orders keep coming: OrderCreated v2 (adds `channel`)
written by the new orders API and read by the previous release's saga and read-model workers, then v1 written by the
previous release's API and read by the new workers. Nothing is dead-lettered and every saga ends.

"The previous release" is these same processes on the previous release's contracts (WALSAGA_SCHEMA_DIR: every
.avsc but OrderCreated.v2), which is all that differs between the two releases on the path under test."""
from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, text

from schemas import codec, topics
from tests.e2e.invariants import saga_statuses
from tests.support import TopicTail, eventually, headers_of, restart_saga_workers
from walsaga.client import Gateway
from walsaga.stack import apps, kafka_acls, procs, runtime_user
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack

TERMINAL = ("COMPLETED", "FAILED")


@pytest.fixture
def previous_release(stack: StackConfig) -> dict[str, str]:
    old = stack.data / f"contracts-before-order-channel-{uuid.uuid4().hex[:6]}"
    old.mkdir()
    for path in codec.AVRO_DIR.glob("*.avsc"):
        if path.name != "OrderCreated.v2.avsc":
            shutil.copy(path, old / path.name)
    runtime_user.own_tree(old)  # the stack's processes run as its runtime user
    return {"WALSAGA_SCHEMA_DIR": str(old)}


class OrderStream:
    """Places an order every `interval` s until stopped, each retried with its key until the gateway answers 202
    (an API instance restarting answers 502 meanwhile), as a client would."""

    def __init__(self, gateway: Gateway, sku: str, interval: float = 0.1) -> None:
        self.gateway, self.sku, self.interval = gateway, sku, interval
        self.accepted: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OrderStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def count(self) -> int:
        return len(self.accepted)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            key, i = str(uuid.uuid4()), i + 1
            method = "pm_card_chargeDeclined" if i % 5 == 0 else "pm_card_visa"
            for _ in range(100):
                try:
                    resp = self.gateway.place_order(f"upgrade-{i % 7}", [{"sku": self.sku, "quantity": 1}], method,
                                                    key=key, channel="mobile")
                except httpx.HTTPError:
                    resp = None
                if resp is not None and resp.status_code == 202:
                    self.accepted.append(resp.json()["order_id"])
                    break
                self._stop.wait(0.2)
            self._stop.wait(self.interval)

    def wait_for_more(self, n: int) -> None:
        target = self.count() + n
        eventually(lambda: self._at_least(target), timeout=60, interval=0.2)

    def _at_least(self, target: int) -> None:
        assert self.count() >= target, f"{self.count()} of {target} orders accepted"


class Rollout:
    """Which process groups run the previous release; whatever still does at the end is brought forward."""

    def __init__(self, stack: StackConfig, previous: dict[str, str]) -> None:
        self.stack, self.previous = stack, previous
        self.behind: set[str] = set()

    def workers(self, *, back: bool) -> None:
        _restart_workers(self.stack, self.previous if back else None)
        (self.behind.add if back else self.behind.discard)("workers")

    def orders_api(self, *, back: bool) -> None:
        _restart_orders_api(self.stack, self.previous if back else None)
        (self.behind.add if back else self.behind.discard)("orders-api")

    def finish(self) -> None:
        if "orders-api" in self.behind:
            self.orders_api(back=False)
        if "workers" in self.behind:
            self.workers(back=False)


def _restart_workers(stack: StackConfig, env: dict[str, str] | None) -> None:
    """The saga workers and the read-model workers, one after the other, on the contracts `env` names."""
    restart_saga_workers(stack, env)
    for i in range(stack.view_instances):
        procs.stop(stack, f"views-{i}")
        apps.start_views(stack, range(i, i + 1), extra_env=env)


def _restart_orders_api(stack: StackConfig, env: dict[str, str] | None) -> None:
    for i in range(stack.api_instances):  # one at a time: the gateway sends to the other meanwhile
        procs.stop(stack, f"orders-api-{i}")
        apps.start_api(stack, "orders", i, extra_env=env)


@pytest.fixture
def rollout(stack: StackConfig, previous_release: dict[str, str]) -> Iterator[Rollout]:
    made = Rollout(stack, previous_release)
    yield made
    made.finish()


def test_a_contract_rolls_out_mid_stream_in_either_order(stack: StackConfig, gateway: Gateway,
                                                         engines: dict[str, Engine], rollout: Rollout) -> None:
    sku = f"upgrade-{uuid.uuid4().hex[:8]}"
    gateway.set_stock(sku, 10_000, unit_price="2.00")
    dead_letters = TopicTail(kafka_acls.admin(stack), topics.DEAD_LETTERS)
    order_events = TopicTail(kafka_acls.admin(stack), topics.ORDERS_EVENTS)
    orchestrator_log = stack.logs / "processors-0.log"
    try:
        with OrderStream(gateway, sku) as stream:
            stream.wait_for_more(5)
            # 1. the new API writes v2; the saga and read-model workers go back to the previous release under load
            mark = orchestrator_log.stat().st_size
            rollout.workers(back=True)
            stream.wait_for_more(20)
            new_producer_old_consumers = list(stream.accepted)
            # 2. the API goes back to the previous release (writes v1), the workers forward to the new one
            rollout.orders_api(back=True)
            old_producer_from = stream.count()
            rollout.workers(back=False)
            stream.wait_for_more(20)
        order_ids = list(stream.accepted)

        def every_saga_ended() -> None:
            statuses = saga_statuses(engines["saga"], order_ids)
            assert len(statuses) == len(order_ids), f"{len(order_ids) - len(statuses)} sagas not started"
            open_ = [s for s in statuses.values() if s not in TERMINAL]
            assert not open_, f"{len(open_)} of {len(order_ids)} sagas still open"

        eventually(every_saga_ended, timeout=180, interval=1.0)
        statuses = saga_statuses(engines["saga"], order_ids)
        assert {"COMPLETED", "FAILED"} <= set(statuses.values())

        # the previous release's orchestrator met v2 records: it found their writer schema in walsaga.schemas
        with open(orchestrator_log, "rb") as f:
            f.seek(mark)
            assert f"{topics.SCHEMAS}: read" in f.read().decode(errors="replace")
        with engines["orders"].connect() as conn:
            channels = dict(conn.execute(text("SELECT order_id, channel FROM orders WHERE order_id = ANY(:ids)"),
                                         {"ids": order_ids}).all())
        assert all(channels[o] == "mobile" for o in new_producer_old_consumers)
        # OrderCreated went out as v2 before step 2 and as v1 from the previous release's API after it
        order_events.drain_to_end()
        written = {h["sagaId"]: int(h["schemaVersion"]) for h in map(headers_of, order_events.seen)
                   if h.get("eventType") == "OrderCreated"}
        assert {written[o] for o in new_producer_old_consumers} == {2}
        assert {written[o] for o in order_ids[old_producer_from:]} == {1}

        dead_letters.drain_to_end()
        reasons = [headers_of(m) for m in dead_letters.seen]
        assert not reasons, f"dead-lettered during the upgrade: {reasons}"
    finally:
        dead_letters.close()
        order_events.close()
