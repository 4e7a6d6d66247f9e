"""`python -m stream_processors.views.main worker`: the read-model worker (run as many as there are partitions)."""
from __future__ import annotations

import logging

from faust import Worker

from stream_processors.views.app import ViewSettings, create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s views %(name)s: %(message)s")
    app = create_app(ViewSettings.from_env())
    Worker(app, loglevel="info", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
