"""The APIs' adaptive admission limit for writes (services/common/admission.py): pure, with the clock passed in."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from services.common.admission import AdmissionMiddleware, AimdLimit, metrics


def test_writes_over_the_limit_are_refused_until_one_completes() -> None:
    limit = AimdLimit(limit=2)
    assert limit.try_acquire() and limit.try_acquire()
    assert not limit.try_acquire() and limit.rejected == 1
    limit.release(0.01, now=1.0)
    assert limit.try_acquire()


def test_slow_writes_shrink_the_limit_once_per_cooldown_down_to_the_floor() -> None:
    limit = AimdLimit(limit=16, min_limit=2, backoff=0.5, cooldown_s=1.0, target_s=0.5)
    for _ in range(3):
        limit.try_acquire()
    limit.release(2.0, now=10.0)
    limit.release(2.0, now=10.5)  # the same overload, within the cooldown: one signal
    assert limit.limit == 8
    limit.release(2.0, now=11.0)
    assert limit.limit == 4
    for t in range(5):
        limit.try_acquire()
        limit.release(2.0, now=20.0 + t)
    assert limit.limit == 2  # never below the floor: an instance always admits some writes


def test_fast_writes_grow_a_limit_in_use_but_not_an_idle_one() -> None:
    limit = AimdLimit(limit=4, max_limit=5)
    limit.try_acquire()
    limit.release(0.01, now=1.0)  # 1 in flight of 4: the limit is not what holds anything back
    assert limit.limit == 4
    for _ in range(40):
        for _ in range(4):
            limit.try_acquire()
        for _ in range(4):
            limit.release(0.01, now=2.0)
    assert limit.limit == 5  # grew while busy, up to the ceiling


class _App:
    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.gate.wait()
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def test_the_middleware_answers_429_with_retry_after_and_never_limits_reads() -> None:
    async def scenario() -> list[Any]:
        app, limit = _App(), AimdLimit(limit=2)
        mw = AdmissionMiddleware(app, limit, clock=lambda: 0.0)
        sent: list[list[dict[str, Any]]] = []

        async def request(method: str) -> None:
            out: list[dict[str, Any]] = []
            sent.append(out)

            async def send(m: dict[str, Any]) -> None:
                out.append(m)
            await mw({"type": "http", "method": method, "path": "/orders"}, None, send)  # type: ignore[arg-type]

        writes = [asyncio.create_task(request("POST")) for _ in range(3)]
        reads = [asyncio.create_task(request("GET")) for _ in range(3)]
        # until every request has reached the middleware (two writes held in the app, the third refused)
        deadline = time.monotonic() + 5
        while (app.calls < 5 or limit.rejected < 1) and time.monotonic() < deadline:
            await asyncio.sleep(0)
        refused = [s for s in sent if s and s[0]["status"] == 429]
        app.gate.set()
        await asyncio.gather(*writes, *reads)
        return [refused, app.calls, limit]

    refused, calls, limit = asyncio.run(scenario())
    assert len(refused) == 1
    assert (b"retry-after", b"1") in refused[0][0]["headers"]
    assert b"overloaded" in refused[0][1]["body"]
    assert calls == 5  # two writes and all three reads reached the app
    assert limit.in_flight == 0 and limit.admitted == 2 and limit.rejected == 1


def test_metrics_name_the_instance() -> None:
    lines = metrics(AimdLimit(limit=8), "orders", "1")
    assert 'walsaga_admission_limit{service="orders",instance="1"} 8.0' in lines
    assert 'walsaga_admission_rejected_total{service="orders",instance="1"} 0' in lines
