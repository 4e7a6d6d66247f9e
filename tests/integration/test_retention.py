"""Bounded tables (services/common/retention.py) on the real databases: rows past retention go, younger rows and a
running saga's history stay, two pruners side by side delete each row once, a delete never reaches Kafka, and the
stack's own processes (command consumers, orchestrator) prune on their timers with their own database roles."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, create_engine, text

from schemas import topics
from services.common import retention
from stream_processors.saga import store as saga_store
from tests.support import eventually
from walsaga.stack.config import SERVICES, StackConfig, db_url

pytestmark = pytest.mark.stack

TAG = "retention-test"
# routed to the heartbeat topic, which nobody consumes: a test row never looks like a business event
HEARTBEAT_AGGREGATE = topics.outbox_destination(topics.CDC_HEARTBEATS)


@pytest.fixture
def orders_db(stack: StackConfig) -> Iterator[Engine]:
    yield from _admin(stack, "orders")


@pytest.fixture
def saga_db(stack: StackConfig) -> Iterator[Engine]:
    yield from _admin(stack, "saga")


def _admin(stack: StackConfig, db: str) -> Iterator[Engine]:
    engine = create_engine(db_url(stack, db, "admin"))
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM inbox WHERE consumer = :t"), {"t": TAG})
            if db == "saga":
                conn.execute(text("DELETE FROM saga_history WHERE message_type = :t"), {"t": TAG})
                conn.execute(text("DELETE FROM saga_instance WHERE definition = :t"), {"t": TAG})
            else:
                conn.execute(text("DELETE FROM idempotency_key WHERE client_id = :t"), {"t": TAG})
                conn.execute(text("DELETE FROM outbox WHERE aggregateid = :t"), {"t": TAG})
        engine.dispose()


def _add_outbox(engine: Engine, age: timedelta) -> str:
    row_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO outbox (id, aggregatetype, aggregateid, type, schema_version, saga_id,
                                                 correlation_id, payload, created_at)
                             VALUES (:id, :agg, :t, 'CdcHeartbeat', 1, '', '', convert_to('x', 'UTF8'),
                                     now() - make_interval(secs => :age))"""),
                     {"id": row_id, "agg": HEARTBEAT_AGGREGATE, "t": TAG, "age": age.total_seconds()})
    return row_id


def _add_inbox(engine: Engine, age: timedelta, n: int = 1) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO inbox (consumer, message_id, message_type, processed_at)
                             SELECT :t, id, 'Test', now() - make_interval(secs => :age)
                             FROM unnest(CAST(:ids AS text[])) id"""),
                     {"t": TAG, "ids": ids, "age": age.total_seconds()})
    return ids


def _add_key(engine: Engine, age: timedelta) -> str:
    key = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO idempotency_key
                                 (client_id, key, request_hash, status_code, response, created_at)
                             VALUES (:t, :k, 'h', 202, '{}', now() - make_interval(secs => :age))"""),
                     {"t": TAG, "k": key, "age": age.total_seconds()})
    return key


def _exists(engine: Engine, sql: str, **params: object) -> bool:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT EXISTS ({sql})"), params).scalar_one()


def test_a_service_database_keeps_what_is_younger_than_retention(orders_db: Engine) -> None:
    margin = timedelta(minutes=5)
    old_outbox, young_outbox = (_add_outbox(orders_db, retention.OUTBOX_KEEP + margin),
                                _add_outbox(orders_db, retention.OUTBOX_KEEP - margin))
    (old_claim,), (young_claim,) = (_add_inbox(orders_db, retention.INBOX_KEEP + margin),
                                    _add_inbox(orders_db, retention.INBOX_KEEP - margin))
    old_key, young_key = (_add_key(orders_db, retention.IDEMPOTENCY_KEEP + margin),
                          _add_key(orders_db, retention.IDEMPOTENCY_KEEP - margin))

    # (the orders command consumer prunes on its own timer too: which of the two deleted a row does not matter)
    retention.prune(orders_db, retention.SERVICE_RULES)

    assert not _exists(orders_db, "SELECT 1 FROM outbox WHERE id = :i", i=old_outbox)
    assert _exists(orders_db, "SELECT 1 FROM outbox WHERE id = :i", i=young_outbox)
    assert not _exists(orders_db, "SELECT 1 FROM inbox WHERE message_id = :i", i=old_claim)
    assert _exists(orders_db, "SELECT 1 FROM inbox WHERE message_id = :i", i=young_claim)
    assert not _exists(orders_db, "SELECT 1 FROM idempotency_key WHERE key = :k", k=old_key)
    assert _exists(orders_db, "SELECT 1 FROM idempotency_key WHERE key = :k", k=young_key)


def test_two_pruners_side_by_side_delete_every_row_once(orders_db: Engine) -> None:
    # younger than the stack's own retention (its consumers leave them), older than this test's rule
    ids = _add_inbox(orders_db, retention.INBOX_KEEP - timedelta(hours=1), n=3000)
    rules = (retention.Rule("inbox", "processed_at", retention.INBOX_KEEP - timedelta(hours=2),
                            only=f"consumer = '{TAG}'"),)
    counts: list[int] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            counts.append(retention.prune(orders_db, rules, batch=100)["inbox"])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sum(counts) == len(ids), counts
    assert not _exists(orders_db, "SELECT 1 FROM inbox WHERE consumer = :t", t=TAG)


def test_outbox_deletes_are_not_published(stack: StackConfig) -> None:
    """Debezium reads the outbox through the publication: it must carry inserts only, or every pruned row would
    become a delete event."""
    for svc in SERVICES:
        engine = create_engine(db_url(stack, svc, "admin"))
        try:
            with engine.connect() as conn:
                row = conn.execute(text("SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication "
                                        "WHERE pubname = 'walsaga_outbox'")).one()
        finally:
            engine.dispose()
        assert tuple(row) == (True, False, False, False), (svc, row)


def _add_saga(engine: Engine, status: str, ended_ago: timedelta, history_age: timedelta) -> str:
    saga_id = f"{TAG}-{uuid.uuid4()}"
    with engine.begin() as conn:
        conn.execute(text("""INSERT INTO saga_instance (saga_id, definition, status, step, data, awaiting_replies,
                                                        pending_commands, version, updated_at)
                             VALUES (:s, :t, :status, 0, '{}', '[]', '[]', 1, now() - make_interval(secs => :ago))"""),
                     {"s": saga_id, "t": TAG, "status": status, "ago": ended_ago.total_seconds()})
        conn.execute(text("""INSERT INTO saga_history (saga_id, message_type, message_id, status, note, at)
                             VALUES (:s, :t, 'm', :status, 'n', now() - make_interval(secs => :age))"""),
                     {"s": saga_id, "t": TAG, "status": status, "age": history_age.total_seconds()})
    return saga_id


def test_saga_history_goes_only_once_the_saga_has_long_ended(saga_db: Engine) -> None:
    old = retention.HISTORY_KEEP + timedelta(days=1)
    ended_long_ago = _add_saga(saga_db, "COMPLETED", ended_ago=old, history_age=old)
    failed_long_ago = _add_saga(saga_db, "FAILED", ended_ago=old, history_age=old)
    ended_lately = _add_saga(saga_db, "COMPLETED", ended_ago=timedelta(days=1), history_age=old)
    still_parked = _add_saga(saga_db, "PARKED", ended_ago=old, history_age=old)

    retention.prune(saga_db, saga_store.RETENTION)

    def has_history(saga_id: str) -> bool:
        return _exists(saga_db, "SELECT 1 FROM saga_history WHERE saga_id = :s", s=saga_id)

    assert not has_history(ended_long_ago) and not has_history(failed_long_ago)
    assert has_history(ended_lately) and has_history(still_parked)
    assert _exists(saga_db, "SELECT 1 FROM saga_instance WHERE saga_id = :s", s=ended_long_ago)  # the saga stays


def test_the_running_stack_prunes_with_its_own_roles(stack: StackConfig, orders_db: Engine,
                                                     saga_db: Engine) -> None:
    """Nobody calls prune here: the orders command consumer and the orchestrator do, every prune_interval."""
    old = timedelta(days=30)
    outbox_row = _add_outbox(orders_db, old)
    (service_claim,), (saga_claim,) = _add_inbox(orders_db, old), _add_inbox(saga_db, old)
    key = _add_key(orders_db, old)

    def all_gone() -> None:
        left = [what for what, there in (
            ("orders outbox row", _exists(orders_db, "SELECT 1 FROM outbox WHERE id = :i", i=outbox_row)),
            ("orders inbox claim", _exists(orders_db, "SELECT 1 FROM inbox WHERE message_id = :i", i=service_claim)),
            ("orders idempotency key", _exists(orders_db, "SELECT 1 FROM idempotency_key WHERE key = :k", k=key)),
            ("saga inbox claim", _exists(saga_db, "SELECT 1 FROM inbox WHERE message_id = :i", i=saga_claim)),
        ) if there]
        assert not left, f"still there: {', '.join(left)}"

    eventually(all_gone, timeout=max(30.0, 10 * stack.prune_interval), interval=0.5)


def test_every_topic_on_the_broker_drops_a_record_before_the_inbox_forgets_it(stack: StackConfig) -> None:
    """The inbox retention rests on the topics' own settings: a record lives at most retention.ms + segment.ms."""
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    from walsaga.stack import kafka_acls

    admin = AdminClient(kafka_acls.admin(stack).confluent())
    resources = [ConfigResource(ResourceType.TOPIC, t) for t in topics.ALL]
    for resource, future in admin.describe_configs(resources).items():
        config = {name: entry.value for name, entry in future.result(timeout=30).items()}
        if config["cleanup.policy"] == "compact":
            continue  # walsaga.schemas: nobody dedups it
        life_ms = int(config["retention.ms"]) + int(config["segment.ms"])
        assert life_ms == topics.longest_life_ms(resource.name), resource.name
        assert timedelta(milliseconds=life_ms) < retention.INBOX_KEEP, resource.name


def test_a_stack_started_again_brings_an_existing_topics_settings_up_to_date(stack: StackConfig) -> None:
    """A topic created by an older release (here: the broker's 7-day segments) gets the declared settings back."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    from walsaga.stack import kafka_acls
    from walsaga.stack import topics as stack_topics

    access = kafka_acls.admin(stack)
    admin = AdminClient(access.confluent())
    resource = ConfigResource(ResourceType.TOPIC, topics.DIRECT_WRITES)

    def segment_ms() -> str:
        (future,) = admin.describe_configs([resource]).values()
        return str(future.result(timeout=30)["segment.ms"].value)

    stale = ConfigResource(ResourceType.TOPIC, topics.DIRECT_WRITES, incremental_configs=[
        ConfigEntry("segment.ms", str(7 * 24 * 3600 * 1000), incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([stale]).values():
        future.result(timeout=30)
    assert segment_ms() == str(7 * 24 * 3600 * 1000)
    stack_topics.ensure_topics(access, stack.replication_factor)

    def declared_again() -> None:
        assert segment_ms() == str(topics.SEGMENT_MS)

    eventually(declared_again)
