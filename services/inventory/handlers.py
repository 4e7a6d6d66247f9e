"""Inventory command handlers: command -> domain -> one local transaction (stock + reservation + reply outbox row)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine

from schemas import topics
from schemas.headers import Envelope
from schemas.participants import participant
from services.common import outbox
from services.inventory import db, domain
from services.inventory.domain import Line, Price, ReservationStatus, StockLevel

log = logging.getLogger(__name__)


def set_stock(engine: Engine, sku: str, available: int, unit_price: Decimal | None,
              currency: str) -> tuple[StockLevel, Price | None]:
    """An admin's PUT: the stock level (absolute, so idempotent without a key) and, when given, the price. A price
    that changes is a new version, announced as PriceChanged in the same transaction."""
    with engine.begin() as conn:
        outbox.mark_service_write(conn)  # a stock level set through the API is no direct write
        level = db.upsert_available(conn, sku, available)
        current = db.get_price(conn, sku, for_update=True)
        changed = domain.set_price(current, sku, unit_price, currency) if unit_price is not None else None
        if changed is not None:
            db.save_price(conn, changed)
            outbox.append(conn, db.outbox, topic=topics.INVENTORY_PRICES, aggregate_id=sku, event_type="PriceChanged",
                          record={"sku": sku, "unit_price": changed.unit_price, "currency": changed.currency,
                                  "version": changed.version}, saga_id=sku)
        return level, changed or current


def reserve_stock(conn: Connection, env: Envelope, record: dict[str, Any]) -> str:
    order_id = record["order_id"]
    lines = [Line(r["sku"], r["quantity"]) for r in record["lines"]]
    status, _ = db.reservation(conn, order_id)
    action = domain.next_status_on_reserve(status)
    if action == "reply_reserved":
        return _reply(conn, env, order_id, "StockReserved", {"order_id": order_id})
    if action == "refuse":
        return _reply(conn, env, order_id, "StockReservationFailed",
                      {"order_id": order_id, "reason": f"RESERVATION_{status}", "skus": []})
    before = db.lock_levels(conn, (line.sku for line in lines))
    outcome = domain.reserve(before, lines)
    if not outcome.ok:
        db.insert_reservation(conn, order_id, ReservationStatus.REJECTED, [])
        return _reply(conn, env, order_id, "StockReservationFailed",
                      {"order_id": order_id, "reason": "OUT_OF_STOCK", "skus": outcome.short_skus})
    db.save_levels(conn, before, outcome.levels)
    db.insert_reservation(conn, order_id, ReservationStatus.RESERVED, lines)
    return _reply(conn, env, order_id, "StockReserved", {"order_id": order_id})


def release_stock(conn: Connection, env: Envelope, record: dict[str, Any]) -> str:
    order_id = record["order_id"]
    status, lines = db.reservation(conn, order_id)
    action = domain.next_status_on_release(status)
    if action == "release":
        _move_reserved_units(conn, order_id, lines, domain.release, ReservationStatus.RELEASED)
    elif action == "barrier":
        log.warning("release of order %s arrived before its reservation; remembering it", order_id)
        db.insert_reservation(conn, order_id, ReservationStatus.RELEASED, [])
    return _reply(conn, env, order_id, "StockReleased", {"order_id": order_id})


def commit_stock(conn: Connection, env: Envelope, record: dict[str, Any]) -> str:
    order_id = record["order_id"]
    status, lines = db.reservation(conn, order_id)
    if domain.next_status_on_commit(status) == "commit":
        _move_reserved_units(conn, order_id, lines, domain.commit, ReservationStatus.COMMITTED)
    return _reply(conn, env, order_id, "StockCommitted", {"order_id": order_id})


def return_stock(conn: Connection, env: Envelope, record: dict[str, Any]) -> str:
    order_id = record["order_id"]
    status, lines = db.reservation(conn, order_id)
    if domain.next_status_on_return(status) == "return":
        _move_reserved_units(conn, order_id, lines, domain.give_back, ReservationStatus.RETURNED)
    return _reply(conn, env, order_id, "StockReturned", {"order_id": order_id})


def _move_reserved_units(conn: Connection, order_id: str, lines: list[Line],
                         move: Callable[[dict[str, StockLevel], list[Line]], dict[str, StockLevel]],
                         status: ReservationStatus) -> None:
    before = db.lock_levels(conn, (line.sku for line in lines))
    db.save_levels(conn, before, move(before, lines))
    db.set_reservation_status(conn, order_id, status)


def _reply(conn: Connection, cause: Envelope, order_id: str, event_type: str, record: dict[str, Any]) -> str:
    outbox.append(conn, db.outbox, topic=topics.INVENTORY_REPLIES, aggregate_id=order_id, event_type=event_type,
                  record=record, saga_id=cause.saga_id, correlation_id=cause.correlation_id,
                  causation_id=cause.event_id)
    return event_type


COMMAND_HANDLERS = {"ReserveStock": reserve_stock, "ReleaseStock": release_stock, "CommitStock": commit_stock,
                    "ReturnStock": return_stock}
# the replies that are a business "no" to a command (a coordinator compensates on them): the registry's
FAILURE_REPLIES = participant("inventory").failure_replies()
