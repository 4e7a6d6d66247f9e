"""Inventory REST API, served at /inventory behind the gateway."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from services.common import outbox
from services.common.auth import Caller, Principal, Role, require
from services.common.http import Identifier
from services.inventory import db


class StockIn(BaseModel):
    available: int = Field(ge=0, le=1_000_000_000)


def router(engine: Engine) -> APIRouter:
    r = APIRouter(prefix="/inventory", tags=["inventory"])

    @r.put("/{sku}")
    def set_stock(sku: Identifier, body: StockIn, _: Annotated[Principal, require(Role.ADMIN)]) -> dict:
        # PUT sets an absolute value, so it is idempotent without a key
        with engine.begin() as conn:
            outbox.mark_service_write(conn)  # a stock level set through the API is no direct write
            return db.to_json(db.upsert_available(conn, sku, body.available))

    @r.get("/{sku}")
    def get_stock(sku: str, _: Caller) -> dict:
        with engine.connect() as conn:
            level = db.get_level(conn, sku)
        if level is None:
            raise HTTPException(404, detail={"error": "not_found", "reason": f"unknown sku {sku}"})
        return db.to_json(level)

    return r


def include(app: FastAPI, engine: Engine) -> None:
    app.include_router(router(engine))
