"""The DTM saga-branch routes exist only where the settings turn them on (the benchmark's stack and the tests')."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.common import auth
from services.common.kafka_access import KafkaAccess
from services.common.settings import Settings
from services.orders.main import create_app
from walsaga.stack.apps import base_env
from walsaga.stack.config import Ports, StackConfig


def _branch_call(branches: bool) -> int:
    """The status of a branch call without a token: 404 when there is no such route, 401 when there is (the token
    is checked before anything touches the database, which does not exist here)."""
    settings = Settings(service="orders", db_url="postgresql+psycopg://u:p@127.0.0.1:1/none", kafka=KafkaAccess("x:1"),
                        token_public_key=auth.public_key_of(auth.new_signing_key()), saga_branches=branches)
    with TestClient(create_app(settings)) as client:
        return client.post("/orders/saga-branches/ConfirmOrder", params={"gid": "g", "branch_id": "1", "op": "action"},
                           json={"order_id": "g"}).status_code


def test_an_api_serves_no_saga_branches_unless_told_to() -> None:
    assert _branch_call(False) == 404
    assert _branch_call(True) == 401


def test_settings_read_the_switch_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALSAGA_DB_URL", "postgresql+psycopg://u:p@h/db")
    monkeypatch.setenv("WALSAGA_KAFKA_BOOTSTRAP", "x:1")
    monkeypatch.delenv("WALSAGA_SAGA_BRANCHES", raising=False)
    assert not Settings.from_env("orders").saga_branches
    monkeypatch.setenv("WALSAGA_SAGA_BRANCHES", "1")
    assert Settings.from_env("orders").saga_branches


def test_a_stack_turns_them_off_by_default(tmp_path: Path) -> None:
    cfg = StackConfig(home=tmp_path, ports=Ports(0))
    assert not cfg.saga_branches
    assert "WALSAGA_SAGA_BRANCHES" not in base_env(cfg)  # set per API instance, from the config
