from services.common.alembic_env import run
from services.inventory.db import metadata

run(metadata)
