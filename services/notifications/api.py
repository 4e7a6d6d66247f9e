"""Notifications REST API (read-only), served at /notifications behind the gateway."""
from __future__ import annotations

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine, select

from services.common.auth import Caller
from services.common.http import Identifier
from services.notifications import db


def router(engine: Engine) -> APIRouter:
    r = APIRouter(prefix="/notifications", tags=["notifications"])

    @r.get("")
    def list_notifications(caller: Caller, order_id: Identifier) -> list[dict]:
        with engine.connect() as conn:
            rows = conn.execute(select(db.notifications).where(db.notifications.c.order_id == order_id)
                                .order_by(db.notifications.c.created_at)).all()
        return [db.to_json(row) for row in rows if caller.owns(row.customer_id)]

    return r


def include(app: FastAPI, engine: Engine) -> None:
    app.include_router(router(engine))
