"""The continuous reconciliation checks: a Faust app of its own (consumer group walsaga-reconciler, own process).

Every order event, notification, and DirectWrite event (published by triggers when someone writes to a service
database behind its API) schedules a check of its order (or SKU) for when things have been quiet for the grace
period. The check reads the service databases (the sources of truth) and applies the same rules as
`walsaga reconcile` (reconciliation/checks.py); each violation is counted, logged, stored, and repaired where the
repair is safe (a command to the owning participant), else left for an operator."""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import faust
from sqlalchemy import Connection, Engine, create_engine, text

from reconciliation import checks, scan
from reconciliation.repair import Repairer
from schemas import codec, topics
from schemas.headers import Envelope
from services.common import order_view
from services.common.counters import counter_add
from services.common.kafka_access import KafkaAccess
from services.common.published_schemas import PublishedSchemas
from stream_processors.app import DEFAULT_TRANSPORT, faust_app, raw_message, retry_transient, transport_from_env
from stream_processors.batching import take_ready
from stream_processors.fetching import FetchWait
from stream_processors.reconciler import lifecycle
from stream_processors.reconciler import store as rstore

log = logging.getLogger(__name__)
CONSUMER = "reconciler"


@dataclass(frozen=True)
class ReconcilerSettings:
    kafka: KafkaAccess
    views_db_url: str
    source_db_urls: dict[str, str]
    web_port: int
    data_dir: str
    grace_s: float = 30.0
    saga_sla_s: float = 300.0
    channels: tuple[str, ...] = ("log",)
    kafka_replication: int = 1
    transport: str = DEFAULT_TRANSPORT

    @classmethod
    def from_env(cls) -> ReconcilerSettings:
        return cls(
            kafka=KafkaAccess.from_env(),
            views_db_url=os.environ["WALSAGA_VIEWS_DB_URL"],
            source_db_urls={db: os.environ[f"WALSAGA_DB_URL_{db.upper()}"] for db in scan.SOURCES},
            web_port=int(os.environ.get("WALSAGA_FAUST_WEB_PORT", "18180")),
            data_dir=os.environ.get("WALSAGA_FAUST_DATA_DIR", "/tmp/walsaga-reconciler"),
            grace_s=float(os.environ.get("WALSAGA_RECONCILE_GRACE_S", "30")),
            saga_sla_s=float(os.environ.get("WALSAGA_SAGA_SLA_S", "300")),
            channels=tuple(c for c in os.environ.get("WALSAGA_NOTIFICATION_CHANNELS", "log").split(",") if c),
            kafka_replication=int(os.environ.get("WALSAGA_KAFKA_REPLICATION", "1")),
            transport=transport_from_env(),
        )


class Checker:
    def __init__(self, settings: ReconcilerSettings, views: Engine, sources: scan.Sources) -> None:
        self.s, self.views, self.sources = settings, views, sources
        self.repairer = Repairer(settings.kafka, "continuous")

    def schedule_overdue_sagas(self, limit: int = 500) -> int:
        """Sagas unfinished past their SLA get a check even if no record about them arrives any more (a saga that
        stopped moving produces no events)."""
        with self.sources.saga.connect() as conn:
            ids = [r.saga_id for r in conn.execute(text(
                "SELECT saga_id FROM saga_instance WHERE status NOT IN ('COMPLETED', 'FAILED') "
                "AND updated_at < now() - make_interval(secs => :sla) ORDER BY updated_at LIMIT :n"),
                {"sla": self.s.saga_sla_s, "n": limit})]
        with self.views.begin() as conn:
            rstore.schedule_many(conn, dict.fromkeys(ids, "order"), 0)
        return len(ids)

    def schedule_all(self, subjects: dict[str, str]) -> None:
        """One transaction for a batch of records: each subject's check moves to `grace` from now."""
        with self.views.begin() as conn:
            rstore.schedule_many(conn, subjects, self.s.grace_s)

    def run_due(self, limit: int = 50) -> int:
        """One sweep: every due check in one views transaction; repairs are sent after it commits."""
        repairs: list[checks.Divergence] = []
        with self.views.begin() as conn:
            due = rstore.take_due(conn, limit)
            # every due order's facts in one query per service database, not five queries per order
            facts = scan.facts_for_many(self.sources, [r.subject for r in due if r.subject_kind != "sku"])
            for row in due:
                repairs += self._check(conn, row.subject, row.subject_kind, facts.get(row.subject))
            if due:
                counter_add(conn, order_view.counters, CONSUMER, "checks", len(due))
        for d in repairs:
            self.repairer.send(d)
        if repairs:
            self.repairer.flush()
        return len(due)

    def _check(self, conn: Connection, subject: str, subject_kind: str,
               facts: scan.OrderFacts | None = None) -> list[checks.Divergence]:
        now = datetime.now(UTC)
        if subject_kind == "sku":
            balance = scan.sku_balance(self.sources.inventory, subject)
            found = checks.check_sku(balance) if balance else []
        else:
            facts = facts or scan.facts_for(self.sources, subject)
            found = checks.check_order(facts, self.s.channels, now, self.s.saga_sla_s)
            again = checks.recheck_at(facts, self.s.saga_sla_s)
            if again is not None and again > now:  # its saga is still at work: look again when its SLA is up
                rstore.schedule_at(conn, subject, subject_kind, again)
        outcome = lifecycle.decide(found, rstore.known(conn, subject))
        rstore.save(conn, subject, outcome)
        for row in outcome.new:
            counter_add(conn, order_view.counters, CONSUMER, "violations")
            log.warning("violation %s of %s %s: %s (%s)", row.kind, subject_kind, subject, row.detail,
                        "repairing" if row.status == lifecycle.Status.REPAIRING else "needs an operator")
        for kind in outcome.resolved:
            counter_add(conn, order_view.counters, CONSUMER, "resolved")
            log.info("violation %s of %s %s resolved", kind, subject_kind, subject)
        if outcome.repairs:
            counter_add(conn, order_view.counters, CONSUMER, "repairs_sent", len(outcome.repairs))
        if outcome.recheck:
            rstore.schedule(conn, subject, subject_kind, self.s.grace_s)
        return outcome.repairs


# An order's own events (its last one comes after the saga's last step but one), notifications and writes behind the
# APIs: enough to check every order once it has settled, without a views write for every reply of every saga
# (a saga still running at check time is looked at again when its SLA is up).
WATCHED = (topics.ORDERS_EVENTS, topics.NOTIFICATIONS_EVENTS, topics.DIRECT_WRITES)
# a check runs a while after its order's event anyway: the broker gathers records for up to 250 ms per fetch
# (stream_processors/fetching.py), and the agent schedules what a fetch brought (up to 500) in one transaction
BATCH, FETCH_WAIT = 500, FetchWait(max_wait_ms=250)


def _subject(event: faust.EventT) -> tuple[str, str] | None:
    m = raw_message(event)
    try:
        env = Envelope.from_headers(m.headers)
        if env.event_type == "OrderCreated":
            return None  # nothing to check before the saga has run
        found = subject_of(env, m.value)
    except (ValueError, codec.UnknownSchema) as exc:
        log.warning("reconciler: skipping %s[%d]@%d (%s); its consumers dead-letter it", m.topic, m.partition,
                    m.offset, exc)
        return None
    if env.event_type == "DirectWrite":
        log.warning("direct write behind the API: %s %s", found[1], found[0])
    return found


def subject_of(env: Envelope, value: bytes | None) -> tuple[str, str]:
    """(subject, kind): the order a record is about, or the SKU of a direct write to the stock table."""
    if env.event_type == "DirectWrite":
        record = codec.decode(env.event_type, env.schema_version, value)
        if record["table"] == "stock":
            return env.saga_id, "sku"
    return env.saga_id, "order"


def create_app(settings: ReconcilerSettings) -> faust.App:
    app = faust_app("walsaga-reconciler", settings.kafka, settings.web_port, settings.data_dir,
                    settings.kafka_replication, fetch_wait=FETCH_WAIT, transport=settings.transport)
    codec.use_published(PublishedSchemas(settings.kafka))  # writer schemas of a newer release (rolling upgrades)
    # no pre-ping (a round trip per checkout, five checkouts per check): a dead connection fails the sweep, which
    # leaves its checks due for the next one
    views = create_engine(settings.views_db_url, pool_size=2)
    sources = scan.Sources(**{db: create_engine(url, pool_size=2) for db, url in settings.source_db_urls.items()})
    checker = Checker(settings, views, sources)

    @app.agent(app.topic(*WATCHED, key_serializer="raw", value_serializer="raw"), name="reconciler")
    async def watch(stream: faust.StreamT) -> None:
        async for events in take_ready(stream, BATCH):
            subjects: dict[str, str] = {}
            for event in events:
                found = _subject(event)
                if found is not None:
                    subjects[found[0]] = found[1]
            if subjects:
                await retry_transient(partial(asyncio.to_thread, checker.schedule_all, subjects))

    overdue_every = min(max(settings.saga_sla_s / 10, 5.0), 30.0)
    last_overdue_scan = [0.0]

    @app.timer(interval=1.0)
    async def sweep() -> None:
        try:
            if time.monotonic() - last_overdue_scan[0] >= overdue_every:
                last_overdue_scan[0] = time.monotonic()
                found = await asyncio.to_thread(checker.schedule_overdue_sagas)
                if found:
                    log.info("reconciler: %d saga(s) unfinished past their SLA scheduled for a check", found)
            while await asyncio.to_thread(checker.run_due) > 0:
                pass
        except Exception as exc:  # noqa: BLE001 - a database outage skips this sweep; the checks stay due
            log.warning("reconciler sweep skipped: %s: %s", type(exc).__name__, exc)

    return app
