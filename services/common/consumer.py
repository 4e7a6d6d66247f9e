"""The command consumer every service runs: one Kafka record -> one local transaction (inbox + effect + reply).

Offsets are stored only after the transaction commits, so a crash in between redelivers the record and the inbox
turns the redelivery into a no-op. Three kinds of failure take three paths:
  transient (database unreachable)  -> back off and retry the same record, forever, without moving on;
  business (e.g. out of stock)      -> the handler itself writes a failure reply; that is a normal commit;
  poison (bad headers, undecodable, no handler, a handler that keeps raising) -> a dead_letter row with the reason,
                                       committed, then the consumer moves on. Nothing is dropped silently.
"""
from __future__ import annotations

import json
import logging
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from confluent_kafka import Consumer, KafkaError, Message
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import DBAPIError, OperationalError

from schemas import codec
from schemas.headers import Envelope
from services.common import inbox

log = logging.getLogger(__name__)

MAX_HANDLER_ATTEMPTS = 5


class Handler(Protocol):
    def __call__(self, conn: Connection, env: Envelope, record: dict[str, Any]) -> None: ...


@dataclass
class Counters:
    processed: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    transient_retries: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


@dataclass
class CommandConsumer:
    name: str
    topic: str
    engine: Engine
    inbox: Table
    dead_letters: Table
    handlers: dict[str, Handler]
    kafka_config: dict[str, Any]
    counters: Counters = field(default_factory=Counters)
    _running: bool = True

    def run(self) -> None:
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
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        consumer.subscribe([self.topic])
        log.info("consumer %s subscribed to %s", self.name, self.topic)
        try:
            while self._running:
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer %s: kafka error %s", self.name, msg.error())
                    continue
                self.process(msg)
                consumer.store_offsets(msg)
        finally:
            consumer.close()  # commits the stored offsets

    def stop(self) -> None:
        self._running = False

    def process(self, msg: Message) -> None:
        try:
            env = Envelope.from_headers(msg.headers())
            record = codec.decode(env.event_type, env.schema_version, msg.value())
        except (ValueError, codec.UnknownSchema) as exc:
            self._dead_letter(msg, f"undecodable: {exc}")
            return
        handler = self.handlers.get(env.event_type)
        if handler is None:
            self._dead_letter(msg, f"no handler for {env.event_type} in {self.name}")
            return
        for attempt in range(1, MAX_HANDLER_ATTEMPTS + 1):
            try:
                self._with_transient_retry(lambda: self._apply(handler, env, record))
                return
            except Exception as exc:  # noqa: BLE001 - non-transient: retried a few times, then dead-lettered
                log.exception("consumer %s: handler %s failed (attempt %d)", self.name, env.event_type, attempt)
                if attempt == MAX_HANDLER_ATTEMPTS:
                    self._dead_letter(msg, f"handler failed {attempt}x: {type(exc).__name__}: {exc}")
                    return
                time.sleep(0.05 * 2 ** attempt)

    def _apply(self, handler: Handler, env: Envelope, record: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            if not inbox.claim(conn, self.inbox, consumer=self.name, message_id=env.event_id,
                               message_type=env.event_type):
                self.counters.duplicates += 1
                log.info("consumer %s: duplicate %s %s ignored", self.name, env.event_type, env.event_id)
                return
            handler(conn, env, record)
        self.counters.processed += 1
        self.counters.by_type[env.event_type] = self.counters.by_type.get(env.event_type, 0) + 1

    def _with_transient_retry(self, action: Callable[[], None]) -> None:
        delay = 0.1
        while True:
            try:
                action()
                return
            except (OperationalError, DBAPIError) as exc:
                if not _is_transient(exc) or not self._running:
                    raise
                self.counters.transient_retries += 1
                log.warning("consumer %s: database unavailable (%s); retrying in %.1fs", self.name,
                            type(exc.orig).__name__ if exc.orig else exc, delay)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)

    def _dead_letter(self, msg: Message, reason: str) -> None:
        headers = {k: (v.decode(errors="replace") if v is not None else None) for k, v in (msg.headers() or [])}
        log.error("consumer %s: dead-lettering %s[%d]@%d: %s", self.name, msg.topic(), msg.partition(),
                  msg.offset(), reason)

        def write() -> None:
            with self.engine.begin() as conn:
                conn.execute(self.dead_letters.insert().values(
                    consumer=self.name, topic=msg.topic(), partition=msg.partition(), offset=msg.offset(),
                    key=msg.key(), headers=json.loads(json.dumps(headers)), value=msg.value(), reason=reason))

        self._with_transient_retry(write)
        self.counters.dead_letters += 1


def _is_transient(exc: DBAPIError) -> bool:
    return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)
