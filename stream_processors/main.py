"""`python -m stream_processors.main`: one Faust worker running every agent."""
from __future__ import annotations

import logging
import sys
import time

from faust import Worker
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from stream_processors.app import ProcessorSettings, create_app
from stream_processors.saga.orchestrator import Orchestrator

log = logging.getLogger("stream_processors.main")
CHECK_RETRY_MAX_S = 10.0


def missing_versions(saga_db_url: str) -> list[str]:
    """The saga definition versions that instances in flight run and this build lacks; waits for the saga
    database rather than starting unchecked (no saga can move without it anyway)."""
    engine = create_engine(saga_db_url, pool_size=1)
    delay = 0.5
    try:
        while True:
            try:
                return Orchestrator(engine).missing_versions()
            except OperationalError as exc:
                log.warning("saga database not reachable for the definition-version check (%s); again in %.1fs",
                            type(exc).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, CHECK_RETRY_MAX_S)
    finally:
        engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s processors %(name)s: %(message)s")
    settings = ProcessorSettings.from_env()
    missing = missing_versions(settings.saga_db_url)
    if missing:
        log.critical("refusing to start: saga instances not over run definition versions this build does not have "
                     "(%s). Keep every version in stream_processors/saga/catalog.py until `walsaga sagas "
                     "--versions` shows none of its instances left.", "; ".join(missing))
        sys.exit(3)
    app = create_app(settings)
    Worker(app, loglevel="info", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
