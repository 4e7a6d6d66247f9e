"""A real orders API instance under more concurrent writes than it completes in time: it answers the excess at once
with 429 + Retry-After, never 5xx, and every write it accepted is in the database."""
from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, text

from walsaga.client import Gateway, bearer
from walsaga.stack import apps, procs
from walsaga.stack.config import REPO, StackConfig, db_url, token_public_key

pytestmark = pytest.mark.stack

ORDER = {"customer_id": "c-admission", "items": [{"sku": "sku-admission", "quantity": 1, "unit_price": "3.00"}],
         "currency": "USD", "payment_method": "pm_card_visa"}


@pytest.fixture()
def strict_instance(stack: StackConfig, gateway: Gateway) -> Iterator[tuple[str, str]]:
    """An extra orders API instance whose latency target is 0 ms: every write counts as slow, so its limit sits at
    the floor (2 writes at once) after a few writes."""
    gateway.set_stock("sku-admission", 0, unit_price="3.00")
    name, port = "orders-api-admission", stack.ports.api("orders", 7)
    env = {**apps.base_env(stack), "WALSAGA_DB_URL": db_url(stack, "orders"), "WALSAGA_INSTANCE": "admission",
           "WALSAGA_ADMISSION_TARGET_MS": "0", "WALSAGA_TOKEN_PUBLIC_KEY": token_public_key(stack)}
    procs.start(stack, name, [sys.executable, "-m", "services.orders.main", "api", "--port", str(port)], env, cwd=REPO)
    try:
        procs.wait_for(name, lambda: apps.healthy(port), timeout=60, log=stack.logs / f"{name}.log")
        yield f"http://127.0.0.1:{port}", name
    finally:
        procs.stop(stack, name)


def test_an_overloaded_instance_answers_429_early_and_loses_nothing(strict_instance: tuple[str, str],
                                                                    engines: dict[str, Engine],
                                                                    gateway: Gateway) -> None:
    url, _ = strict_instance

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(gateway.token)) as client:
            return list(await asyncio.gather(*(
                client.post("/orders", json=ORDER, headers={"Idempotency-Key": str(uuid.uuid4())})
                for _ in range(30))))

    first = asyncio.run(burst())  # teaches the limit that writes are slow
    answers = first + asyncio.run(burst())
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {202, 429}, statuses
    refused = [r for r in answers if r.status_code == 429]
    assert refused, statuses
    assert all(r.headers["retry-after"] == "1" and r.json()["error"] == "overloaded" for r in refused)
    accepted = [r.json()["order_id"] for r in answers if r.status_code == 202]
    with engines["orders"].connect() as c:
        stored = c.execute(text("SELECT count(*) FROM orders WHERE order_id = ANY(:ids)"), {"ids": accepted}).scalar()
    assert stored == len(accepted)
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'walsaga_admission_rejected_total{service="orders",instance="admission"}' in metrics
    limit = float(next(line.split()[-1] for line in metrics.splitlines()
                       if line.startswith('walsaga_admission_limit{service="orders",instance="admission"}')))
    assert limit < 16, metrics  # shrunk from where it starts: the writes were slower than the target
