"""The command consumer every service runs: one Kafka record -> one local transaction (inbox + effect + reply).

Offsets are stored only after the transaction commits, so a crash in between redelivers the record and the inbox
turns the redelivery into a no-op. Three kinds of failure take three paths:
  transient (database unreachable)  -> back off (exponential, jittered) and retry the same record, without moving on;
  business (e.g. out of stock)      -> the handler itself writes a failure reply; that is a normal commit;
  poison (bad headers, undecodable, no handler, a handler that keeps raising) -> copied to the dead-letter topic with
                                       the reason, then the consumer moves on. Nothing is dropped silently.
"""
from __future__ import annotations

import logging
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import DBAPIError, OperationalError

from schemas import codec
from schemas.headers import Envelope
from schemas.topics import DEAD_LETTERS
from services.common import inbox
from services.common.counters import counter_add
from services.common.dead_letters import dead_letter_headers
from services.common.faults import crash_point

log = logging.getLogger(__name__)

MAX_HANDLER_ATTEMPTS = 5


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
    _running: bool = True
    _unflushed_retries: int = 0
    _lost: bool = False
    _producer: Producer | None = field(default=None, repr=False)

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
                    _close_quietly(consumer, self.name)
                    consumer = self._subscribe()
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer %s: kafka error %s", self.name, msg.error())
                    continue
                if self.process(msg):
                    crash_point(f"{self.name}-consumer:after-commit")
                    consumer.store_offsets(msg)
        finally:
            _close_quietly(consumer, self.name)  # commits the stored offsets
            self._producer.flush(10)

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
        consumer.subscribe([self.topic], on_lost=self._on_lost)
        log.info("consumer %s subscribed to %s", self.name, self.topic)
        return consumer

    def _on_lost(self, _consumer: Consumer, partitions: list[Any]) -> None:
        log.warning("consumer %s: assignment lost (%d partitions; group session timed out); starting over",
                    self.name, len(partitions))
        self._lost = True

    def stop(self) -> None:
        self._running = False

    def process(self, msg: Message) -> bool:
        """True when the record is done with (applied, a duplicate, or dead-lettered); False only on shutdown."""
        try:
            env = Envelope.from_headers(msg.headers())
            record = codec.decode(env.event_type, env.schema_version, msg.value())
        except (ValueError, codec.UnknownSchema) as exc:
            return self._dead_letter(msg, f"undecodable: {exc}")
        handler = self.handlers.get(env.event_type)
        if handler is None:
            return self._dead_letter(msg, f"no handler for {env.event_type} in {self.name}")
        for attempt in range(1, MAX_HANDLER_ATTEMPTS + 1):
            try:
                return self._with_transient_retry(lambda: self._apply(handler, env, record))
            except (OperationalError, DBAPIError) as exc:
                if _is_transient(exc):
                    return False  # shutting down while the database is away: the record stays unacknowledged
                error: Exception = exc
            except Exception as exc:  # noqa: BLE001 - a non-transient failure: retried a few times, then poison
                error = exc
            log.error("consumer %s: %s failed (attempt %d): %s", self.name, env.event_type, attempt, error)
            time.sleep(0.05 * 2 ** attempt)
        return self._dead_letter(msg, f"handler failed {MAX_HANDLER_ATTEMPTS}x: {type(error).__name__}: {error}")

    def _apply(self, handler: Handler, env: Envelope, record: dict[str, Any]) -> bool:
        with self.engine.begin() as conn:
            if self._unflushed_retries:
                counter_add(conn, self.counters, self.name, "transient_retries", self._unflushed_retries)
            if not inbox.claim(conn, self.inbox, consumer=self.name, message_id=env.event_id,
                               message_type=env.event_type):
                counter_add(conn, self.counters, self.name, "duplicates")
                log.info("consumer %s: duplicate %s %s dropped", self.name, env.event_type, env.event_id)
            else:
                handler(conn, env, record)
                counter_add(conn, self.counters, self.name, f"applied:{env.event_type}")
        self._unflushed_retries = 0
        return True

    def _with_transient_retry(self, action: Callable[[], bool]) -> bool:
        delay = 0.1
        while True:
            try:
                return action()
            except (OperationalError, DBAPIError) as exc:
                if not _is_transient(exc) or not self._running:
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
        self._producer.produce(DEAD_LETTERS, key=msg.key(), value=msg.value(), headers=dead_letter_headers(
            msg.headers(), reason=reason, consumer=self.name, topic=msg.topic(), partition=msg.partition(),
            offset=msg.offset()))
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


def _close_quietly(consumer: Consumer, name: str) -> None:
    try:
        consumer.close()
    except KafkaException as exc:  # offsets of partitions it no longer owns cannot be committed: redelivered later
        log.warning("consumer %s: close: %s", name, exc)


def _is_transient(exc: DBAPIError) -> bool:
    return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)
