"""One error format for every API and the gateway: RFC 9457 problem details (`application/problem+json`).

    {"type": "urn:walsaga:problem:price_changed", "title": "Price changed", "status": 409,
     "detail": "the price of sku-1 is 10.00", "error": "price_changed", "current": {"sku-1": "10.00"}}

`error` repeats the problem's short code (clients switch on it); further members carry what a client needs to act
(the current prices, the current version, ...). Routes raise `HTTPException(status, detail={"error": code,
"reason": text, ...})` or a domain exception the handlers in services/common/api.py map; this module only shapes the
answer."""
from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:walsaga:problem:"


class Problem(BaseModel):
    """The document every error is (the OpenAPI schema of every error response); more members may follow."""
    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    error: str


def body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": f"{TYPE_PREFIX}{code}", "title": code.replace("_", " ").capitalize(), "status": status,
            "detail": detail, "error": code, **extra}


def response(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None,
             **extra: Any) -> JSONResponse:
    return JSONResponse(body(status, code, detail, **extra), status_code=status,
                        headers=dict(headers) if headers else None, media_type=MEDIA_TYPE)


def code_for(status: int) -> str:
    """A code for a status nobody named (e.g. Starlette's own 404 or 405): its reason phrase, snake_case."""
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def from_detail(status: int, detail: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An HTTPException's detail as a problem: {"error", "reason", ...} or a plain text."""
    if isinstance(detail, dict) and "error" in detail:
        extra = {k: v for k, v in detail.items() if k not in ("error", "reason")}
        return response(status, str(detail["error"]), str(detail.get("reason", "")), headers, **extra)
    return response(status, code_for(status), str(detail), headers)


def encoded(status: int, code: str, detail: str) -> bytes:
    """The same body, serialized, for the pure-ASGI middlewares that answer before FastAPI does."""
    return json.dumps(body(status, code, detail)).encode()
