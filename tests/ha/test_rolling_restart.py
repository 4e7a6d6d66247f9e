"""A rolling restart of the HA profile's stack (walsaga/stack/rolling.py, `walsaga restart --ha --rolling`: what an
upgrade does) under a steady order load: every node of the chosen tiers restarted one at a time, the clients
retrying with their idempotency keys, then the fault suite's invariants I1-I4 over every order placed meanwhile.

CI restarts the database tiers (WALSAGA_ROLLING_TIERS unset: the Patroni pairs with a switchover each, etcd, the
database proxies); `make faults-ha` restarts every tier and writes the report."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from tests.faults.conftest import CaseResult
from tests.faults.harness import check_invariants, counters, delta, drain, make_batch, settle
from walsaga.stack import rolling

pytestmark = pytest.mark.stack
CI_TIERS = ("databases", "etcd", "db-proxies")
ORDER_EVERY_S = 0.5


def test_rolling_restart_under_load(ctx: Any) -> None:
    stack, gateway, engines, slots, report = ctx
    tiers = tuple(os.environ.get("WALSAGA_ROLLING_TIERS", " ".join(CI_TIERS)).split())
    if tiers == ("all",):
        tiers = rolling.TIERS
    before = counters(engines)
    batch = make_batch(stack, gateway, n=5000, hot_stock=(150, 150, 150))  # enough to confirm most of them
    done = threading.Event()
    submitted: list[Future[None]] = []

    def load() -> None:
        with ThreadPoolExecutor(8) as pool:
            for spec in batch.specs:
                if done.is_set():
                    break
                submitted.append(pool.submit(batch.submit, spec))
                time.sleep(ORDER_EVERY_S)

    loader = threading.Thread(target=load, name="rolling-load")
    loader.start()
    time.sleep(5)  # orders in flight before the first node goes
    started = time.monotonic()
    try:
        restarted = rolling.run(stack, tiers)
    finally:
        time.sleep(5)  # and after the last one is back
        done.set()
        loader.join()
    for future in submitted:
        future.result()  # every order accepted (Batch.submit retries through the outages, 120 s per order)
    batch.specs = batch.specs[:len(submitted)]
    statuses = settle(batch, engines, timeout=300)
    drain(stack, slots)
    outcome = check_invariants(batch, engines, statuses)
    after = counters(engines)
    slowest = max(restarted, key=lambda r: r[1])
    report.add(CaseResult(
        case=f"HA 10. rolling restart of {', '.join(tiers)}, one node at a time, under {1 / ORDER_EVERY_S:.0f} "
             "orders/s", orders=len(batch.order_ids), in_flight_at_fault=0, outcomes=dict(outcome.statuses),
        parked=outcome.parked, dedup_hits=delta(after, before, ":duplicates"),
        transient_retries=delta(after, before, ":transient_retries"),
        dead_letters=delta(after, before, ":dead_letters"), deadline_resends=delta(after, before, ":deadline_retries"),
        recovery_s=time.monotonic() - started,
        evidence=f"{len(restarted)} nodes restarted in turn ({', '.join(n for n, _ in restarted)}); slowest "
                 f"{slowest[0]} {slowest[1]:.0f} s; {batch.unavailable_answers} answers the clients retried; "
                 f"every one of {len(batch.order_ids)} orders accepted and its saga ended"))
