"""Request pieces several APIs share: the idempotency key and client scope headers, decimal-string money."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Header, HTTPException
from pydantic import StringConstraints

MoneyString = Annotated[
    str,
    StringConstraints(pattern=r"^\d{1,16}(\.\d{1,2})?$"),
]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


def money(value: str) -> Decimal:
    return Decimal(value)


def require_idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
    if not idempotency_key:
        raise HTTPException(400, detail={"error": "missing_idempotency_key",
                                         "reason": "POST requests need an Idempotency-Key header"})
    if len(idempotency_key) > 255:
        raise HTTPException(400, detail={"error": "invalid_idempotency_key", "reason": "at most 255 characters"})
    return idempotency_key


RESERVED_SCOPE = "walsaga:"  # idempotency scopes of the services' own callers (saga branches), never a REST client's


def client_scope(x_client_id: Annotated[str | None, Header()] = None) -> str:
    """Idempotency keys are scoped per client; without authentication the client names itself (not with a reserved
    name: a client could otherwise plant keys in the saga branches' scope)."""
    scope = (x_client_id or "anonymous")[:128]
    if scope.startswith(RESERVED_SCOPE):
        raise HTTPException(400, detail={"error": "invalid_client_id",
                                         "reason": f"X-Client-Id may not start with {RESERVED_SCOPE!r}"})
    return scope


def parse_if_match(value: str | None) -> int | None:
    """An If-Match header naming one version as its ETag ("3", W/"3" or 3); None when absent. Lists and `*` are not
    supported: a cancel targets exactly one version."""
    if value is None:
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isascii() or not tag.isdigit() or len(tag) > 9:
        raise HTTPException(400, detail={"error": "invalid_if_match",
                                         "reason": 'If-Match must be one ETag such as "3" (the order version)'})
    return int(tag)
