"""Baseline (a), the naive dual write, against walsaga's outbox, same writer shape, same database, same broker.

A writer process places orders in a closed loop on one connection and is killed with SIGKILL mid-run:
  dual    commit the order row, then produce its event to Kafka from the process (no outbox): whatever was still in
          the producer's buffer - or not yet handed to it - when the process died is lost, although its row committed;
  outbox  walsaga's path, the orders service's own place_order(): the order row and its event row commit together
          and Debezium ships the event from the WAL, so every committed order has its event.
The two do not do the same database work (place_order also takes the idempotency key's lock, checks for a replay and
stores the answer: about seven statements against one), so their rates are not the outbox's cost; the loss is the
point of the comparison.
The harness then counts committed orders and their events on Kafka."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import Engine, create_engine, text

from schemas import topics
from services.common.kafka_access import KafkaAccess
from services.orders import db as orders_db
from services.orders import handlers
from services.orders.domain import CatalogPrice
from walsaga.stack.config import REPO

DUAL_TOPIC = "walsaga.bench.dual-write"
DUAL_TABLE = "bench_dual_write_orders"
WRITER_DB_URL = "WALSAGA_BENCH_WRITER_DB_URL"  # the writer process's database (a password in it)


@dataclass
class WriterReport:
    mode: str
    seconds: float
    committed: int
    events: int
    lost: int
    per_s: float


def _customer(mode: str, run_id: str) -> str:
    return f"dual-{mode}-{run_id}"


def write_forever(mode: str, db_url: str, kafka: KafkaAccess, run_id: str) -> None:
    """The writer process: runs until killed."""
    engine = create_engine(db_url, pool_size=1)
    customer = _customer(mode, run_id)
    producer = Producer(kafka.producer({"linger.ms": 5, "enable.idempotence": True}))
    with engine.connect():
        pass
    print("ready", flush=True)  # the harness times the run from here, not from the interpreter's start-up
    if mode == "outbox":
        # the SKU's price straight into the orders service's copy: this writer measures the order transaction alone,
        # not inventory's price path (tests/integration/test_prices.py covers that)
        with engine.begin() as conn:
            orders_db.store_price(conn, f"dual-{run_id}", CatalogPrice(Decimal("9.99"), "USD", 1))
        body = {"customer_id": customer, "currency": "USD", "payment_method": "pm_card_visa",
                "items": [{"sku": f"dual-{run_id}", "quantity": 1, "unit_price": Decimal("9.99")}]}
        while True:
            handlers.place_order(engine, client_id="bench-dual-write", idempotency_key=str(uuid.uuid4()), body=body)
    while True:
        order_id = str(uuid.uuid4())
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO {DUAL_TABLE} (order_id, customer_id) VALUES (:o, :c)"),
                         {"o": order_id, "c": customer})
        # the naive part: the event leaves after the commit, from this process's memory
        producer.produce(DUAL_TOPIC, key=order_id.encode(), value=json.dumps({"order_id": order_id}).encode())
        producer.poll(0)


def prepare(orders_owner_url: str, kafka: KafkaAccess) -> None:
    """The naive writer's table, made by the orders database's owner (the runtime role may not create tables; it gets
    its privileges on the new table from the owner's default privileges)."""
    owner = create_engine(orders_owner_url, pool_size=1)
    with owner.begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {DUAL_TABLE} (order_id text PRIMARY KEY, customer_id text "
                          "NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"))
    owner.dispose()
    admin = AdminClient(kafka.confluent())
    if DUAL_TOPIC not in admin.list_topics(timeout=10).topics:
        admin.create_topics([NewTopic(DUAL_TOPIC, topics.PARTITIONS, 1)])[DUAL_TOPIC].result(30)


def run_writer(mode: str, db_url: str, orders: Engine, kafka: KafkaAccess, seconds: float, say: Any) -> WriterReport:
    run_id = uuid.uuid4().hex[:6]
    started = time.time()
    # the database URL holds a password: the environment, not the command line, which any local user can read
    proc = subprocess.Popen([sys.executable, "-m", "bench.dual_write", "writer", mode, run_id], cwd=REPO,
                            env={**os.environ, **kafka.env(), WRITER_DB_URL: db_url, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":  # blocks until the writer is set up (or has died)
        proc.kill()
        raise RuntimeError(f"the {mode} writer did not start (exit {proc.wait()})")
    time.sleep(seconds)
    if proc.poll() is not None:
        raise RuntimeError(f"the {mode} writer died by itself (exit {proc.returncode}) before it was to be killed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    table = DUAL_TABLE if mode == "dual" else "orders"
    with orders.connect() as conn:
        rows = conn.execute(text(f"SELECT order_id, created_at FROM {table} WHERE customer_id = :c"),
                            {"c": _customer(mode, run_id)}).all()
    ids = {r.order_id for r in rows}
    # the rate over the writing itself (commit stamps), not the process start-up
    span = (max(r.created_at for r in rows) - min(r.created_at for r in rows)).total_seconds() if rows else 0.0
    topic = DUAL_TOPIC if mode == "dual" else topics.ORDERS_EVENTS
    events = _keys_on(kafka, topic, ids, since=started, patience=30.0 if mode == "outbox" else 5.0)
    report = WriterReport(mode, seconds, len(ids), events, len(ids) - events,
                          round(len(ids) / span, 1) if span > 0 else 0.0)
    say(f"  {mode}: {report.committed} orders committed ({report.per_s}/s), {report.events} events on Kafka, "
        f"{report.lost} lost after kill -9")
    return report


def _keys_on(kafka: KafkaAccess, topic: str, wanted: set[str], since: float, patience: float) -> int:
    """How many of `wanted` have a record on `topic` (by key); waits up to `patience` s for stragglers (the CDC)."""
    consumer = Consumer(kafka.confluent({"group.id": f"walsaga-bench-{uuid.uuid4().hex[:6]}",
                                         "enable.auto.commit": False, "log_level": 3}))
    seen: set[str] = set()
    try:
        parts = [TopicPartition(topic, p, int(since * 1000) - 1000) for p in range(topics.PARTITIONS)]
        consumer.assign(consumer.offsets_for_times(parts, timeout=10))
        deadline = time.monotonic() + patience
        while len(seen) < len(wanted) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.5):
                raw_key = msg.key()
                if not msg.error() and raw_key is not None:
                    key = raw_key.decode(errors="replace").strip('"')
                    if key in wanted:
                        seen.add(key)
    finally:
        consumer.close()
    return len(seen)


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.dual_write")
    parser.add_argument("role", choices=["writer"])
    parser.add_argument("mode", choices=["dual", "outbox"])
    parser.add_argument("run_id")
    args = parser.parse_args()
    write_forever(args.mode, os.environ[WRITER_DB_URL], KafkaAccess.from_env(), args.run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
