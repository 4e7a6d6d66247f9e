"""Request pieces several APIs share: the idempotency key header, If-Match, decimal-string money."""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Header, HTTPException
from pydantic import StringConstraints

MoneyString = Annotated[
    str,
    # ASCII digits only (\d would take full-width and other Unicode digits)
    StringConstraints(pattern=r"^[0-9]{1,16}(\.[0-9]{1,2})?$"),
]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
# one ETag naming an order version ("3", W/"3" or 3): what parse_if_match reads
IF_MATCH = r'^(W/)?"?[0-9]{1,9}"?$'
# <order_id>@<version>, what every order write answers (schemas/consistency.py)
CONSISTENCY_TOKEN = r"^[A-Za-z0-9._:-]{1,64}@[0-9]{1,9}$"


def money(value: str) -> Decimal:
    return Decimal(value)


def require_idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
    if not idempotency_key:
        raise HTTPException(400, detail={"error": "missing_idempotency_key",
                                         "reason": "POST requests need an Idempotency-Key header"})
    if len(idempotency_key) > 255:
        raise HTTPException(400, detail={"error": "invalid_idempotency_key", "reason": "at most 255 characters"})
    return idempotency_key


# the idempotency scope of the services' own callers (saga branches); a REST client's scope is "sub:<subject>"
# (services/common/auth.py), so no client can reach it
RESERVED_SCOPE = "walsaga:"


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
