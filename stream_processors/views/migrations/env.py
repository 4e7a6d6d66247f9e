from services.common.alembic_env import run
from services.common.order_view import metadata

run(metadata)
