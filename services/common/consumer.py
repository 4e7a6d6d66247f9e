"""The command consumer every service runs: Kafka records -> local transactions (inbox + effect + reply per record).

Whatever has already arrived is applied together: one transaction for the batch (up to `batch` records), each
record's inbox row, effect and reply inside it, in record order; with nothing queued behind a record it goes alone,
so batching never waits. Offsets are stored only after the transaction commits, so a crash in between redelivers
the records and the inbox turns each redelivery into a no-op. A record that fails for a reason other than an
unreachable database rolls its batch back, and the batch is applied again one record per transaction, so the
culprit alone takes the poison path. Three kinds of failure take three paths:
  transient (database unreachable)  -> back off (exponential, jittered) and retry the same record, without moving on;
  business (e.g. out of stock)      -> the handler itself writes a failure reply; that is a normal commit;
  poison (bad headers, undecodable, no handler, a handler that keeps raising) -> copied to the dead-letter topic with
                                       the reason, then the consumer moves on. Nothing is dropped silently.
"""
from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaException, Message, Producer
from psycopg.errors import ReadOnlySqlTransaction
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import DBAPIError, OperationalError

from schemas import codec
from schemas.headers import Envelope, for_confluent
from schemas.topics import DEAD_LETTERS
from services.common import inbox
from services.common.counters import counter_add, counters_add
from services.common.dead_letters import dead_letter_headers
from services.common.faults import crash_point
from services.common.polling import poll_ready
from services.common.retention import Pruner

log = logging.getLogger(__name__)

MAX_HANDLER_ATTEMPTS = 5
CLOSE_WAIT_S = 10.0         # how long a consumer's close may take before we go on without it
BATCH = 100                 # records per transaction at most
POLL_WAIT_S = 0.2           # longest wait for a record (then the pruner's turn, a stop request)
APPLIED_FLUSH_S = 1.0       # "applied:<type>" counters are written at most this often (with a batch's transaction)


class BatchFailed(Exception):
    """A record of the batch failed for a reason other than the database being away: apply one by one instead."""


class Handler(Protocol):
    """Applies one command in the caller's transaction; returns the type of the reply or event it wrote, if any."""

    def __call__(self, conn: Connection, env: Envelope, record: dict[str, Any]) -> str | None: ...


@dataclass
class CommandConsumer:
    name: str
    topic: str
    engine: Engine
    inbox: Table
    counters: Table
    handlers: dict[str, Handler]
    kafka_config: dict[str, Any]
    batch: int = BATCH
    pruner: Pruner | None = None  # deletes the database's rows past retention between batches
    # other services' events this service keeps a copy of (e.g. orders: inventory's prices); same inbox, same
    # transaction per batch, their handlers write no reply
    event_topics: tuple[str, ...] = ()
    _running: bool = True
    _unflushed_retries: int = 0
    _lost: bool = False
    _producer: Producer | None = field(default=None, repr=False)
    # per-record counters are informational (the inbox is the record of what was applied): they are added up here
    # and written with a later transaction, at most every APPLIED_FLUSH_S, instead of one upsert per record
    _applied: Counter[str] = field(default_factory=Counter, repr=False)
    _applied_flushed_at: float = 0.0

    def run(self) -> None:
        self._producer = Producer({**self.kafka_config, "enable.idempotence": True, "linger.ms": 1})
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        consumer = self._subscribe()
        try:
            while self._running:
                if self._lost:
                    # seen once after a broker restart: the group session timed out, the assignment was lost, and
                    # the consumer never got partitions again; a fresh consumer rejoins from the committed offsets
                    # (what was applied but not committed is redelivered and dropped by the inbox)
                    self._lost = False
                    close_bounded(consumer, self.name)
                    consumer = self._subscribe()
                if self.pruner:
                    self.pruner.run_if_due()
                msgs = poll_ready(consumer, POLL_WAIT_S, self.batch, self.name)
                if not msgs:
                    continue
                for msg in self.process_batch(msgs):
                    consumer.store_offsets(msg)
        finally:
            self._flush_applied()
            close_bounded(consumer, self.name)  # commits the stored offsets
            self._producer.flush(10)

    def process_batch(self, msgs: list[Message]) -> list[Message]:
        """Applies the records; returns those done with (applied, duplicates, dead-lettered), a prefix of `msgs`:
        shorter only on shutdown."""
        if len(msgs) == 1:
            return msgs if self._process_one(msgs[0]) else []
        decoded = [(msg, self._decode(msg)) for msg in msgs]
        ready = [(msg, d) for msg, d in decoded if not isinstance(d, str)]
        try:
            if ready and not self._with_transient_retry(lambda: self._apply_all(ready)):
                return []
        except (OperationalError, DBAPIError) as exc:  # a statement failed (e.g. a constraint): find which record
            if is_transient(exc):
                return []  # shutting down while the database is away: nothing acknowledged
            log.warning("consumer %s: batch of %d failed (%s); applying its records one by one", self.name,
                        len(msgs), exc)
            return self._one_by_one(msgs)
        except BatchFailed as exc:
            log.warning("consumer %s: batch of %d failed (%s); applying its records one by one", self.name,
                        len(msgs), exc)
            return self._one_by_one(msgs)
        crash_point(f"{self.name}-consumer:after-commit")
        for msg, d in decoded:
            if isinstance(d, str) and not self._dead_letter(msg, d):
                return []
        return msgs

    def _one_by_one(self, msgs: list[Message]) -> list[Message]:
        done = []
        for msg in msgs:
            if not self._process_one(msg):
                break
            done.append(msg)
        return done

    def _process_one(self, msg: Message) -> bool:
        if self.process(msg):
            crash_point(f"{self.name}-consumer:after-commit")
            return True
        return False

    def _decode(self, msg: Message) -> tuple[Handler, Envelope, dict[str, Any]] | str:
        """The record's handler, envelope and body, or why it is poison."""
        try:
            env = Envelope.from_headers(msg.headers())
            record = codec.decode(env.event_type, env.schema_version, msg.value())
        except (ValueError, codec.UnknownSchema) as exc:
            return f"undecodable: {exc}"
        handler = self.handlers.get(env.event_type)
        if handler is None:
            return f"no handler for {env.event_type} in {self.name}"
        return handler, env, record

    def _apply_all(self, ready: list[tuple[Message, tuple[Handler, Envelope, dict[str, Any]]]]) -> bool:
        """One transaction: per record its inbox claim and, when new, its handler. Raises BatchFailed when a handler
        fails for a reason other than the database (the transaction is rolled back)."""
        applied: Counter[str] = Counter()
        rare: Counter[str] = Counter({"transient_retries": self._unflushed_retries})
        due = time.monotonic() - self._applied_flushed_at >= APPLIED_FLUSH_S
        with self.engine.begin() as conn:
            for _, (handler, env, record) in ready:
                try:
                    if self._claim(conn, env):
                        handler(conn, env, record)
                        applied[f"applied:{env.event_type}"] += 1
                    else:
                        rare["duplicates"] += 1
                except (OperationalError, DBAPIError):
                    raise
                except Exception as exc:  # which record is poison is found one by one
                    raise BatchFailed(f"{type(exc).__name__}: {exc}") from exc
            # rare counters always in the effect's transaction (the fault suite reads them); the per-record ones
            # when due, so they cost one upsert a second instead of one per record
            counts = rare + (self._applied + applied if due else Counter())
            if counts:
                counters_add(conn, self.counters, self.name, counts)
        # committed
        self._unflushed_retries = 0
        if due:
            self._applied.clear()
            self._applied_flushed_at = time.monotonic()
        else:
            self._applied.update(applied)
        return True

    def _claim(self, conn: Connection, env: Envelope) -> bool:
        if inbox.claim(conn, self.inbox, consumer=self.name, message_id=env.event_id, message_type=env.event_type):
            return True
        log.info("consumer %s: duplicate %s %s dropped", self.name, env.event_type, env.event_id)
        return False

    def _flush_applied(self) -> None:
        if not self._applied:
            return
        try:
            with self.engine.begin() as conn:
                counters_add(conn, self.counters, self.name, self._applied)
            self._applied.clear()
        except (OperationalError, DBAPIError) as exc:
            log.warning("consumer %s: applied counters not written at shutdown (%s)", self.name, exc)

    def _subscribe(self) -> Consumer:
        consumer = Consumer({
            **self.kafka_config,
            "group.id": f"walsaga-{self.name}",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 500,
            # offsets are stored by hand after the database commit, never before
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
        })
        consumer.subscribe([self.topic, *self.event_topics], on_lost=self._on_lost)
        log.info("consumer %s subscribed to %s", self.name, ", ".join([self.topic, *self.event_topics]))
        return consumer

    def _on_lost(self, _consumer: Consumer, partitions: list[Any]) -> None:
        log.warning("consumer %s: assignment lost (%d partitions; group session timed out); starting over",
                    self.name, len(partitions))
        self._lost = True

    def stop(self) -> None:
        self._running = False

    def process(self, msg: Message) -> bool:
        """One record in a transaction of its own. True when the record is done with (applied, a duplicate, or
        dead-lettered); False only on shutdown."""
        decoded = self._decode(msg)
        if isinstance(decoded, str):
            return self._dead_letter(msg, decoded)
        event_type = decoded[1].event_type
        for attempt in range(1, MAX_HANDLER_ATTEMPTS + 1):
            try:
                return self._with_transient_retry(lambda: self._apply_all([(msg, decoded)]))
            except (OperationalError, DBAPIError) as exc:
                if is_transient(exc):
                    return False  # shutting down while the database is away: the record stays unacknowledged
                error: Exception = exc
            except BatchFailed as exc:  # a non-transient failure: retried a few times, then poison
                error = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
            log.error("consumer %s: %s failed (attempt %d): %s", self.name, event_type, attempt, error)
            time.sleep(0.05 * 2 ** attempt)
        return self._dead_letter(msg, f"handler failed {MAX_HANDLER_ATTEMPTS}x: {type(error).__name__}: {error}")

    def _with_transient_retry(self, action: Callable[[], bool]) -> bool:
        delay = 0.1
        while True:
            try:
                return action()
            except (OperationalError, DBAPIError) as exc:
                if not is_transient(exc) or not self._running:
                    raise
                self._unflushed_retries += 1
                log.warning("consumer %s: database unavailable (%s); retrying in ~%.1fs", self.name,
                            type(exc.orig).__name__ if exc.orig else exc, delay)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)

    def _dead_letter(self, msg: Message, reason: str) -> bool:
        log.error("consumer %s: dead-lettering %s[%d]@%d: %s", self.name, msg.topic(), msg.partition(),
                  msg.offset(), reason)
        assert self._producer is not None
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic is None or partition is None or offset is None:
            raise ValueError(f"consumer {self.name}: a polled record without topic, partition or offset")
        self._producer.produce(DEAD_LETTERS, key=msg.key(), value=msg.value(), headers=for_confluent(
            dead_letter_headers(msg.headers(), reason=reason, consumer=self.name, topic=topic, partition=partition,
                                offset=offset)))
        # the copy must be on the broker before the offset moves past the original
        while self._producer.flush(5) > 0:
            if not self._running:
                return False
            log.warning("consumer %s: dead-letter topic unavailable; retrying", self.name)
        self._with_transient_retry(lambda: self._count("dead_letters"))
        return True

    def _count(self, counter: str) -> bool:
        with self.engine.begin() as conn:
            counter_add(conn, self.counters, self.name, counter)
        return True


def close_bounded(consumer: Consumer, name: str, wait_s: float = CLOSE_WAIT_S) -> bool:
    """Closes the consumer (leaves the group, commits the stored offsets) on a thread of its own and waits at most
    `wait_s`; True when it closed in time. After a broker restart a close has been seen to hang for minutes on a
    request queued to the old group coordinator (librdkafka REQTMOUT), which stopped the service's consumption:
    the caller goes on (a fresh consumer rejoins from the committed offsets; what was applied but not committed is
    redelivered and dropped by the inbox) and the stuck close finishes, or not, on its daemon thread."""
    def close() -> None:
        try:
            consumer.close()
        except (KafkaException, RuntimeError) as exc:  # offsets it no longer owns cannot be committed: redelivered
            log.warning("consumer %s: close: %s", name, exc)

    closer = threading.Thread(target=close, name=f"{name}-consumer-close", daemon=True)
    closer.start()
    closer.join(wait_s)
    if closer.is_alive():
        log.warning("consumer %s: close still waiting after %.0fs; going on without it", name, wait_s)
        return False
    return True


def is_transient(exc: DBAPIError) -> bool:
    """The database is away (or, in the HA profile, briefly the wrong member): retry, do not dead-letter. The Faust
    apps' retry_transient asks the same question."""
    return bool(exc.connection_invalidated) or isinstance(exc, OperationalError) or reached_a_standby(exc)


def reached_a_standby(exc: DBAPIError) -> bool:
    """A read-only transaction: in the HA profile, a connection made while a failover or switchover moves the primary
    can reach the member that is (or is becoming) the standby, until the database proxy has moved on (about a
    second; it then cuts that member's sessions). Transient, like an unreachable database."""
    return isinstance(exc.orig, ReadOnlySqlTransaction)
