"""When no instance of a service can answer, the gateway says so the way the APIs do when their database is down: a
503 with a reason and Retry-After, which a client retries with its idempotency key (not a bare 502)."""
from __future__ import annotations

import pytest

from walsaga.client import Gateway
from walsaga.stack import apps, procs
from walsaga.stack.config import StackConfig

pytestmark = pytest.mark.stack


def test_no_instance_left_answers_503_with_retry_after(stack: StackConfig, gateway: Gateway) -> None:
    names = [f"inventory-api-{i}" for i in range(stack.api_instances)]
    for name in names:
        procs.stop(stack, name)
    try:
        for resp in (gateway.http.get("/inventory/sku-no-instance"),
                     gateway.http.put("/inventory/sku-no-instance", json={"available": 1, "unit_price": "1.00"})):
            assert resp.status_code == 503, (resp.request.method, resp.status_code, resp.text)
            assert resp.headers["Retry-After"] == "2"
            problem = resp.json()
            assert (problem["status"], problem["error"]) == (503, "unavailable")
            assert "retry later" in problem["detail"]
    finally:
        for i in range(stack.api_instances):
            apps.start_api(stack, "inventory", i)
    assert gateway.set_stock("sku-no-instance", 1, unit_price="1.00")["available"] == 1
