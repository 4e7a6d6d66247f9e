"""Idempotency keys for REST writes (IETF draft semantics): the same key with the same body replays the first
response; the same key with another body is a 422; the same key while the first request is still in flight is a
409. The key row commits in the transaction of the write itself, so replays survive restarts."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select, text

from services.common.api import Conflict, InvalidRequest


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


def begin(conn: Connection, table: Table, client_id: str, key: str, req_hash: str) -> StoredResponse | None:
    """Call first in the write's transaction: the stored answer to replay, or None to go ahead with the write."""
    if not lock_key(conn, client_id, key):
        raise Conflict(f"a request with Idempotency-Key {key!r} is still in flight; retry later")
    return replay(conn, table, client_id, key, req_hash)


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def lock_key(conn: Connection, client_id: str, key: str) -> bool:
    """A transaction-scoped advisory lock on the key: False when a request with the same key is still in flight
    (the caller answers 409). Released by the commit or rollback, so a crashed request never leaves it stuck."""
    return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"),
                             {"k": f"{len(client_id)}:{client_id}:{key}"}).scalar())


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
