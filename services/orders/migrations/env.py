from services.common.alembic_env import run
from services.orders.db import metadata

run(metadata)
