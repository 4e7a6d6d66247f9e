"""Command line of every service process: `python -m services.<name>.main api --port N` or `... consumer`."""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from services.common.consumer import CommandConsumer
from services.common.settings import Settings


def configure_logging(service: str, role: str) -> None:
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s %(levelname)s {service}-{role} %(name)s: %(message)s")


def main(service: str, create_app: Callable[[Settings], FastAPI],
         create_consumer: Callable[[Settings], CommandConsumer] | None) -> None:
    """create_consumer is None for a service that only serves an API (the read side)."""
    parser = argparse.ArgumentParser(prog=f"services.{service}.main")
    sub = parser.add_subparsers(dest="role", required=True)
    api = sub.add_parser("api", help="serve the REST API")
    api.add_argument("--port", type=int, required=True)
    api.add_argument("--host", default="127.0.0.1")
    if create_consumer is not None:
        sub.add_parser("consumer", help="apply commands from Kafka")
    args = parser.parse_args()
    configure_logging(service, args.role)
    settings = Settings.from_env(service)
    if args.role == "api":
        # keep-alive longer than the gateway keeps an idle upstream connection (30 s): the gateway closes first, so
        # it never sends a request on a connection uvicorn is closing (a 502 under load)
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning",
                    access_log=False, timeout_graceful_shutdown=5, timeout_keep_alive=75)
    elif create_consumer is not None:
        create_consumer(settings).run()
