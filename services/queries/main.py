"""Bootstrap of the order-queries service (read side): an API only, over the views database."""
from __future__ import annotations

from fastapi import FastAPI

from services.common import order_view as store
from services.common.runner import main
from services.common.settings import Settings
from services.common.wiring import build_read_app
from services.queries import api


def create_app(settings: Settings) -> FastAPI:
    return build_read_app(settings, api.include, store.counters)


if __name__ == "__main__":
    main("queries", create_app, None)
