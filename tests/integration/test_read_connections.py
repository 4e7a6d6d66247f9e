"""The order-queries API reads in one round trip, without a ping before each checkout (services/common/reads.py):
a pooled connection the database has dropped is found dead by the read itself, which is then repeated on a new
connection. A client never sees that: no 503 after the views database cut every connection of the read API."""
from __future__ import annotations

import httpx
import pytest
from sqlalchemy import create_engine, text

from walsaga.client import Gateway
from walsaga.stack.config import StackConfig, db_url, role_name

pytestmark = pytest.mark.stack


def test_a_read_after_the_database_cut_its_pooled_connections_answers_at_once(stack: StackConfig,
                                                                               gateway: Gateway) -> None:
    auth = {"Authorization": gateway.http.headers["Authorization"]}
    instances = [f"http://127.0.0.1:{stack.ports.api('queries', i)}" for i in range(stack.api_instances)]

    def read(base: str) -> httpx.Response:  # a read of the views database (404: the view has no such order)
        return httpx.get(f"{base}/orders/no-such-order", headers=auth, timeout=10)

    for base in instances:  # every instance holds a pooled connection now
        assert read(base).status_code == 404
    admin = create_engine(db_url(stack, "views", "admin"), pool_size=1)
    try:
        with admin.connect() as conn:
            cut = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE datname = 'views' AND usename = :role"),
                               {"role": role_name("views", "reader")}).scalar_one()
    finally:
        admin.dispose()
    assert cut >= len(instances)
    for base in instances:
        for _ in range(3):
            resp = read(base)
            assert resp.status_code == 404, (base, resp.status_code, resp.text)
            assert resp.json()["error"] == "not_found"
