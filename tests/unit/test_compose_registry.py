"""docker-compose.yml, its gateway config and env.example are rendered from deploy/compose/templates/ and
schemas/participants.py (walsaga/compose.py): the committed files are current, and each participant has its
database, its API and its command consumer (running its own module as its own Kafka principal), its data volume, its
secrets and its gateway route, a participant added to the registry too; the databases the stack runs beside the
participants' are there as well."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from schemas.participants import PARTICIPANTS, CommandSpec, Participant
from walsaga import compose
from walsaga.stack.config import DATABASES

ROOT = Path(__file__).resolve().parents[2]


# not CONTRIBUTING.md's example (shipping), so following it once does not break this test
LOYALTY = Participant("loyalty", postgres_port=15499, api_port=18199, reply_topic="walsaga.loyalty.replies",
                      commands=(CommandSpec("AwardPoints", "PointsAwarded"),))


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_the_committed_files_are_what_the_templates_and_the_registry_render() -> None:
    assert compose.stale() == []


def test_a_participant_added_to_the_registry_gets_its_containers_secrets_and_route() -> None:
    rendered = compose.render((*PARTICIPANTS, LOYALTY))
    services = yaml.safe_load(rendered[ROOT / "docker-compose.yml"])["services"]
    assert services["loyalty-db"]["environment"]["WALSAGA_DB"] == "loyalty"
    assert services["loyalty-api"]["command"][:3] == ["python", "-m", "services.loyalty.main"]
    assert services["loyalty-consumer"]["environment"]["WALSAGA_KAFKA_USERNAME"] == "walsaga-loyalty"
    assert "loyalty-db" in services["init"]["depends_on"] and "loyalty-api" in services["gateway"]["depends_on"]
    assert "WALSAGA_LOYALTY_CDC_PASSWORD" in services["init"]["environment"]
    assert "loyalty-consumer" in services["processors"]["depends_on"]
    nginx = rendered[ROOT / "deploy/compose/nginx.conf"]
    assert "upstream loyalty {" in nginx and "location /loyalty { if ($no_bearer)" in nginx
    env = rendered[ROOT / "deploy/compose/env.example"]
    assert "WALSAGA_LOYALTY_APP_PASSWORD=" in env and "WALSAGA_KAFKA_LOYALTY_PASSWORD=" in env
    ha = yaml.safe_load(rendered[ROOT / "docker-compose.ha.yml"])
    assert {"loyalty-db-1", "loyalty-db-2", "loyalty-db"} <= set(ha["services"])
    assert "walsaga_loyalty_outbox:" in ha["configs"]["patroni-loyalty"]["content"]
    assert "WALSAGA_LOYALTY_REPLICATOR_PASSWORD=" in env


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
