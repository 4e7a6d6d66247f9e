"""Open-loop load: requests leave at scheduled instants whatever the server does, and each latency is measured from
its scheduled instant (not from when a busy client got around to sending it), so coordinated omission cannot hide a
slow server."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from walsaga.client import Gateway, bearer


@dataclass
class StepResult:
    rate: float
    duration: float
    accepted: list[str] = field(default_factory=list)     # order ids
    errors: dict[str, int] = field(default_factory=dict)  # status or exception name -> count
    accept_latencies_ms: list[float] = field(default_factory=list)
    send_lag_ms: list[float] = field(default_factory=list)  # how late the client sent vs. its schedule


async def _one(session: aiohttp.ClientSession, url: str, scheduled: float, body: dict, result: StepResult) -> None:
    result.send_lag_ms.append((time.perf_counter() - scheduled) * 1000)
    try:
        async with session.post(url, json=body, headers={"Idempotency-Key": str(uuid.uuid4())}) as resp:
            status = resp.status
            order_id = (await resp.json())["order_id"] if status == 202 else None
            await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
        return
    result.accept_latencies_ms.append((time.perf_counter() - scheduled) * 1000)
    if order_id is not None:
        result.accepted.append(order_id)
    else:
        result.errors[str(status)] = result.errors.get(str(status), 0) + 1


async def run_step(gw: Gateway, rate: float, duration: float, skus: list[str]) -> StepResult:
    """Open-loop POST /orders. aiohttp, as for the reads (run_reads): past the knee httpx's pool queued the writes
    inside the client for seconds (POST p50 21 s from the schedule at 100/s while the gateway timed them at p99
    450 ms), so the client, not the server, set the latency."""
    result = StepResult(rate, duration)
    url = f"{gw.base_url}/orders"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30),
                                     headers=bearer(gw.token)) as session:
        await open_loop(rate, duration, lambda i, scheduled: _one(session, url, scheduled, order_body(i, skus), result))
    return result


def order_body(i: int, skus: list[str]) -> dict:
    """The i-th order of a step: 100 customers, the SKUs in turn, every 10th paid with a card that is declined."""
    return {"customer_id": f"bench-{i % 100}", "currency": "USD",
            "payment_method": "pm_card_visa" if i % 10 else "pm_card_chargeDeclined",
            "items": [{"sku": skus[i % len(skus)], "quantity": 1, "unit_price": "9.99"}]}


async def open_loop(rate: float, duration: float, launch: Callable[[int, float], Coroutine[Any, Any, None]]) -> None:
    """Starts launch(i, scheduled) at start + i/rate for rate x duration requests, whatever the server does, and
    waits for all of them."""
    start = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[None]] = []
    for i in range(max(1, int(rate * duration))):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(launch(i, scheduled)))
    await asyncio.gather(*tasks)


@dataclass
class ReadResult:
    latencies_ms: list[float] = field(default_factory=list)  # from each read's scheduled instant
    send_lag_ms: list[float] = field(default_factory=list)   # how late the client sent vs. its schedule
    statuses: dict[str, int] = field(default_factory=dict)


async def run_reads(gw: Gateway, rate: float, duration: float, order_ids: list[str]) -> ReadResult:
    """Open-loop GET /orders/{id} at a fixed rate over the given orders (the read side's p99 under write load).
    aiohttp, not httpx: with thousands of writers slowing the box, httpx's pool spends its time scanning queued
    requests and the client, not the server, would set the latency."""
    result = ReadResult()

    async def one(session: aiohttp.ClientSession, scheduled: float, order_id: str) -> None:
        result.send_lag_ms.append((time.perf_counter() - scheduled) * 1000)
        try:
            async with session.get(f"{gw.base_url}/orders/{order_id}") as resp:
                await resp.read()
                key = str(resp.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            key = type(exc).__name__
        result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
        result.statuses[key] = result.statuses.get(key, 0) + 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30),
                                     headers=bearer(gw.token)) as session:
        await open_loop(rate, duration, lambda i, scheduled: one(session, scheduled, order_ids[i % len(order_ids)]))
    return result
