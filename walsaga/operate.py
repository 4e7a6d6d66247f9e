"""Operator commands: inspect sagas, re-drive or skip a parked one, list and replay dead letters."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition
from sqlalchemy import create_engine

from schemas.commands import to_record
from schemas.headers import as_pairs, for_confluent
from schemas.topics import DEAD_LETTERS
from services.common import dead_letters
from stream_processors.saga import catalog, store
from stream_processors.saga.model import RetryPolicy, SagaStatus
from stream_processors.saga.orchestrator import Dispatch, Orchestrator
from walsaga.stack import kafka_acls
from walsaga.stack.config import StackConfig, db_url


def _orchestrator(cfg: StackConfig) -> Orchestrator:
    return Orchestrator(create_engine(db_url(cfg, "saga"), pool_size=1), RetryPolicy(step_timeout=cfg.step_timeout))


def list_sagas(cfg: StackConfig, status: SagaStatus) -> list[str]:
    with _orchestrator(cfg).engine.connect() as conn:
        rows = store.by_status(conn, status)
    return [f"{r.saga_id}  {r.status:<12} step {r.step} attempt {r.attempt}  "
            f"{r.parked_reason or r.failure_reason or ''}  (updated {r.updated_at:%Y-%m-%d %H:%M:%S})" for r in rows]


def versions_in_use(cfg: StackConfig) -> list[str]:
    """One line per definition version that instances not over run, with their count per status, and whether
    this build's catalog still has it."""
    orchestrator = _orchestrator(cfg)
    with orchestrator.engine.connect() as conn:
        in_use = store.versions_in_use(conn)
    by_version: dict[tuple[str, int], list[str]] = {}
    for name, version, status, count in in_use:
        by_version.setdefault((name, version), []).append(f"{count} {status}")
    newest = {name: d.version for name, d in catalog.newest(orchestrator.catalog).items()}
    lines = [f"{name} v{version}  {', '.join(counts)}  "
             + ("newest" if newest.get(name) == version else
                "in the catalog" if (name, version) in orchestrator.definitions else "NOT IN THE CATALOG")
             for (name, version), counts in sorted(by_version.items())]
    return lines or ["no saga instance in flight or parked"]


def show_saga(cfg: StackConfig, saga_id: str) -> list[str]:
    with _orchestrator(cfg).engine.connect() as conn:
        state = store.load(conn, saga_id)
        if state is None:
            raise LookupError(f"no saga {saga_id}")
        lines = [f"saga {saga_id} ({state.definition} v{state.definition_version}): {state.status} step "
                 f"{state.step} attempt {state.attempt}"
                 + (f" parked: {state.parked_reason} (from {state.parked_from})" if state.parked_reason else "")
                 + (f" failure: {state.failure_reason}" if state.failure_reason else "")]
        lines += [f"  {h.at:%H:%M:%S.%f}  {h.message_type:<24} {h.status:<12} {h.note}"
                  for h in store.history_of(conn, saga_id)]
    return lines


def act_on_saga(cfg: StackConfig, saga_id: str, action: str) -> Dispatch:
    """Commits the operator's decision, then produces its commands (deterministic ids: a repeat is harmless)."""
    dispatch = _orchestrator(cfg).operate(saga_id, action)
    producer = Producer(kafka_acls.admin(cfg).producer({"enable.idempotence": True}))
    for cmd in dispatch.commands:
        rec = to_record(cmd, dispatch.saga_id, dispatch.correlation_id, dispatch.causation_id)
        producer.produce(rec.topic, key=rec.key, value=rec.value, headers=for_confluent(rec.headers))
    if producer.flush(15) > 0:
        raise RuntimeError("commands not delivered to Kafka; the deadline sweep will re-send them")
    return dispatch


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    headers: dict[str, str]
    key: bytes | None
    value: bytes | None
    raw_headers: list[tuple[str, bytes]]

    def describe(self) -> str:
        h = self.headers
        return (f"{self.partition}:{self.offset}  from {h.get(dead_letters.ORIGIN_TOPIC)}"
                f"[{h.get(dead_letters.ORIGIN_PARTITION)}]@{h.get(dead_letters.ORIGIN_OFFSET)} "
                f"by {h.get(dead_letters.CONSUMER)}  type={h.get('eventType', '?')}  "
                f"reason: {h.get(dead_letters.REASON)}")


def read_dead_letters(cfg: StackConfig, limit: int = 1000) -> list[DeadLetter]:
    consumer = Consumer(kafka_acls.admin(cfg).confluent({"group.id": f"walsaga-dlq-{uuid.uuid4()}",
                                                         "enable.auto.commit": False, "log_level": 3}))
    try:
        md = consumer.list_topics(DEAD_LETTERS, timeout=10)
        ends: dict[int, int] = {}
        assignment = []
        for p in md.topics[DEAD_LETTERS].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(DEAD_LETTERS, p), timeout=10)
            if high > low:
                ends[p] = high
                assignment.append(TopicPartition(DEAD_LETTERS, p, low))
        consumer.assign(assignment)
        found: list[DeadLetter] = []
        while ends and len(found) < limit:
            batch = consumer.consume(500, timeout=2)
            if not batch:
                break
            for msg in batch:
                partition, offset = msg.partition(), msg.offset()
                if msg.error() or partition is None or offset is None:
                    continue
                raw = as_pairs(msg.headers())
                found.append(DeadLetter(partition, offset, {k: v.decode(errors="replace") for k, v in raw},
                                        msg.key(), msg.value(), raw))
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
        return sorted(found, key=lambda d: (d.partition, d.offset))[:limit]
    finally:
        consumer.close()


def replay_dead_letter(cfg: StackConfig, letter: DeadLetter) -> str:
    """Puts the record back on its origin topic as it was; the consumers' inboxes make a replay harmless."""
    topic = letter.headers[dead_letters.ORIGIN_TOPIC]
    producer = Producer(kafka_acls.admin(cfg).producer({"enable.idempotence": True}))
    producer.produce(topic, key=letter.key, value=letter.value,
                     headers=for_confluent(dead_letters.original_headers(letter.raw_headers)))
    if producer.flush(15) > 0:
        raise RuntimeError(f"replay to {topic} not delivered")
    return topic
