"""The fault suite's harness: a mixed batch of orders, a fault in its middle, then drain and the invariants
I1 (everything settles), I2 (no double effect), I3 (the services agree), I4 (the fault really bit)."""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy import Engine, create_engine, text

from cdc import connectors as cdc_connectors
from cdc.slots import SlotState, slot_state, wal_end
from schemas import topics
from tests.support import eventually
from walsaga.client import Gateway
from walsaga.stack import kafka_acls
from walsaga.stack.config import SERVICES, StackConfig, db_url

GROUPS = {**{f"walsaga-{svc}": [topics.COMMAND_TOPIC[svc]] for svc in SERVICES},
          "walsaga-processors": [topics.ORDERS_EVENTS, topics.INVENTORY_REPLIES, topics.PAYMENTS_REPLIES]}


@dataclass(frozen=True)
class OrderSpec:
    key: str
    customer: str
    sku: str
    quantity: int
    payment_method: str


@dataclass
class Batch:
    cfg: StackConfig
    gw: Gateway
    specs: list[OrderSpec]
    initial_stock: dict[str, int]
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    unavailable_answers: int = 0  # 5xx or connection errors the clients saw (and retried)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, spec: OrderSpec, timeout: float = 120.0) -> None:
        """Retries with the same key until accepted: a request cut by the fault is neither lost nor doubled."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                resp = self.gw.place_order(spec.customer, [{"sku": spec.sku, "quantity": spec.quantity,
                                                            "unit_price": "5.00"}], spec.payment_method,
                                           key=spec.key)
                if resp.status_code == 202:
                    with self._lock:
                        self.accepted[spec.key] = resp.json()["order_id"]
                    return
                assert resp.status_code >= 500 or resp.status_code == 409, resp.text
            except httpx.HTTPError:
                pass
            with self._lock:
                self.unavailable_answers += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"order {spec.key} not accepted within {timeout:.0f}s")
            time.sleep(0.2)

    def run(self, fault: Callable[[], None], concurrency: int = 6) -> None:
        """First half, then the fault (while the first half's sagas are in flight), then the second half."""
        half = len(self.specs) // 2
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(self.submit, self.specs[:half]))
            fault()
            list(pool.map(self.submit, self.specs[half:]))

    @property
    def order_ids(self) -> list[str]:
        return list(self.accepted.values())


def make_batch(cfg: StackConfig, gw: Gateway, n: int = 40, extra_methods: tuple[str, ...] = (),
               hot_stock: tuple[int, int, int] = (25, 25, 6)) -> Batch:
    """Mixed outcomes on a few hot SKUs: approvals, declines, out of stock (never stocked, too little)."""
    run = uuid.uuid4().hex[:6]
    hot = [f"hot-{run}-{i}" for i in range(3)]
    empty = f"empty-{run}"  # priced, never stocked: its orders end OUT_OF_STOCK
    stock = {hot[0]: hot_stock[0], hot[1]: hot_stock[1], hot[2]: hot_stock[2], empty: 0}
    for sku, qty in stock.items():
        gw.set_stock(sku, qty, unit_price="5.00")
    wait_priced(cfg, list(stock))
    methods = ["pm_card_visa", "pm_card_visa", "pm_card_chargeDeclined", "pm_card_visa", *extra_methods]
    specs = []
    for i in range(n):
        sku = empty if i % 10 == 7 else hot[i % 3]
        specs.append(OrderSpec(str(uuid.uuid4()), f"cust-{run}-{i % 4}", sku, 1 + i % 2, methods[i % len(methods)]))
    return Batch(cfg, gw, specs, stock)


def wait_priced(cfg: StackConfig, skus: list[str], timeout: float = 60.0) -> None:
    """Until the orders service's price copy has every SKU: a fault that stops the orders consumer (which applies
    the prices) must find the batch already orderable."""
    engine = create_engine(db_url(cfg, "orders"), pool_size=1)

    def priced() -> None:
        with engine.connect() as c:
            known = c.execute(text("SELECT count(*) FROM catalog_price WHERE sku = ANY(:s)"), {"s": skus}).scalar()
        assert known == len(skus), f"{known} of {len(skus)} prices in the orders service's copy"
    try:
        eventually(priced, timeout)
    finally:
        engine.dispose()


# --- settling and draining ---------------------------------------------------------------------------------------

def settle(batch: Batch, engines: dict[str, Engine], timeout: float = 240.0) -> dict[str, str]:
    ids = batch.order_ids

    def probe() -> dict[str, str]:
        with engines["saga"].connect() as conn:
            rows = conn.execute(text("SELECT saga_id, status FROM saga_instance WHERE saga_id = ANY(:ids)"),
                                {"ids": ids}).all()
        statuses = {r.saga_id: r.status for r in rows}
        missing = len(ids) - len(statuses)
        open_ = [s for s in statuses.values() if s not in ("COMPLETED", "FAILED", "PARKED")]
        assert not missing and not open_, f"{missing} sagas not started, {len(open_)} open"
        return statuses

    return eventually(probe, timeout, interval=0.5)


def consumer_lag(cfg: StackConfig) -> dict[str, int]:
    admin = AdminClient(kafka_acls.admin(cfg).confluent({"log_level": 3}))
    probe = Consumer(kafka_acls.admin(cfg).confluent({"group.id": "walsaga-lag-probe", "log_level": 3}))
    from confluent_kafka import ConsumerGroupTopicPartitions

    lag: dict[str, int] = {}
    try:
        for group, group_topics in GROUPS.items():
            parts = [TopicPartition(t, p) for t in group_topics for p in range(topics.PARTITIONS)]
            committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, parts)])[group]
            offsets = {(tp.topic, tp.partition): tp.offset for tp in committed.result(timeout=10).topic_partitions}
            total = 0
            for tp in parts:
                _, high = probe.get_watermark_offsets(tp, timeout=10)
                committed_at = max(offsets.get((tp.topic, tp.partition), 0), 0)
                if high > committed_at:
                    total += _records_between(probe, tp, committed_at, high)
            lag[group] = total
    finally:
        probe.close()
    return lag


def _records_between(probe: Consumer, tp: TopicPartition, start: int, end: int) -> int:
    """Data records in [start, end). Offsets alone overcount: Kafka Connect's exactly-once transactions leave commit
    markers that take an offset but are never delivered, so a fully caught-up consumer sits one below the end."""
    probe.assign([TopicPartition(tp.topic, tp.partition, start)])
    count = 0
    for msg in probe.consume(num_messages=max(1, end - start), timeout=1.0):
        if msg.error() is None and msg.offset() < end:
            count += 1
    probe.unassign()
    return count


class Slots:
    """Every service's replication slot, read from its database."""

    def __init__(self, cfg: StackConfig) -> None:
        self.urls = {svc: db_url(cfg, svc, "admin", driver="postgresql") for svc in SERVICES}
        self.names = {svc: cdc_connectors.identity(svc)[1]["slot.name"] for svc in SERVICES}

    def states(self) -> dict[str, SlotState]:
        return {svc: slot_state(self.urls[svc], self.names[svc]) for svc in SERVICES}

    def lags(self) -> dict[str, int]:
        """Bytes of WAL each slot still holds back (0 when its confirmed LSN is at the end of the WAL)."""
        return {svc: s.lag_bytes if s.lag_bytes is not None else 1 << 40 for svc, s in self.states().items()}

    def wal_ends(self) -> dict[str, int]:
        return {svc: wal_end(url) for svc, url in self.urls.items()}


def drain(cfg: StackConfig, slots: Slots, timeout: float = 120.0) -> None:
    """Consumer lag 0 in every group; then every slot confirms all the WAL written until then ("slot lag ~ 0").
    The services are idle by then, so it is the connectors' heartbeat (an outbox row every heartbeat interval) that
    carries each slot past the WAL end seen here: a slot that only follows business events would fail."""
    deadline = time.monotonic() + timeout

    def consumers_caught_up() -> None:
        lag = consumer_lag(cfg)
        assert not any(lag.values()), f"consumer lag {lag}"

    eventually(consumers_caught_up, timeout, interval=1.0)
    targets = slots.wal_ends()

    def slots_caught_up() -> None:
        behind = {svc: targets[svc] - (s.confirmed_lsn if s.confirmed_lsn is not None else -(1 << 40))
                  for svc, s in slots.states().items()}
        assert all(b <= 0 for b in behind.values()), f"bytes of WAL not yet confirmed per slot: {behind}"

    eventually(slots_caught_up, max(deadline - time.monotonic(), 30.0), interval=1.0)


# --- invariants ---------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    statuses: Counter
    parked: int
    confirmed: int


def check_invariants(batch: Batch, engines: dict[str, Engine], saga_statuses: dict[str, str]) -> Outcome:
    ids = batch.order_ids
    assert len(ids) == len(batch.specs) == len(set(ids)), "an order was lost or doubled at the edge"
    by_key = {spec.key: spec for spec in batch.specs}
    spec_of = {batch.accepted[k]: by_key[k] for k in batch.accepted}
    q = {"ids": ids}
    with engines["orders"].connect() as c:
        orders = {r.order_id: r for r in c.execute(text(
            "SELECT order_id, status, cancel_reason FROM orders WHERE order_id = ANY(:ids)"), q)}
    with engines["payments"].connect() as c:
        payments = c.execute(text("SELECT order_id, status FROM payments WHERE order_id = ANY(:ids)"), q).all()
    with engines["inventory"].connect() as c:
        reservations = {r.order_id: r.status for r in c.execute(text(
            "SELECT order_id, status FROM reservations WHERE order_id = ANY(:ids)"), q)}
        stock = {r.sku: r for r in c.execute(text("SELECT * FROM stock WHERE sku = ANY(:skus)"),
                                             {"skus": list(batch.initial_stock)})}
    with engines["notifications"].connect() as c:
        notes = Counter((r.order_id, r.type) for r in c.execute(text(
            "SELECT order_id, type FROM notifications WHERE order_id = ANY(:ids)"), q))

    # I1: every accepted order exists and ended (or is parked with a reason)
    assert set(orders) == set(ids), "accepted orders missing from the orders database"
    parked = [oid for oid, s in saga_statuses.items() if s == "PARKED"]
    for oid, row in orders.items():
        if oid not in parked:
            assert row.status in ("CONFIRMED", "CANCELLED"), (oid, row.status)
    # I2: no double effect
    captures = Counter(p.order_id for p in payments if p.status == "CAPTURED")
    assert all(n <= 1 for n in captures.values()), captures
    assert Counter(p.order_id for p in payments).most_common(1)[0][1] <= 1 if payments else True
    for oid, row in orders.items():
        final_type = {"CONFIRMED": "OrderConfirmed", "CANCELLED": "OrderCancelled"}.get(row.status)
        if final_type and oid not in parked:
            assert notes[(oid, final_type)] == 1, (oid, final_type, notes[(oid, final_type)])
            assert sum(n for (o, _), n in notes.items() if o == oid) == 1, oid
    confirmed_units: Counter = Counter()
    for oid, row in orders.items():
        # I3: the services agree
        if row.status == "CONFIRMED":
            assert captures[oid] == 1, f"confirmed order {oid} has no captured payment"
            assert reservations.get(oid) == "COMMITTED" or oid in parked, (oid, reservations.get(oid))
            confirmed_units[spec_of[oid].sku] += spec_of[oid].quantity
        elif row.status == "CANCELLED":
            assert captures[oid] == 0, f"cancelled order {oid} was captured"
            assert reservations.get(oid) in (None, "RELEASED", "REJECTED"), (oid, reservations.get(oid))
    for sku, initial in batch.initial_stock.items():
        s = stock[sku]
        assert min(s.available, s.reserved, s.committed) >= 0, s
        assert s.available + s.reserved + s.committed == initial, (sku, s)
        if not parked:
            assert s.reserved == 0, (sku, s)
            assert s.committed == confirmed_units[sku], (sku, s.committed, confirmed_units[sku])
    statuses = Counter(orders[o].cancel_reason or orders[o].status for o in ids)
    return Outcome(statuses, len(parked), sum(1 for r in orders.values() if r.status == "CONFIRMED"))


def counters(engines: dict[str, Engine]) -> Counter:
    total: Counter = Counter()
    for engine in engines.values():
        with engine.connect() as c:
            for r in c.execute(text("SELECT consumer, counter, value FROM delivery_counter")):
                total[f"{r.consumer}:{r.counter}"] += r.value
    return total


def delta(after: Counter, before: Counter, suffix: str) -> int:
    return sum(v - before.get(k, 0) for k, v in after.items() if k.endswith(suffix))
