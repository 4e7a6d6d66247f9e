"""The pieces each service's bootstrap (main.py) assembles: its FastAPI app and its command consumer."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, Table

from schemas import codec
from schemas.topics import COMMAND_TOPIC
from services.common import admission, openapi, reads, retention, saga_branches
from services.common.admission import AdmissionMiddleware, AimdLimit
from services.common.api import (
    API_THREADS,
    READ_THREADS,
    install_error_handlers,
    install_metrics,
    make_engine,
    thread_pool,
)
from services.common.auth import Verifier
from services.common.consumer import CommandConsumer
from services.common.counters import read_counters
from services.common.published_schemas import PublishedSchemas
from services.common.settings import Settings
from services.common.url_guard import UrlGuard


def build_app(settings: Settings, include: Callable[[FastAPI, Engine], None], counters: Table) -> FastAPI:
    """A service's API: its endpoints on the thread pool, over a connection pool of the same size."""
    engine = make_engine(settings.db_url, API_THREADS, overflow=False)
    app = _api(settings, API_THREADS, partial(_counters, engine, counters))
    include(app, engine)
    return app


def build_read_app(settings: Settings, include: Callable[[FastAPI, Engine], None], counters: Table) -> FastAPI:
    """An API that only reads (the order queries): a read is one round trip (services/common/reads.py)."""
    engine = reads.read_engine(settings.db_url)
    app = _api(settings, READ_THREADS, lambda: reads.reading(engine, partial(read_counters, table=counters)))
    include(app, engine)
    return app


def _api(settings: Settings, threads: int, counters_now: Callable[[], Mapping[tuple[str, str], int]]) -> FastAPI:
    if not settings.token_public_key:
        raise RuntimeError("WALSAGA_TOKEN_PUBLIC_KEY is not set: an API verifies every request's bearer token "
                           "(the stack supervisor sets it; see walsaga/stack/apps.py)")
    app = FastAPI(title=f"walsaga {settings.service}", version="1",
                  openapi_url=f"/{settings.service}/openapi.json", docs_url=f"/{settings.service}/docs",
                  redoc_url=None, lifespan=thread_pool(threads))
    app.state.token_verifier = Verifier(settings.token_public_key)
    app.state.saga_branches = settings.saga_branches
    limit = AimdLimit(target_s=settings.admission_target_ms / 1000)
    app.add_middleware(AdmissionMiddleware, limit=limit)
    app.add_middleware(UrlGuard)  # added last, so it runs first: a bad URL never counts against the limit
    install_error_handlers(app)
    openapi.install(app)
    install_metrics(app, counters_now, settings.service,
                    lambda: admission.metrics(limit, settings.service, settings.instance))
    return app


def _counters(engine: Engine, counters: Table) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        return read_counters(conn, counters)


def with_saga_branches(include: Callable[[FastAPI, Engine], None], service: str, idempotency: Table,
                       handlers: Mapping[str, Callable[..., str]],
                       failures: Mapping[str, frozenset[str]]) -> Callable[[FastAPI, Engine], None]:
    """The service's own routes plus, when the settings turn them on (the benchmark's DTM baseline), its command
    handlers as HTTP saga branches (services/common/saga_branches.py)."""
    def include_both(app: FastAPI, engine: Engine) -> None:
        include(app, engine)
        if app.state.saga_branches:
            app.include_router(saga_branches.router(service, engine, idempotency, handlers, failures))
    return include_both


def build_consumer(settings: Settings, inbox: Table, counters: Table, handlers: dict[str, Any],
                   event_topics: tuple[str, ...] = ()) -> CommandConsumer:
    engine = make_engine(settings.db_url, 4, pre_ping=False)
    codec.use_published(PublishedSchemas(settings.kafka))  # writer schemas of a newer release (rolling upgrades)
    return CommandConsumer(
        name=settings.service, topic=COMMAND_TOPIC[settings.service], engine=engine,
        inbox=inbox, counters=counters, handlers=handlers, event_topics=event_topics,
        pruner=retention.Pruner(engine, retention.scaled(retention.SERVICE_RULES, settings.retention_scale),
                                settings.prune_interval_s, settings.service),
        kafka_config=settings.kafka.confluent({
            "client.id": f"{settings.service}-consumer-{settings.instance}",
            # librdkafka waits 60 s by default for an answer from a silent broker (a paused node) before it drops
            # the connection, refreshes metadata and fetches from the partition's new leader
            "socket.timeout.ms": 10000}))
