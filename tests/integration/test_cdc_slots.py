"""A replication slot that vanished after its connector streamed is reported and refused, never silently replaced
(Debezium would create a fresh slot at the current WAL position and skip the gap)."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from cdc import connectors as cdc_connectors
from tests.support import eventually
from walsaga.stack import lifecycle, nodes
from walsaga.stack.config import StackConfig, db_url
from walsaga.stack.kafka import connect_client

pytestmark = pytest.mark.stack

SERVICE = "notifications"  # its events drive nothing, so a short gap here disturbs no other test


def _cdc_health(stack: StackConfig) -> nodes.Node:
    return next(n for n in nodes.status(stack) if n.name == f"cdc[{SERVICE}]")


def test_lost_slot_is_reported_and_refused_until_an_operator_accepts_the_gap(stack: StackConfig) -> None:
    client = connect_client(stack, stack.connect_url)
    name, config = cdc_connectors.identity(SERVICE)
    assert client.has_offsets(name)
    client.stop(name)
    admin = create_engine(db_url(stack, SERVICE, "admin"))
    try:
        def drop_slot() -> None:
            with admin.begin() as conn:
                active = conn.execute(text("SELECT active FROM pg_replication_slots WHERE slot_name = :s"),
                                      {"s": config["slot.name"]}).scalar()
                assert active is False, "the stopped connector still holds its slot"
                conn.execute(text("SELECT pg_drop_replication_slot(:s)"), {"s": config["slot.name"]})

        eventually(drop_slot, timeout=30)
        health = _cdc_health(stack)
        assert not health.ok and "LOST" in health.detail
        with pytest.raises(RuntimeError, match="LOST"):
            lifecycle.register_connectors(stack)
    finally:
        admin.dispose()
        lifecycle.accept_slot_gap(stack, SERVICE)
    assert _cdc_health(stack).ok
