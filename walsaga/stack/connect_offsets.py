"""HA profile: where each Debezium connector stood when `walsaga down` stopped Kafka Connect, for the promote gate.

A clean stop deletes each Patroni pair's leader key, so `walsaga up --ha` promotes a member of every pair again, and
the promote gate (walsaga/stack/promote_gate.py) must know the connector's committed offset first. Connect starts
after the databases, so the gate cannot ask it then. But with every Connect worker stopped the offsets cannot move:
`down` reads them from Connect's offsets topic once the workers are gone (Kafka still runs) and leaves one file per
participant database beside the clusters, in the shape of Connect's `GET /connectors/<name>/offsets`. The gate reads
it only when no Connect worker answers, and every Connect worker's start deletes the files first, so a file never
outlives the stop it describes."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from cdc import connectors as cdc_connectors
from walsaga.stack import kafka_acls
from walsaga.stack.config import SERVICES, StackConfig
from walsaga.stack.postgres import chown_to_postgres, pg_root

TOPIC = "walsaga-connect-offsets"  # offset.storage.topic (stack/templates/connect-distributed.properties)


def stopped_file(cfg: StackConfig, db: str) -> Path:
    return pg_root(cfg) / f".{db}.connect-offsets-at-stop.json"


def latest(records: list[tuple[bytes | None, bytes | None]]) -> dict[str, dict[str, Any]]:
    """Each connector's last offset in the topic's records (key, value), in order; a tombstone clears it. Keys are
    Connect's JSON ["<connector>", {source partition}]."""
    found: dict[str, dict[str, Any]] = {}
    for key, value in records:
        if key is None:
            continue
        name, partition = json.loads(key)
        if value is None:
            found.pop(name, None)
        else:
            found[name] = {"partition": partition, "offset": json.loads(value)}
    return found


def _read_topic(cfg: StackConfig, timeout_s: float = 30.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of the offsets topic up to its end now, within `timeout_s` in all."""
    deadline = time.monotonic() + timeout_s
    consumer = Consumer(kafka_acls.admin(cfg).confluent({
        "group.id": "walsaga-offsets-reader", "enable.auto.commit": False, "log_level": 3}))
    try:
        partitions = consumer.list_topics(TOPIC, timeout=timeout_s).topics[TOPIC].partitions
        marks = {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=timeout_s) for p in partitions}
        ends = {p: high for p, (low, high) in marks.items() if high > low}  # an empty partition has nothing to read
        consumer.assign([TopicPartition(TOPIC, p, low) for p, (low, high) in marks.items() if p in ends])
        records: list[tuple[bytes | None, bytes | None]] = []
        while ends:
            left = deadline - time.monotonic()
            msg = consumer.poll(max(left, 0.0)) if left > 0 else None
            if msg is None:
                raise TimeoutError(f"{TOPIC} not read to its end within {timeout_s:.0f}s")
            offset, partition = msg.offset(), msg.partition()
            if msg.error() or offset is None or partition is None:
                continue
            records.append((msg.key(), msg.value()))
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
        return records
    finally:
        consumer.close()


def record_stopped(cfg: StackConfig) -> None:
    """After every Connect worker stopped, while Kafka runs: each participant's connector offsets, for the gate."""
    offsets = latest(_read_topic(cfg))
    for db in SERVICES:
        entry = offsets.get(cdc_connectors.name_of(db))
        path = stopped_file(cfg, db)
        tmp = path.with_name(f"{path.name}.tmp")
        tmp.write_text(json.dumps({"offsets": [entry] if entry else []}))
        chown_to_postgres(tmp)
        tmp.replace(path)


def clear_stopped(cfg: StackConfig) -> None:
    """Before a Connect worker starts: from then on the offsets move, and only Connect may tell them."""
    for db in SERVICES:
        stopped_file(cfg, db).unlink(missing_ok=True)
