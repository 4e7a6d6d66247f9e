"""Idempotency keys for REST writes (IETF draft semantics): the same key with the same body replays the first
response; the same key with another body is a 422. The key row commits in the transaction of the write itself."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select

from services.common.api import InvalidRequest


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def replay(conn: Connection, table: Table, client_id: str, key: str, req_hash: str) -> StoredResponse | None:
    row = conn.execute(select(table.c.request_hash, table.c.status_code, table.c.response)
                       .where(table.c.client_id == client_id, table.c.key == key)).first()
    if row is None:
        return None
    if row.request_hash != req_hash:
        raise InvalidRequest(f"Idempotency-Key {key!r} was already used with a different request")
    return StoredResponse(row.status_code, row.response)


def remember(conn: Connection, table: Table, client_id: str, key: str, req_hash: str,
             response: StoredResponse) -> None:
    conn.execute(table.insert().values(client_id=client_id, key=key, request_hash=req_hash,
                                       status_code=response.status_code, response=response.body))
