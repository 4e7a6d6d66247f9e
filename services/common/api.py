"""What every service's REST API shares: error mapping (4xx with a reason, 503 while the database is down,
never a bare 500), every error as RFC 9457 problem details (services/common/problems.py), and engine creation."""
from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import Engine, Table, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.common import problems
from services.common.counters import read_counters

log = logging.getLogger(__name__)


# the problem code of a header that does not fit its pattern (400)
HEADER_PROBLEMS = {"if-match": "invalid_if_match", "x-consistency-token": "invalid_consistency_token"}


class InvalidRequest(ValueError):
    """Input that passed the schema but breaks a rule (e.g. duplicate SKU lines): 422 with the reason."""


class Conflict(Exception):
    """The request cannot apply to the resource's current state: 409 with the reason."""


def make_engine(db_url: str, pool_size: int = 10, pre_ping: bool = True) -> Engine:
    """pre_ping=False for a process that retries a whole transaction when its connection turns out dead (the command
    consumers): a ping is a round trip per transaction."""
    return create_engine(db_url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=pre_ping,
                         pool_timeout=10)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", [])), "msg": e.get("msg")} for e in exc.errors()]
        reason = "; ".join(f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}" for d in details)
        bad_headers = [str(d["loc"][1]) for d in details if len(d["loc"]) > 1 and d["loc"][0] == "header"]
        if bad_headers and len(bad_headers) == len(details):  # a malformed header is a bad request, not bad content
            code = HEADER_PROBLEMS.get(bad_headers[0].lower(), "invalid_header")
            return problems.response(400, code, reason, errors=details)
        return problems.response(422, "invalid_request", reason, errors=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:  # Starlette names only the first route on the path; every route's methods count
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return problems.from_detail(exc.status_code, exc.detail, headers)

    @app.exception_handler(InvalidRequest)
    async def _invalid(_: Request, exc: InvalidRequest) -> JSONResponse:
        return problems.response(422, "invalid_request", str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return problems.response(409, "conflict", str(exc))

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)
        return problems.response(503, "unavailable", "database unavailable, retry later", {"Retry-After": "2"})

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return problems.response(503, "unavailable", "database connection lost, retry later",
                                     {"Retry-After": "2"})
        log.exception("database error")
        return problems.response(500, "internal", "database error")

    @app.get("/health", include_in_schema=False)
    async def _health() -> dict[str, str]:
        return {"status": "ok"}


def allowed_methods(request: Request) -> str:
    """Every method some route of the app takes at the request's path (for a 405's Allow header)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def install_metrics(app: FastAPI, engine: Engine, counters: Table, service: str,
                    extra: Callable[[], list[str]] = list) -> None:
    """GET /metrics (Prometheus text format): the service database's counters (duplicates dropped, retries, dead
    letters, conflicts). They live in the database, so every instance reports the service-wide totals; `extra`
    adds this instance's own lines (its admission limit)."""
    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> PlainTextResponse:
        with engine.connect() as conn:
            values = read_counters(conn, counters)
        lines = ["# HELP walsaga_counter_total Service-wide counters kept in the service database.",
                 "# TYPE walsaga_counter_total counter"]
        lines += [f'walsaga_counter_total{{service="{service}",consumer="{consumer}",counter="{counter}"}} {value}'
                  for (consumer, counter), value in sorted(values.items())]
        lines += extra()
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
