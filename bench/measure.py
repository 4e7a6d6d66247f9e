"""Latencies read from where they happen: database commit clocks and Kafka record timestamps."""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import Engine, text

from schemas import topics
from schemas.headers import as_pairs
from services.common.kafka_access import KafkaAccess
from walsaga.stack.config import REPO, StackConfig


def percentiles(values: Iterable[float], points: tuple[float, ...] = (50, 95, 99, 100)) -> dict[str, float]:
    data = sorted(values)
    if not data:
        return {f"p{int(p)}": float("nan") for p in points}
    out = {}
    for p in points:
        idx = min(len(data) - 1, max(0, int(round(p / 100 * len(data) + 0.5)) - 1))
        out[f"p{int(p)}" if p != 100 else "max"] = round(data[idx], 1)
    return out


def wait_until_ended(ended: Callable[[], int], total: int, timeout: float) -> int:
    """Polls `ended()` (how many of `total` have ended) until all have or the timeout passes; returns how many are
    still open."""
    deadline = time.monotonic() + timeout
    open_ = total
    while time.monotonic() < deadline:
        open_ = total - ended()
        if open_ == 0:
            return 0
        time.sleep(0.25)
    return open_


def wait_settled(saga: Engine, order_ids: list[str], timeout: float) -> int:
    """Waits (bounded) for the sagas to end; returns how many are still open at the deadline."""
    return wait_until_ended(lambda: ended_count(saga, order_ids), len(order_ids), timeout)


def ended_count(saga: Engine, order_ids: list[str]) -> int:
    """How many of these orders' sagas have ended (completed or failed)."""
    with saga.connect() as c:
        return c.execute(text("SELECT count(*) FROM saga_instance WHERE saga_id = ANY(:ids) "
                              "AND status IN ('COMPLETED','FAILED')"), {"ids": order_ids}).scalar_one()


def saga_latencies_ms(orders: Engine, saga: Engine, order_ids: list[str]) -> tuple[list[float], float]:
    """Per order: its saga's end (saga database clock) minus the order's commit-time stamp (orders database clock;
    both clusters run on this machine's clock). Also the completed sagas per second over the step."""
    return latencies_and_rate(order_created_at(orders, order_ids), saga_ends(saga, order_ids))


def saga_ends(saga: Engine, order_ids: list[str]) -> dict[str, datetime]:
    """When each of these orders' sagas ended (saga database clock); sagas still running are left out."""
    with saga.connect() as c:
        rows = c.execute(text("SELECT saga_id, updated_at FROM saga_instance WHERE saga_id = ANY(:ids) "
                              "AND status IN ('COMPLETED','FAILED')"), {"ids": order_ids}).all()
    return {r.saga_id: r.updated_at for r in rows}


def order_created_at(orders: Engine, order_ids: list[str]) -> dict[str, datetime]:
    """Each order row's commit-time stamp (orders database clock): where a saga's latency starts."""
    with orders.connect() as c:
        return dict(c.execute(text("SELECT order_id, created_at FROM orders WHERE order_id = ANY(:ids)"),
                              {"ids": order_ids}).all())


def latencies_and_rate(created: dict[str, datetime], ended: dict[str, datetime]) -> tuple[list[float], float]:
    """ms from start to end per id, and how many ended per second between the first start and the last end."""
    lat = [(ended[o] - created[o]).total_seconds() * 1000 for o in ended if o in created]
    if len(ended) < 2:
        return lat, 0.0
    span = (max(ended.values()) - min(created[o] for o in ended)).total_seconds()
    return lat, len(ended) / span if span > 0 else 0.0


def cdc_hop_ms(kafka: KafkaAccess, orders: Engine, order_ids: list[str]) -> list[float]:
    """Outbox row stamp (transaction clock in the orders database) to the Kafka record's timestamp (set by Kafka
    Connect's producer when Debezium handed it over), for each order's OrderCreated."""
    with orders.connect() as c:
        stamped = {str(r.id): r.created_at for r in c.execute(text(
            "SELECT id, created_at FROM outbox WHERE aggregateid = ANY(:ids) AND type = 'OrderCreated'"),
            {"ids": order_ids})}
    consumer = Consumer(kafka.confluent({"group.id": "walsaga-bench-hop", "log_level": 3, "enable.auto.commit": False}))
    hops: list[float] = []
    try:
        first_ms = int(min(stamped.values()).timestamp() * 1000) - 1000 if stamped else 0
        parts = [TopicPartition(topics.ORDERS_EVENTS, p, first_ms) for p in range(topics.PARTITIONS)]
        consumer.assign(consumer.offsets_for_times(parts, timeout=10))
        deadline = time.monotonic() + 30
        while stamped and len(hops) < len(stamped) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error():
                    continue
                headers = {k: v.decode() for k, v in as_pairs(msg.headers())}
                at = stamped.get(headers.get("id", ""))
                if at is not None:
                    hops.append(msg.timestamp()[1] - at.timestamp() * 1000)
    finally:
        consumer.close()
    return hops


def stack_rss_mib(cfg: StackConfig) -> float:
    """The whole stack's resident memory: its home (Postgres, nginx), its jars (broker, Connect), its Python code."""
    return round(stack_rss_bytes([str(cfg.home), str(REPO / ".stack" / "lib"), "services.", "stream_processors."])
                 / 2**20, 1)


def stack_rss_bytes(markers: Iterable[str]) -> int:
    """Resident memory of every process whose command line names the stack (its home, its jars, its code)."""
    total = 0
    for proc in _processes_naming(markers):
        try:
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def cpu_seconds(marker: str) -> float:
    """CPU time (user + system) used so far by every process whose command line contains `marker`."""
    total = 0
    for proc in _processes_naming([marker]):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _processes_naming(markers: Iterable[str]) -> Iterator[Path]:
    """/proc/<pid> of every process whose command line contains one of the (non-empty) markers."""
    marks = [m for m in markers if m]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if any(m in cmdline for m in marks):
            yield proc


