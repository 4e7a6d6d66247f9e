"""Orders command handlers: command -> domain -> one local transaction (order row + outbox row)."""
from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from schemas import topics
from schemas.headers import Envelope
from schemas.participants import participant
from services.common import idempotency, outbox
from services.common.counters import counter_add
from services.common.idempotency import StoredResponse
from services.orders import db, domain
from services.orders.domain import CancelReason, CatalogPrice, Channel, Order, RequestedLine

log = logging.getLogger(__name__)
API_CONSUMER = "orders-api"  # the counters row the REST API's conflicts are counted under


def place_order(engine: Engine, *, client_id: str, idempotency_key: str, body: dict[str, Any]) -> StoredResponse:
    """Creates the order (PENDING) and its OrderCreated outbox row in one transaction, or replays the first answer.
    The lines are priced from the catalog copy (domain.price_lines: NotOrderable, PriceChanged)."""
    req_hash = idempotency.request_hash("POST", "/orders", body)
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                earlier = idempotency.begin(conn, db.idempotency, client_id, idempotency_key, req_hash)
                if earlier is not None:
                    return earlier
                requested = [RequestedLine(i["sku"], i["quantity"], i.get("unit_price")) for i in body["items"]]
                catalog = db.prices(conn, [r.sku for r in requested])
                order = domain.place(
                    order_id=str(uuid.uuid4()), customer_id=body["customer_id"],
                    lines=domain.price_lines(requested, catalog, body["currency"]),
                    currency=body["currency"], payment_method=body["payment_method"],
                    channel=Channel(body["channel"]) if body.get("channel") else None)
                db.insert(conn, order)
                _publish(conn, order, "OrderCreated", {
                    "order_id": order.order_id, "customer_id": order.customer_id,
                    "items": [{"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
                              for line in order.lines],
                    "total_amount": order.total_amount, "currency": order.currency,
                    "payment_method": order.payment_method, "created_at": datetime.now(UTC),
                    "channel": order.channel.value if order.channel else None})
                response = StoredResponse(202, db.to_json(order))
                idempotency.remember(conn, db.idempotency, client_id, idempotency_key, req_hash, response)
                return response
        except IntegrityError:
            # the same key committed concurrently; the second attempt replays it
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def request_cancellation(engine: Engine, *, client_id: str, idempotency_key: str, order_id: str,
                         if_match: int | None, owner: str | None = None) -> StoredResponse:
    """A customer's cancel, decided on the order row under its lock (domain.request_cancellation has the precedence).
    A stale If-Match or a second cancel is a conflict: counted and logged with both versions, then raised. With an
    `owner`, an order of another customer does not exist for the caller (LookupError, as for an unknown id)."""
    req_hash = idempotency.request_hash("POST", f"/orders/{order_id}/cancel", {"if_match": if_match})
    try:
        with engine.begin() as conn:
            earlier = idempotency.begin(conn, db.idempotency, client_id, idempotency_key, req_hash)
            if earlier is not None:
                return earlier
            order = db.load(conn, order_id, for_update=True)
            if order is None or (owner is not None and order.customer_id != owner):
                raise LookupError(f"no order {order_id}")
            after = domain.request_cancellation(order, if_match)
            db.update_state(conn, order, after)
            if after.status is domain.OrderStatus.CANCELLED:
                _publish(conn, after, "OrderCancelled", _cancelled(after))
            else:
                _publish(conn, after, "OrderCancellationRequested", _confirmed(after))
            response = StoredResponse(202, db.to_json(after))
            idempotency.remember(conn, db.idempotency, client_id, idempotency_key, req_hash, response)
            return response
    except domain.StaleVersion as exc:
        _conflict(engine, "stale_if_match", f"cancel of {order_id}: If-Match {exc.expected}, current {exc.actual}")
        raise
    except domain.AlreadyCancelled as exc:
        _conflict(engine, "cancel_conflicts", str(exc))
        raise


def _conflict(engine: Engine, counter: str, detail: str) -> None:
    log.warning("conflict (%s): %s", counter, detail)
    with engine.begin() as conn:
        counter_add(conn, db.counters, API_CONSUMER, counter)


def confirm_order(conn: Connection, env: Envelope, record: dict[str, Any]) -> str:
    order = _load(conn, record["order_id"])
    try:
        after = domain.confirm(order)
    except domain.InvalidTransition as exc:
        # the saga never confirms a cancelled order; if it happens, the saga must learn it (not silently drop it)
        log.error("confirm refused: %s", exc)
        return _publish(conn, order, "OrderCancelled", _cancelled(order), env)
    if after is None:
        # re-announce: the saga may be waiting
        return _publish(conn, order, "OrderConfirmed", _confirmed(order), env)
    db.update_state(conn, order, after)
    return _publish(conn, after, "OrderConfirmed", _confirmed(after), env)


def cancel_order(conn: Connection, env: Envelope, record: dict[str, Any]) -> str:
    order = _load(conn, record["order_id"])
    try:
        after = domain.cancel(order, CancelReason(record["reason"]))
    except domain.InvalidTransition as exc:
        log.error("cancel refused: %s", exc)
        return _publish(conn, order, "OrderConfirmed", _confirmed(order), env)
    if after is None:
        return _publish(conn, order, "OrderCancelled", _cancelled(order), env)
    db.update_state(conn, order, after)
    return _publish(conn, after, "OrderCancelled", _cancelled(after), env)


def _load(conn: Connection, order_id: str) -> Order:
    order = db.load(conn, order_id, for_update=True)
    if order is None:
        raise LookupError(f"order {order_id} does not exist")
    return order


def _confirmed(order: Order) -> dict[str, Any]:
    return {"order_id": order.order_id, "customer_id": order.customer_id, "version": order.version}


def _cancelled(order: Order) -> dict[str, Any]:
    reason = order.cancel_reason.value if order.cancel_reason else ""
    return {"order_id": order.order_id, "customer_id": order.customer_id, "reason": reason, "version": order.version}


def _publish(conn: Connection, order: Order, event_type: str, record: dict[str, Any],
             cause: Envelope | None = None) -> str:
    outbox.append(conn, db.outbox, topic=topics.ORDERS_EVENTS, aggregate_id=order.order_id, event_type=event_type,
                  record=record, saga_id=order.order_id,
                  correlation_id=cause.correlation_id if cause else order.order_id,
                  causation_id=cause.event_id if cause else None)
    return event_type


def apply_price(conn: Connection, env: Envelope, record: dict[str, Any]) -> None:
    """Inventory's PriceChanged into the catalog copy (the highest version wins; no reply)."""
    db.store_price(conn, record["sku"], CatalogPrice(record["unit_price"], record["currency"], record["version"]))


COMMAND_HANDLERS = {"ConfirmOrder": confirm_order, "CancelOrder": cancel_order}
# the events the orders consumer follows besides its commands (topics.INVENTORY_PRICES)
EVENT_HANDLERS = {"PriceChanged": apply_price}
# the replies that are a business "no" to a command (a coordinator compensates on them): the registry's
FAILURE_REPLIES = participant("orders").failure_replies()
