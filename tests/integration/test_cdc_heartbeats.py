"""Heartbeats keep an idle database's replication slot advancing: WAL written outside the outbox is confirmed (and so
released) within a heartbeat interval, and each heartbeat is a record on walsaga.cdc-heartbeats."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from cdc import connectors as cdc_connectors
from cdc.slots import slot_state, wal_end
from schemas import topics
from tests.support import TopicTail, eventually
from walsaga.stack import kafka_acls
from walsaga.stack.config import StackConfig, db_url

pytestmark = pytest.mark.stack

SERVICE = "payments"
HEARTBEAT_S = int(cdc_connectors.identity(SERVICE)[1]["heartbeat.interval.ms"]) / 1000


def test_wal_written_outside_the_outbox_is_confirmed_within_a_heartbeat(stack: StackConfig) -> None:
    admin_url = db_url(stack, SERVICE, "admin", driver="postgresql")
    slot = cdc_connectors.identity(SERVICE)[1]["slot.name"]
    scratch = f"wal_filler_{uuid.uuid4().hex[:8]}"
    admin = create_engine(db_url(stack, SERVICE, "admin"))
    tail = TopicTail(kafka_acls.admin(stack), topics.CDC_HEARTBEATS)
    try:
        with admin.begin() as conn:  # ~1 MB of WAL that no publication carries
            conn.execute(text(f"CREATE TABLE {scratch} AS SELECT g AS n, repeat('x', 200) AS pad "
                              "FROM generate_series(1, 4000) g"))
        target = wal_end(admin_url)
        assert slot_state(admin_url, slot).confirmed_lsn < target

        def confirmed_past_target() -> None:
            confirmed = slot_state(admin_url, slot).confirmed_lsn
            assert confirmed is not None and confirmed >= target, f"{target - confirmed} bytes not confirmed yet"

        eventually(confirmed_past_target, timeout=3 * HEARTBEAT_S, interval=0.5)

        beat = tail.poll_until(lambda m: m.key() == SERVICE.encode(), timeout=3 * HEARTBEAT_S)
        sent_at = datetime.fromisoformat(beat.value().decode())
        assert abs(datetime.now(UTC) - sent_at) < timedelta(seconds=3 * HEARTBEAT_S)
    finally:
        tail.close()
        with admin.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {scratch}"))
        admin.dispose()


def test_only_the_heartbeat_function_is_open_to_the_cdc_role(stack: StackConfig) -> None:
    """The CDC role reads the outbox and runs the heartbeat function; it cannot write the outbox itself."""
    admin = create_engine(db_url(stack, SERVICE, "admin"))
    try:
        with admin.connect() as conn:
            rights = conn.execute(text(
                "SELECT has_table_privilege('walsaga_cdc', 'outbox', 'SELECT'), "
                "has_table_privilege('walsaga_cdc', 'outbox', 'INSERT'), "
                "has_function_privilege('walsaga_cdc', 'public.walsaga_cdc_heartbeat()', 'EXECUTE'), "
                "has_function_privilege('public', 'public.walsaga_cdc_heartbeat()', 'EXECUTE')")).one()
            publish = conn.execute(text(
                "SELECT pubinsert, pubupdate, pubdelete FROM pg_publication WHERE pubname = 'walsaga_outbox'")).one()
    finally:
        admin.dispose()
    assert tuple(rights) == (True, False, True, False)
    assert tuple(publish) == (True, False, False), "deletes (the heartbeat clean-up) must not be streamed"
