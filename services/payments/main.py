"""Bootstrap of the payments service: the one place its app, provider and consumer are wired."""
from __future__ import annotations

from fastapi import FastAPI

from services.common.api import make_engine
from services.common.consumer import CommandConsumer
from services.common.runner import main
from services.common.settings import Settings
from services.common.wiring import build_app, build_consumer, with_saga_branches
from services.payments import api, db
from services.payments.handlers import FAILURE_REPLIES, PaymentHandlers
from services.payments.provider import SimulatedProvider


def create_app(settings: Settings) -> FastAPI:
    include = with_saga_branches(api.include, "payments", db.idempotency, _handlers(settings).table(),
                                 FAILURE_REPLIES)
    return build_app(settings, include, db.counters)


def create_consumer(settings: Settings) -> CommandConsumer:
    return build_consumer(settings, db.inbox, db.counters, _handlers(settings).table())


def _handlers(settings: Settings) -> PaymentHandlers:
    return PaymentHandlers(provider=SimulatedProvider(make_engine(settings.db_url, 2, pre_ping=False),
                                                      fault_injection=settings.test_mode))


if __name__ == "__main__":
    main("payments", create_app, create_consumer)
