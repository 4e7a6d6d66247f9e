"""Payments REST API (read-only), served at /payments behind the gateway."""
from __future__ import annotations

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine, select

from services.common.auth import Caller
from services.common.http import Identifier
from services.payments import db


def router(engine: Engine) -> APIRouter:
    r = APIRouter(prefix="/payments", tags=["payments"])

    @r.get("")
    def list_payments(caller: Caller, order_id: Identifier) -> list[dict]:
        with engine.connect() as conn:
            rows = conn.execute(select(db.payments).where(db.payments.c.order_id == order_id)).all()
        # another customer's payment is not there for the caller (as with an order id that does not exist)
        return [db.to_json(db.from_row(row)) for row in rows if caller.owns(row.customer_id)]

    return r


def include(app: FastAPI, engine: Engine) -> None:
    app.include_router(router(engine))
