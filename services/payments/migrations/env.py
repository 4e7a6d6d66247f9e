from services.common.alembic_env import run
from services.payments.db import metadata

run(metadata)
