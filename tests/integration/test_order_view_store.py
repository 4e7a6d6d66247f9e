"""The order view applies events monotonically against the real views database: duplicates and older events never
overwrite a newer state, whatever order they arrive in."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text

from services.common import order_view
from stream_processors.views import store
from stream_processors.views.projection import TimelineEntry, project

pytestmark = pytest.mark.stack
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _apply(engine: Engine, event_type: str, record: dict, event_id: str | None = None) -> bool:
    change = project(event_type, record, TimelineEntry(event_id or str(uuid.uuid4()), event_type, "t", NOW, NOW))
    assert change is not None
    with engine.begin() as conn:
        return store.apply(conn, change)


def _view(engine: Engine, order_id: str):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return order_view.load(conn, order_id)


def _created(order_id: str) -> dict:
    return {"order_id": order_id, "customer_id": "c-1", "currency": "EUR", "payment_method": "pm_card_visa",
            "total_amount": Decimal("8.40"), "items": [{"sku": "s", "quantity": 2, "unit_price": Decimal("4.20")}],
            "created_at": NOW}


def test_reordered_and_duplicated_events_end_in_the_newest_state(engines: dict[str, Engine]) -> None:
    views, oid = engines["views"], str(uuid.uuid4())
    cancelled = str(uuid.uuid4())
    # newest first: the order was confirmed (v2), cancelled by the customer (v3), refunded and closed (v4)
    assert _apply(views, "OrderCancelled", {"order_id": oid, "customer_id": "c-1", "reason": "CUSTOMER_CANCELLED",
                                            "version": 4}, cancelled)
    assert _apply(views, "PaymentRefunded", {"order_id": oid, "payment_id": "p"})
    assert _apply(views, "StockReturned", {"order_id": oid})
    # then the older ones, late
    assert _apply(views, "OrderCancellationRequested", {"order_id": oid, "customer_id": "c-1", "version": 3})
    assert _apply(views, "OrderConfirmed", {"order_id": oid, "customer_id": "c-1", "version": 2})
    assert _apply(views, "PaymentCaptured", {"order_id": oid, "payment_id": "p"})
    assert _apply(views, "PaymentAuthorized", {"order_id": oid, "payment_id": "p"})
    assert _apply(views, "StockCommitted", {"order_id": oid})
    assert _apply(views, "OrderCreated", _created(oid))
    # and a duplicate of one already applied
    assert not _apply(views, "OrderCancelled", {"order_id": oid, "customer_id": "c-1", "reason": "CUSTOMER_CANCELLED",
                                                "version": 4}, cancelled)
    row = _view(views, oid)
    assert (row.status, row.cancel_reason, row.order_version) == ("CANCELLED", "CUSTOMER_CANCELLED", 4)
    assert (row.payment_status, row.stock_status) == ("REFUNDED", "RETURNED")
    assert (row.total_amount, row.currency, row._mapping["items"][0]["quantity"]) == (Decimal("8.40"), "EUR", 2)
    with views.connect() as conn:
        entries = conn.execute(text("SELECT count(*) FROM order_timeline WHERE order_id = :o"), {"o": oid}).scalar()
    assert entries == 9


def test_in_order_events_walk_the_lifecycle(engines: dict[str, Engine]) -> None:
    views, oid = engines["views"], str(uuid.uuid4())
    _apply(views, "OrderCreated", _created(oid))
    assert (_view(views, oid).status, _view(views, oid).order_version) == ("PENDING", 1)
    _apply(views, "StockReserved", {"order_id": oid})
    _apply(views, "PaymentAuthorized", {"order_id": oid, "payment_id": "p"})
    _apply(views, "OrderConfirmed", {"order_id": oid, "customer_id": "c-1", "version": 2})
    row = _view(views, oid)
    assert (row.status, row.payment_status, row.stock_status) == ("CONFIRMED", "AUTHORIZED", "RESERVED")
    assert row.placed_at == NOW
