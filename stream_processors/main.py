"""`python -m stream_processors.main`: one Faust worker running every agent."""
from __future__ import annotations

import logging

from faust import Worker

from stream_processors.app import ProcessorSettings, create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s processors %(name)s: %(message)s")
    app = create_app(ProcessorSettings.from_env())
    Worker(app, loglevel="info", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
