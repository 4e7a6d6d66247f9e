"""Saga branches over HTTP, for an external coordinator that speaks DTM's branch protocol (github.com/dtm-labs/dtm).

walsaga's own orchestrator sends commands through Kafka; this adapter lets a coordinator such as DTM call the very
same command handlers over HTTP (the benchmark's DTM baseline does). One request is one local transaction, exactly
like one Kafka command: the idempotency row of (gid, branch_id, op), the handler's effect and the event it writes to
the outbox commit together, so a retried call replays the stored answer and never applies twice.

    POST /{service}/saga-branches/{Command}?gid=..&branch_id=..&op=action|compensate   body: the command's fields

Answers in DTM's terms: 200 {"dtm_result": "SUCCESS"}; 409 {"dtm_result": "FAILURE"} when the handler answered with
a business failure (e.g. StockReservationFailed), so the coordinator compensates; 425 while the same branch call is
still in flight (the coordinator retries later); 422 with the reason for a body that does not fit the command's
Avro contract. The body may carry more fields than the command (a DTM compensation receives its action's payload);
only the command's own fields are used. Internal: the public gateway does not route these paths. Off unless the
process is started with WALSAGA_SAGA_BRANCHES=1 (the benchmark's stack and the test stack), and then a caller needs
an operator's or admin's bearer token.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, Table
from starlette.concurrency import run_in_threadpool

from schemas import codec
from schemas.headers import Envelope
from services.common import idempotency
from services.common.api import InvalidRequest
from services.common.auth import Role, require
from services.common.http import RESERVED_SCOPE, Identifier
from services.common.idempotency import StoredResponse

PATH = "saga-branches"
CLIENT = f"{RESERVED_SCOPE}saga-branch"  # the idempotency scope of branch calls (no REST client can name it)
BranchId = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Op = Annotated[str, Query(pattern=r"^(action|compensate)$")]


def branch_key(gid: str, branch_id: str, op: str) -> str:
    return f"{gid}/{branch_id}/{op}"


def envelope(command: str, gid: str, branch_id: str, op: str) -> Envelope:
    """The call as a command envelope: a stable event id per (gid, branch, op), the global transaction as saga id."""
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"saga-branch:{branch_key(gid, branch_id, op)}"))
    return Envelope(event_id, command, codec.latest_version(command), gid, gid, event_id)


def command_record(command: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The body checked against the command's Avro contract (the same one a Kafka command is encoded with). Money
    may come as a JSON string (as in the REST API) or as a JSON number; either is read as an exact Decimal."""
    fields = dict(body)
    for name in codec.decimal_fields(command):
        if isinstance(fields.get(name), str):
            try:
                fields[name] = Decimal(fields[name])
            except InvalidOperation:
                raise ValueError(f"{name} {fields[name]!r} is not a decimal number") from None
    payload, version = codec.encode(command, fields)
    return codec.decode(command, version, payload)


def outcome(reply_type: str, failures: frozenset[str]) -> StoredResponse:
    if reply_type in failures:
        return StoredResponse(409, {"dtm_result": "FAILURE", "reply": reply_type})
    return StoredResponse(200, {"dtm_result": "SUCCESS", "reply": reply_type})


def router(service: str, engine: Engine, idempotency_table: Table,
           handlers: Mapping[str, Callable[..., str]], failures: Mapping[str, frozenset[str]]) -> APIRouter:
    # a coordinator calls these with a staff token (DTM passes it as a branch header)
    r = APIRouter(prefix=f"/{service}/{PATH}", tags=[f"{service} saga branches"], include_in_schema=False,
                  dependencies=[require(Role.OPERATOR, Role.ADMIN)])

    @r.post("/{command}")
    async def branch(command: str, request: Request, gid: Identifier, branch_id: BranchId, op: Op) -> JSONResponse:
        handler = handlers.get(command)
        if handler is None:
            raise HTTPException(404, detail={"error": "not_found",
                                             "reason": f"{service} takes no saga command {command!r}"})
        body = _json_object(await request.body())
        try:
            record = command_record(command, body)
        except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:  # e.g. "Infinity"
            raise InvalidRequest(f"body is not a {command}: {type(exc).__name__}: {exc}") from exc
        key = branch_key(gid, branch_id, op)
        req_hash = idempotency.request_hash("POST", f"/{service}/{PATH}/{command}", body)

        def apply() -> StoredResponse:
            with engine.begin() as conn:
                if not idempotency.lock_key(conn, CLIENT, key):
                    return StoredResponse(425, {"dtm_result": "ONGOING", "reason": f"branch {key} is in flight"})
                stored = idempotency.replay(conn, idempotency_table, CLIENT, key, req_hash)
                if stored is None:
                    reply_type = handler(conn, envelope(command, gid, branch_id, op), record)
                    stored = outcome(reply_type, failures.get(command, frozenset()))
                    idempotency.remember(conn, idempotency_table, CLIENT, key, req_hash, stored)
                return stored

        stored = await run_in_threadpool(apply)  # the database work runs off the event loop, like the sync routes
        return JSONResponse(stored.body, status_code=stored.status_code)

    return r


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null", parse_float=Decimal)
    except ValueError as exc:
        raise InvalidRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body
