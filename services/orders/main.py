"""Bootstrap of the orders service: the one place its app and consumer are wired."""
from __future__ import annotations

from fastapi import FastAPI

from schemas.participants import participant
from services.common.consumer import CommandConsumer
from services.common.runner import main
from services.common.settings import Settings
from services.common.wiring import build_app, build_consumer, with_saga_branches
from services.orders import api, db, handlers


def create_app(settings: Settings) -> FastAPI:
    include = with_saga_branches(api.include, "orders", db.idempotency, handlers.COMMAND_HANDLERS,
                                 handlers.FAILURE_REPLIES)
    return build_app(settings, include, db.counters)


def create_consumer(settings: Settings) -> CommandConsumer:
    return build_consumer(settings, db.inbox, db.counters, {**handlers.COMMAND_HANDLERS, **handlers.EVENT_HANDLERS},
                          event_topics=participant("orders").extra_reads)


if __name__ == "__main__":
    main("orders", create_app, create_consumer)
