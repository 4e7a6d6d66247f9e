"""Runs each database's Alembic migrations (once, from the supervisor; instances never race to migrate)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from walsaga.stack.config import REPO, SERVICES

SCRIPT_LOCATIONS = {
    **{svc: REPO / "services" / svc / "migrations" for svc in SERVICES},
    "saga": REPO / "stream_processors" / "saga" / "migrations",
    "views": REPO / "stream_processors" / "views" / "migrations",
}


def alembic_config(db: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATIONS[db]))
    cfg.attributes["url"] = url
    return cfg


def upgrade(db: str, url: str) -> None:
    command.upgrade(alembic_config(db, url), "head")


def location(db: str) -> Path:
    return SCRIPT_LOCATIONS[db]
