"""Orders REST API: request -> handler. Served at /orders behind the gateway."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt
from sqlalchemy import Engine

from schemas.consistency import TOKEN_HEADER, make_token
from services.common.api import Conflict, InvalidRequest
from services.common.auth import Caller, customer_for
from services.common.http import IF_MATCH, Identifier, MoneyString, money, parse_if_match, require_idempotency_key
from services.common.openapi import problems_for
from services.orders import db, handlers
from services.orders.domain import (
    AlreadyCancelled,
    Channel,
    NotOrderable,
    OrderRuleViolation,
    PriceChanged,
    StaleVersion,
)

T = TypeVar("T")
# how long an order waits for a price that does not fit the catalog copy yet (it trails inventory by a CDC hop)
PRICE_WAIT_S = float(os.environ.get("WALSAGA_PRICE_WAIT_MS", "1000")) / 1000


class ItemIn(BaseModel):
    sku: Identifier
    quantity: StrictInt = Field(gt=0, le=1_000_000)  # strict: true, "1" and 1.0 are not quantities
    # optional: the server prices every line; a price given must be the current one (else 409 price_changed)
    unit_price: MoneyString | None = None


class OrderIn(BaseModel):
    customer_id: Identifier | None = None  # a customer's own id when omitted; staff name the customer
    items: list[ItemIn] = Field(min_length=1, max_length=100)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    payment_method: str = Field(pattern=r"^pm_[A-Za-z0-9_]{1,64}$")
    channel: Channel | None = None  # where the customer placed it; carried by OrderCreated (v2)


def router(engine: Engine) -> APIRouter:
    r = APIRouter(prefix="/orders", tags=["orders"])

    @r.post("", status_code=202, responses=problems_for(403, 409))
    def place_order(body: OrderIn, key: Annotated[str, Depends(require_idempotency_key)],
                    caller: Caller) -> JSONResponse:
        data = body.model_dump()
        data["customer_id"] = customer_for(caller, body.customer_id, "place orders")
        for item in data["items"]:
            item["unit_price"] = money(item["unit_price"]) if item["unit_price"] is not None else None
        try:
            result = priced(lambda: handlers.place_order(engine, client_id=caller.idempotency_scope,
                                                         idempotency_key=key, body=data))
        except OrderRuleViolation as exc:
            raise InvalidRequest(str(exc)) from exc
        except NotOrderable as exc:
            raise HTTPException(409, detail={"error": "not_orderable", "reason": str(exc), "skus": exc.skus}) from exc
        except PriceChanged as exc:
            raise HTTPException(409, detail={"error": "price_changed", "reason": str(exc),
                                             "current": {sku: str(p) for sku, p in exc.current.items()}}) from exc
        return JSONResponse(result.body, status_code=result.status_code,
                            headers={"Location": f"/orders/{result.body['order_id']}", **_written(result.body)})

    @r.post("/{order_id}/cancel", status_code=202, responses=problems_for(404, 409, 412))
    def cancel_order(order_id: Identifier, key: Annotated[str, Depends(require_idempotency_key)],
                     caller: Caller, if_match: Annotated[str | None, Header(pattern=IF_MATCH)] = None) -> JSONResponse:
        try:
            result = handlers.request_cancellation(engine, client_id=caller.idempotency_scope, idempotency_key=key,
                                                   order_id=order_id, if_match=parse_if_match(if_match),
                                                   owner=None if caller.is_staff else caller.subject)
        except LookupError as exc:
            raise HTTPException(404, detail={"error": "not_found", "reason": str(exc)}) from exc
        except StaleVersion as exc:
            raise HTTPException(412, detail={"error": "precondition_failed", "reason": str(exc),
                                             "current_version": exc.actual}) from exc
        except AlreadyCancelled as exc:
            raise Conflict(str(exc)) from exc
        return JSONResponse(result.body, status_code=result.status_code,
                            headers={"ETag": f'"{result.body["version"]}"', **_written(result.body)})

    @r.get("/{order_id}", responses=problems_for(404))
    def get_order(order_id: Identifier, caller: Caller) -> JSONResponse:
        with engine.connect() as conn:
            order = db.load(conn, order_id)
        if order is None or not caller.owns(order.customer_id):
            raise HTTPException(404, detail={"error": "not_found", "reason": f"no order {order_id}"})
        return JSONResponse(db.to_json(order), headers={"ETag": f'"{order.version}"'})

    return r


def priced(place: Callable[[], T], wait_s: float = PRICE_WAIT_S) -> T:
    """Places the order; when its prices do not fit the catalog copy, tries again for up to `wait_s`: the copy
    trails inventory by a CDC hop, so a price set a moment ago may be on its way (a later answer is still 409)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return place()
        except (NotOrderable, PriceChanged):
            if time.monotonic() + 0.05 > deadline:
                raise
            time.sleep(0.05)


def _written(order: dict) -> dict[str, str]:
    """The read-your-writes token of a write: reads presenting it see this version or say they are stale."""
    return {TOKEN_HEADER: make_token(order["order_id"], order["version"])}


def include(app: FastAPI, engine: Engine) -> None:
    app.include_router(router(engine))
