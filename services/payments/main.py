"""Bootstrap of the payments service: the one place its app, provider and consumer are wired."""
from __future__ import annotations

from fastapi import FastAPI

from services.common.api import make_engine
from services.common.consumer import CommandConsumer
from services.common.runner import main
from services.common.settings import Settings
from services.common.wiring import build_app, build_consumer
from services.payments import api, db
from services.payments.handlers import PaymentHandlers
from services.payments.provider import SimulatedProvider


def create_app(settings: Settings) -> FastAPI:
    return build_app(settings, api.include, db.counters)


def create_consumer(settings: Settings) -> CommandConsumer:
    handlers = PaymentHandlers(provider=SimulatedProvider(make_engine(settings.db_url, 2)))
    return build_consumer(settings, db.inbox, db.counters, handlers.table())


if __name__ == "__main__":
    main("payments", create_app, create_consumer)
