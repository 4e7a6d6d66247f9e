"""The read-model worker: a Faust app of its own (own consumer group, own process), so a views-database outage or a
slow projection never holds back the sagas. It folds the change streams of every service into the order view."""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone

import faust
from sqlalchemy import create_engine

from schemas import codec, topics
from schemas.headers import CREATED_AT, Envelope
from services.common.dead_letters import dead_letter_headers
from stream_processors.app import faust_app, retry_transient
from stream_processors.saga.orchestrator import RawMessage
from stream_processors.views import store
from stream_processors.views.projection import TimelineEntry, project

log = logging.getLogger(__name__)
SOURCES = (topics.ORDERS_EVENTS, topics.PAYMENTS_REPLIES, topics.INVENTORY_REPLIES, topics.NOTIFICATIONS_EVENTS,
           topics.DIRECT_WRITES)
# the saga orchestrator reads these too and dead-letters their poison records; one copy in the DLQ is enough
DEAD_LETTERED_BY_ORCHESTRATOR = {topics.ORDERS_EVENTS, topics.PAYMENTS_REPLIES, topics.INVENTORY_REPLIES}


@dataclass(frozen=True)
class ViewSettings:
    kafka_bootstrap: str
    views_db_url: str
    web_port: int
    data_dir: str

    @classmethod
    def from_env(cls) -> "ViewSettings":
        return cls(kafka_bootstrap=os.environ["WALSAGA_KAFKA_BOOTSTRAP"],
                   views_db_url=os.environ["WALSAGA_VIEWS_DB_URL"],
                   web_port=int(os.environ.get("WALSAGA_FAUST_WEB_PORT", "18160")),
                   data_dir=os.environ.get("WALSAGA_FAUST_DATA_DIR", "/tmp/walsaga-views"))


def create_app(settings: ViewSettings) -> faust.App:
    app = faust_app("walsaga-views", settings.kafka_bootstrap, settings.web_port, settings.data_dir)
    engine = create_engine(settings.views_db_url, pool_size=2, pool_pre_ping=True)

    def handle(msg: RawMessage, kafka_at: datetime | None) -> str | None:
        """Applies one record; returns the reason when it is poison."""
        try:
            env = Envelope.from_headers(msg.headers)
            record = codec.decode(env.event_type, env.schema_version, msg.value)
        except (ValueError, codec.UnknownSchema) as exc:
            return f"undecodable: {exc}"
        entry = TimelineEntry(env.event_id, env.event_type, msg.topic, _written_at(msg.headers), kafka_at)
        change = project(env.event_type, record, entry)
        if change is None:
            return None
        with engine.begin() as conn:
            store.apply(conn, change)
        return None

    def count(counter: str) -> None:
        with engine.begin() as conn:
            store.count(conn, counter)

    @app.agent(app.topic(*SOURCES, key_serializer="raw", value_serializer="raw"), name="order-view")
    async def fold(stream: faust.StreamT) -> None:
        async for event in stream.events():
            m = event.message
            headers = list(m.headers.items()) if isinstance(m.headers, dict) else list(m.headers or [])
            msg = RawMessage(m.topic, m.partition, m.offset, m.key, m.value, headers)
            kafka_at = datetime.fromtimestamp(m.timestamp, timezone.utc) if m.timestamp else None
            reason = await retry_transient(lambda: asyncio.to_thread(handle, msg, kafka_at))
            if reason is not None and msg.topic in DEAD_LETTERED_BY_ORCHESTRATOR:
                log.error("order-view: skipping %s[%d]@%d (%s); the orchestrator dead-letters it", msg.topic,
                          msg.partition, msg.offset, reason)
                await retry_transient(lambda: asyncio.to_thread(count, "poison_skipped"))
            elif reason is not None:
                log.error("order-view: dead-lettering %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)
                await app.producer.send_and_wait(
                    topics.DEAD_LETTERS, msg.key, msg.value, None, None,
                    dead_letter_headers(msg.headers, reason=reason, consumer=store.CONSUMER, topic=msg.topic,
                                        partition=msg.partition, offset=msg.offset))
                await retry_transient(lambda: asyncio.to_thread(count, "dead_letters"))

    return app


def _written_at(headers: list[tuple[str, bytes]]) -> datetime | None:
    for key, value in headers:
        if key == CREATED_AT and value:
            try:
                return datetime.fromisoformat(value.decode().replace("Z", "+00:00"))
            except ValueError:
                return None
    return None
