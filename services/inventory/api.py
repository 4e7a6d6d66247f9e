"""Inventory REST API, served at /inventory behind the gateway."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException
from pydantic import BaseModel, Field, StrictInt
from sqlalchemy import Engine

from services.common.api import InvalidRequest
from services.common.auth import Caller, Principal, Role, require
from services.common.http import Identifier, MoneyString, money
from services.common.openapi import problems_for
from services.inventory import db, handlers


class StockIn(BaseModel):
    available: StrictInt = Field(ge=0, le=1_000_000_000)  # strict: false, "5" and 5.0 are not stock levels
    # the price the SKU sells at: required before it can be ordered, optional on later updates (unchanged if omitted)
    unit_price: MoneyString | None = None
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


def router(engine: Engine) -> APIRouter:
    r = APIRouter(prefix="/inventory", tags=["inventory"])

    @r.put("/{sku}", responses=problems_for(403))
    def set_stock(sku: Identifier, body: StockIn, _: Annotated[Principal, require(Role.ADMIN)]) -> dict:
        # PUT sets absolute values, so it is idempotent without a key
        price = money(body.unit_price) if body.unit_price is not None else None
        try:
            return db.to_json(*handlers.set_stock(engine, sku, body.available, price, body.currency))
        except ValueError as exc:  # domain.set_price's rule (positive, in cents); the transaction rolled back
            raise InvalidRequest(f"unit_price: {exc}") from exc

    @r.get("/{sku}", responses=problems_for(404))
    def get_stock(sku: Identifier, _: Caller) -> dict:
        with engine.connect() as conn:
            level, price = db.get_level(conn, sku), db.get_price(conn, sku)
        if level is None:
            raise HTTPException(404, detail={"error": "not_found", "reason": f"unknown sku {sku}"})
        return db.to_json(level, price)

    return r


def include(app: FastAPI, engine: Engine) -> None:
    app.include_router(router(engine))
