from services.common.alembic_env import run
from services.notifications.db import metadata

run(metadata)
