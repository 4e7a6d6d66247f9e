"""docker-compose.yml and its gateway config are written by hand (not derived from schemas/participants.py yet), so
they are held to the registry here: each participant has its database, its API and its command consumer (running its
own module as its own Kafka principal), its data volume and its gateway upstream; the databases the stack runs beside
the participants' are there too."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from schemas.participants import PARTICIPANTS
from walsaga.stack.config import DATABASES

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_every_participant_runs_in_compose_as_itself() -> None:
    compose = _compose()
    services = compose["services"]
    for p in PARTICIPANTS:
        api, consumer = services[f"{p.name}-api"], services[f"{p.name}-consumer"]
        assert api["command"][:4] == ["python", "-m", f"services.{p.name}.main", "api"], p.name
        assert consumer["command"] == ["python", "-m", f"services.{p.name}.main", "consumer"], p.name
        assert consumer["environment"]["WALSAGA_KAFKA_USERNAME"] == p.principal, p.name
        assert f"@{p.name}-db:5432/{p.name}" in api["environment"]["WALSAGA_DB_URL"], p.name


def test_every_database_has_its_server_and_volume() -> None:
    compose = _compose()
    for db in DATABASES:
        assert f"{db}-db" in compose["services"], db
        assert f"{db}-pgdata" in compose["volumes"], db


def test_the_compose_gateway_has_an_upstream_for_every_api() -> None:
    upstreams = set(re.findall(r"^\s*upstream (\S+) \{", (ROOT / "deploy/compose/nginx.conf").read_text(), re.M))
    assert upstreams == {*(p.name for p in PARTICIPANTS), "queries"}
