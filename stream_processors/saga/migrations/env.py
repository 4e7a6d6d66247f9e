from services.common.alembic_env import run
from stream_processors.saga.store import metadata

run(metadata)
