from services.common.alembic_env import run
from stream_processors.views.store import metadata

run(metadata)
