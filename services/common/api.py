"""What every service's REST API shares: error mapping (4xx with a reason, 503 while the database is down,
never a bare 500), every error as RFC 9457 problem details (services/common/problems.py), and engine creation."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.common import problems

log = logging.getLogger(__name__)


# the problem code of a header that does not fit its pattern (400)
HEADER_PROBLEMS = {"if-match": "invalid_if_match", "x-consistency-token": "invalid_consistency_token"}


class InvalidRequest(ValueError):
    """Input that passed the schema but breaks a rule (e.g. duplicate SKU lines): 422 with the reason."""


class Conflict(Exception):
    """The request cannot apply to the resource's current state: 409 with the reason."""


# An API instance runs its sync endpoints on this many threads and keeps as many database connections: a thread
# never waits for a connection, and a connection, once opened, stays open. (A smaller pool with overflow opened and
# closed a connection per request past the pool whenever requests slowed down under load: a fork and a SCRAM
# handshake each, more CPU for a box already short of it.)
API_THREADS = 30
# An API that only reads (services/common/reads.py) needs fewer: a read is one round trip and ~1 ms of Python, and
# more threads only pass the GIL around more (400 concurrent reads on a quiet benchmark stack: 25 scheduler slices
# and 1.2 CPU-ms per read with 30 threads, 12 and 0.9 with 8). A read waiting for a consistency token holds its
# thread (at most 250 ms) but not a connection.
READ_THREADS = 8


def make_engine(db_url: str, pool_size: int = 10, pre_ping: bool = True, overflow: bool = True,
                autocommit: bool = False) -> Engine:
    """pre_ping=False for a process that retries a whole transaction when its connection turns out dead (the command
    consumers): a ping is a round trip per transaction. overflow=False: never more than pool_size connections (and
    none opened and closed past it). autocommit=True: each statement on its own, no BEGIN and ROLLBACK round trips
    around it (a reader of single statements, services/common/reads.py)."""
    return create_engine(db_url, pool_size=pool_size, max_overflow=pool_size * 2 if overflow else 0,
                         pool_pre_ping=pre_ping, pool_timeout=10,
                         **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}))


def thread_pool(threads: int) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """FastAPI's lifespan for an API: its thread pool (the endpoints' concurrency) as large as its connection pool."""
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield
    return lifespan


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


def install_metrics(app: FastAPI, counters_now: Callable[[], Mapping[tuple[str, str], int]], service: str,
                    extra: Callable[[], list[str]] = list) -> None:
    """GET /metrics (Prometheus text format): the service database's counters (duplicates dropped, retries, dead
    letters, conflicts; `counters_now` reads them). They live in the database, so every instance reports the
    service-wide totals; `extra` adds this instance's own lines (its admission limit)."""
    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> PlainTextResponse:
        values = counters_now()
        lines = ["# HELP walsaga_counter_total Service-wide counters kept in the service database.",
                 "# TYPE walsaga_counter_total counter"]
        lines += [f'walsaga_counter_total{{service="{service}",consumer="{consumer}",counter="{counter}"}} {value}'
                  for (consumer, counter), value in sorted(values.items())]
        lines += extra()
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
