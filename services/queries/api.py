"""Order queries, served from the order view (stream_processors/views): GET /orders/{id}, GET /orders?customer_id=,
GET /orders/{id}/timeline. The gateway sends GETs under /orders here and writes to the orders service.

Read-your-writes: every order write answers `X-Consistency-Token: <order_id>@<version>`. A read that presents it
waits (at most WAIT_S, 250 ms by default) until the view has applied that version of that order, then answers
`X-Consistency: fresh`. If the view is not there yet it answers what it has with `X-Consistency: stale` (or 404 with
that header when the view does not have the order at all): older data is never passed off as fresh."""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine

from schemas.consistency import STATE_HEADER, parse_token
from services.common import order_view as store
from services.common.auth import Caller, customer_for
from services.common.http import CONSISTENCY_TOKEN, Identifier
from services.common.openapi import problems_for
from services.common.reads import reading

# the read-your-writes token a read may present (X-Consistency-Token)
ConsistencyToken = Annotated[str | None, Header(pattern=CONSISTENCY_TOKEN)]
WAIT_S = float(os.environ.get("WALSAGA_CONSISTENCY_WAIT_MS", "250")) / 1000


def to_json(row: Any) -> dict[str, Any]:
    """The order contract of the orders service, plus payment_status and stock_status."""
    return {
        "order_id": row.order_id, "customer_id": row.customer_id, "status": row.status,
        "cancel_reason": row.cancel_reason, "items": row._mapping["items"] or [],
        "total_amount": str(row.total_amount) if row.total_amount is not None else None,
        "currency": row.currency, "payment_method": row.payment_method, "version": row.order_version,
        "payment_status": row.payment_status, "stock_status": row.stock_status,
        "placed_at": row.placed_at.isoformat() if row.placed_at else None,
    }


def wait_for_token(engine: Engine, token: str | None) -> str | None:
    """None without a token; else 'fresh' once the view holds the token's version (polled with backoff), or
    'stale' when WAIT_S passed first."""
    if token is None:
        return None
    try:
        order_id, version = parse_token(token)
    except ValueError as exc:
        raise HTTPException(400, detail={"error": "invalid_consistency_token", "reason": str(exc)}) from exc
    deadline, delay = time.monotonic() + WAIT_S, 0.005
    while True:
        row = reading(engine, lambda conn: store.load(conn, order_id))
        if row is not None and row.status is not None and row.order_version >= version:
            return "fresh"
        if time.monotonic() + delay > deadline:
            return "stale"
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def router(engine: Engine) -> APIRouter:
    r = APIRouter(prefix="/orders", tags=["orders (queries)"])

    @r.get("", responses=problems_for(403))
    def list_orders(caller: Caller, customer_id: Identifier | None = None, limit: int = Query(50, ge=1, le=500),
                    before: Identifier | None = None,
                    x_consistency_token: ConsistencyToken = None) -> JSONResponse:
        whose = customer_for(caller, customer_id, "list orders")
        consistency = wait_for_token(engine, x_consistency_token)
        rows = reading(engine, lambda conn: store.by_customer(conn, whose, limit, before))
        return JSONResponse([to_json(row) for row in rows if row.status is not None], headers=_headers(consistency))

    @r.get("/{order_id}", responses=problems_for(404))
    def get_order(order_id: Identifier, caller: Caller,
                  x_consistency_token: ConsistencyToken = None) -> JSONResponse:
        consistency = wait_for_token(engine, x_consistency_token)
        row = reading(engine, lambda conn: store.load(conn, order_id))
        if row is not None and not caller.owns(row.customer_id):
            row, consistency = None, consistency and "stale"  # answered as if it did not exist (ids cannot be probed)
        if row is None or row.status is None:
            raise HTTPException(404, detail={"error": "not_found", "reason": f"no order {order_id}"},
                                headers=_headers(consistency))
        return JSONResponse(to_json(row), headers={"ETag": f'"{row.order_version}"', **_headers(consistency)})

    @r.get("/{order_id}/timeline", responses=problems_for(404))
    def get_timeline(order_id: Identifier, caller: Caller,
                     x_consistency_token: ConsistencyToken = None) -> JSONResponse:
        consistency = wait_for_token(engine, x_consistency_token)

        def visible_timeline(conn: Connection) -> Sequence[Any]:
            owner = None if caller.is_staff else store.load(conn, order_id)
            visible = caller.is_staff or (owner is not None and caller.owns(owner.customer_id))
            return store.timeline_of(conn, order_id) if visible else []
        rows = reading(engine, visible_timeline)
        if not rows:
            if not caller.is_staff:
                consistency = consistency and "stale"  # answered as if it did not exist (ids cannot be probed)
            raise HTTPException(404, detail={"error": "not_found", "reason": f"no order {order_id}"},
                                headers=_headers(consistency))
        return JSONResponse([{
            "event_id": row.event_id, "event_type": row.event_type, "topic": row.topic, "detail": row.detail,
            "written_at": _iso(row.written_at), "kafka_at": _iso(row.kafka_at), "applied_at": _iso(row.applied_at),
        } for row in rows], headers=_headers(consistency))

    return r


def _headers(consistency: str | None) -> dict[str, str]:
    return {STATE_HEADER: consistency} if consistency else {}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def include(app: FastAPI, engine: Engine) -> None:
    app.include_router(router(engine))
