"""Drives the saga definitions from the change streams: one message -> one transaction in the saga database
(inbox + saga state + history), then the decided commands are produced to Kafka.

A crash after the commit and before the produce is healed by redelivery: the inbox recognises the message and the
saga's pending commands are re-sent (their ids are deterministic, so participants drop any second copy)."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from schemas import codec
from schemas.headers import Envelope
from services.common import inbox
from stream_processors.saga import engine as saga_engine
from stream_processors.saga import store
from stream_processors.saga.model import Command, Decision, SagaDefinition
from stream_processors.saga.place_order import DEFINITIONS, STARTERS, saga_data

log = logging.getLogger(__name__)
CONSUMER = "saga-orchestrator"


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class OrchestratorStats:
    applied: int = 0
    ignored: int = 0
    duplicates: int = 0
    dead_letters: int = 0


@dataclass
class Orchestrator:
    engine: Engine
    definitions: dict[str, SagaDefinition] = field(default_factory=lambda: dict(DEFINITIONS))
    stats: OrchestratorStats = field(default_factory=OrchestratorStats)

    def reply_types(self) -> set[str]:
        return set().union(*(d.reply_types() for d in self.definitions.values()))

    def handle(self, msg: RawMessage) -> tuple[Envelope | None, tuple[Command, ...]]:
        """Returns the commands to produce (possibly a re-send). Poison is dead-lettered, never raised."""
        try:
            env = Envelope.from_headers(msg.headers)
        except ValueError as exc:
            self._dead_letter(msg, f"undecodable: {exc}")
            return None, ()
        if env.event_type not in STARTERS and env.event_type not in self.reply_types():
            return env, ()  # an event no saga listens to (e.g. OrderConfirmed's notification twin): not ours
        try:
            record = codec.decode(env.event_type, env.schema_version, msg.value)
        except (ValueError, codec.UnknownSchema) as exc:
            self._dead_letter(msg, f"undecodable: {exc}")
            return env, ()
        with self.engine.begin() as conn:
            if not inbox.claim(conn, store.inbox, consumer=CONSUMER, message_id=env.event_id,
                               message_type=env.event_type):
                self.stats.duplicates += 1
                return env, store.pending_commands(conn, env.saga_id)
            before = store.load(conn, env.saga_id)
            decision = self._decide(env, record, before)
            if decision is None:
                return env, ()
            if decision.applied:
                store.save(conn, before, decision.state, decision.commands)
                self.stats.applied += 1
            else:
                self.stats.ignored += 1
            store.record(conn, env.saga_id, env.event_type, env.event_id, decision.state.status.value,
                         decision.note)
        log.info("saga %s: %s -> %s (%s)", env.saga_id, env.event_type, decision.state.status.value, decision.note)
        return env, decision.commands

    def _decide(self, env: Envelope, record: dict[str, Any], before: Any) -> Decision | None:
        if env.event_type in STARTERS:
            if before is not None:
                return None  # the saga exists: a second OrderCreated with a new event id changes nothing
            return saga_engine.start(self.definitions[STARTERS[env.event_type]], env.saga_id, saga_data(record))
        if before is None:
            log.warning("reply %s for unknown saga %s ignored", env.event_type, env.saga_id)
            return None
        return saga_engine.on_reply(self.definitions[before.definition], before, env.event_type, env.causation_id)

    def _dead_letter(self, msg: RawMessage, reason: str) -> None:
        log.error("saga: dead-lettering %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
        headers = {k: (v.decode(errors="replace") if isinstance(v, bytes) else v) for k, v in msg.headers}
        with self.engine.begin() as conn:
            conn.execute(store.dead_letters.insert().values(
                consumer=CONSUMER, topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key,
                headers=json.loads(json.dumps(headers, default=str)), value=msg.value, reason=reason))
        self.stats.dead_letters += 1
