"""The body of every migrations/env.py: online migrations only, URL handed in by the stack supervisor."""
from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, create_engine


def run(metadata: MetaData) -> None:
    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: pass it as the alembic config attribute 'url' or sqlalchemy.url")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
