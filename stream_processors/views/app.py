"""The read-model worker: a Faust app of its own (own consumer group, own process), so a views-database outage or a
slow projection never holds back the sagas. It folds the change streams of every service into the order view."""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import faust
from sqlalchemy import create_engine

from schemas import codec, topics
from schemas.headers import CREATED_AT, Envelope
from services.common.dead_letters import dead_letter_headers
from services.common.kafka_access import KafkaAccess
from services.common.published_schemas import PublishedSchemas
from stream_processors.app import DEFAULT_TRANSPORT, faust_app, raw_message, retry_transient, transport_from_env
from stream_processors.batching import take_ready
from stream_processors.fetching import FetchWait
from stream_processors.saga import catalog
from stream_processors.saga.orchestrator import RawMessage
from stream_processors.views import store
from stream_processors.views.projection import TimelineEntry, project

log = logging.getLogger(__name__)
SOURCES = (topics.ORDERS_EVENTS, topics.PAYMENTS_REPLIES, topics.INVENTORY_REPLIES, topics.NOTIFICATIONS_EVENTS,
           topics.DIRECT_WRITES)
# the broker gathers records for up to 100 ms per fetch (stream_processors/fetching.py) and the agent takes what a
# fetch brought (up to 200 records) as one views transaction: ~10 fetches a second at low rates instead of one per
# record, no extra wait when busy. The view trails the saga by that much more; nothing on the saga's path reads it.
BATCH, FETCH_WAIT = 200, FetchWait(max_wait_ms=100)
# the saga orchestrator reads these too and dead-letters their poison records; one copy in the DLQ is enough
DEAD_LETTERED_BY_ORCHESTRATOR = set(catalog.sources())


@dataclass(frozen=True)
class ViewSettings:
    kafka: KafkaAccess
    views_db_url: str
    web_port: int
    data_dir: str
    kafka_replication: int = 1
    transport: str = DEFAULT_TRANSPORT

    @classmethod
    def from_env(cls) -> ViewSettings:
        return cls(kafka=KafkaAccess.from_env(),
                   views_db_url=os.environ["WALSAGA_VIEWS_DB_URL"],
                   web_port=int(os.environ.get("WALSAGA_FAUST_WEB_PORT", "18160")),
                   data_dir=os.environ.get("WALSAGA_FAUST_DATA_DIR", "/tmp/walsaga-views"),
                   kafka_replication=int(os.environ.get("WALSAGA_KAFKA_REPLICATION", "1")),
                   transport=transport_from_env())


def create_app(settings: ViewSettings) -> faust.App:
    app = faust_app("walsaga-views", settings.kafka, settings.web_port, settings.data_dir,
                    settings.kafka_replication, fetch_wait=FETCH_WAIT, transport=settings.transport)
    codec.use_published(PublishedSchemas(settings.kafka))  # writer schemas of a newer release (rolling upgrades)
    engine = create_engine(settings.views_db_url, pool_size=2)  # no pre-ping: retry_transient retries a batch

    def apply_batch(batch: list[tuple[RawMessage, datetime | None]]) -> list[tuple[RawMessage, str]]:
        """Applies a batch of records in one transaction (each still deduplicated by its event id); returns the
        poison records with their reasons."""
        poison: list[tuple[RawMessage, str]] = []
        changes = []
        for msg, kafka_at in batch:
            try:
                env = Envelope.from_headers(msg.headers)
                record = codec.decode(env.event_type, env.schema_version, msg.value)
            except (ValueError, codec.UnknownSchema) as exc:
                poison.append((msg, f"undecodable: {exc}"))
                continue
            entry = TimelineEntry(env.event_id, env.event_type, msg.topic, _written_at(msg.headers), kafka_at)
            change = project(env.event_type, record, entry)
            if change is not None:
                changes.append(change)
        if changes:
            with engine.begin() as conn:
                for change in changes:
                    store.apply(conn, change)
        return poison

    def count(counter: str) -> None:
        with engine.begin() as conn:
            store.count(conn, counter)

    @app.agent(app.topic(*SOURCES, key_serializer="raw", value_serializer="raw"), name="order-view")
    async def fold(stream: faust.StreamT) -> None:
        # batches: one views transaction per batch instead of per record (the projection is CPU-light; the commit
        # and the round trips are what cost), acknowledged only after the batch committed
        async for events in take_ready(stream, BATCH):
            batch = [(raw_message(e), _kafka_time(e)) for e in events]
            poison = await retry_transient(partial(asyncio.to_thread, apply_batch, batch))
            for msg, reason in poison:
                await _poison(msg, reason)

    async def _poison(msg: RawMessage, reason: str) -> None:
        if msg.topic in DEAD_LETTERED_BY_ORCHESTRATOR:
            log.error("order-view: skipping %s[%d]@%d (%s); the orchestrator dead-letters it", msg.topic,
                      msg.partition, msg.offset, reason)
            await retry_transient(lambda: asyncio.to_thread(count, "poison_skipped"))
            return
        log.error("order-view: dead-lettering %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
        await app.producer.send_and_wait(
            topics.DEAD_LETTERS, msg.key, msg.value, None, None,
            dead_letter_headers(msg.headers, reason=reason, consumer=store.CONSUMER, topic=msg.topic,
                                partition=msg.partition, offset=msg.offset))
        await retry_transient(lambda: asyncio.to_thread(count, "dead_letters"))

    return app


def _kafka_time(event: faust.EventT) -> datetime | None:
    ts = event.message.timestamp
    return datetime.fromtimestamp(ts, UTC) if ts else None


def _written_at(headers: list[tuple[str, bytes]]) -> datetime | None:
    for key, value in headers:
        if key == CREATED_AT and value:
            try:
                return datetime.fromisoformat(value.decode().replace("Z", "+00:00"))
            except ValueError:
                return None
    return None
