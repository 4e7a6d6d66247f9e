"""`python -m stream_processors.reconciler.main worker`: the continuous reconciliation checks."""
from __future__ import annotations

import logging

from faust import Worker

from stream_processors.reconciler.app import ReconcilerSettings, create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s reconciler %(name)s: %(message)s")
    app = create_app(ReconcilerSettings.from_env())
    Worker(app, loglevel="info", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
