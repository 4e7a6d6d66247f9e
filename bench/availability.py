"""`make availability`: the HA profile's stack under 10 minutes of open-loop orders and reads, with one fault every
60 s in rotation (bench/faults.py). Clients behave like real ones: a write that gets a 5xx, a timeout or a refused
connection is retried with the same Idempotency-Key (a 429 after its Retry-After). Reported
(docs/reliability/AVAILABILITY.md): the share of requests answered without a 5xx or timeout, per attempt and per
order after the retries, what each fault cost, saga latency, and that nothing was lost or doubled: every accepted
order's saga ended, and `walsaga reconcile` finds no divergence."""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import create_engine, text

from bench import faults
from bench.availability_report import write
from bench.measure import order_created_at, percentiles, saga_ends, wait_settled
from reconciliation import scan
from reconciliation.run import reconcile
from services.common.auth import Role
from walsaga.client import Gateway, bearer, issue_token
from walsaga.stack import lifecycle, procs
from walsaga.stack.config import REPO, Ports, StackConfig, db_url

OUT = REPO / "docs" / "reliability"
SKUS = [f"avail-{i}" for i in range(20)]
ATTEMPTS = 5            # per write, the first included
TIMEOUT_S = 10.0        # per attempt: an answer later than this counts as a timeout
HEAL_AFTER_S = 30.0     # a killed process is started again this long after the kill
SETTLE_S = 20.0         # the next fault comes no sooner than this after the previous one healed


@dataclass(frozen=True)
class Plan:
    seconds: float = 600.0
    order_rate: float = 8.0
    read_rate: float = 20.0
    fault_every_s: float = 60.0
    first_fault_at_s: float = 30.0


@dataclass
class Attempt:
    at: float        # seconds since the run started
    kind: str        # "write" or "read"
    # "ok" (a write's 202, a read's answer below 500), "4xx:<code>" (answered; a write then retries on 409 and 429,
    # and gives up on any other), "5xx:<code>", "timeout", "connection" (the last three: not available)
    outcome: str


UNAVAILABLE = ("5xx", "timeout", "connection")


@dataclass
class Run:
    attempts: list[Attempt] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    accepted_at: dict[str, float] = field(default_factory=dict)  # order id -> when its write was sent
    failed_orders: list[str] = field(default_factory=list)  # keys that got no answer in ATTEMPTS tries
    faults: list[dict[str, Any]] = field(default_factory=list)


def say(msg: str) -> None:
    print(f"availability: {msg}", file=sys.stderr, flush=True)


def availability_config() -> StackConfig:
    """The HA profile (3 KRaft nodes, 2 Connect workers, two of every worker) in a home and on ports of its own."""
    return replace(StackConfig.from_env(ha=True), home=REPO / ".stack" / "availability-home", ports=Ports(4000))


def _outcome(status: int, ok: tuple[int, ...]) -> str:
    if status >= 500:
        return f"5xx:{status}"
    return "ok" if status in ok or not ok else f"4xx:{status}"


def unavailable(a: Attempt) -> bool:
    return a.outcome.startswith(UNAVAILABLE)


async def _write(session: aiohttp.ClientSession, base: str, i: int, t0: float, run: Run) -> None:
    key = str(uuid.uuid4())
    body = {"customer_id": f"avail-{i % 50}", "currency": "USD",
            "payment_method": "pm_card_visa" if i % 10 else "pm_card_chargeDeclined",
            "items": [{"sku": SKUS[i % len(SKUS)], "quantity": 1, "unit_price": "9.99"}]}
    delay = 0.5
    for _ in range(ATTEMPTS):
        at = time.monotonic() - t0
        retry_after = delay
        try:
            async with session.post(f"{base}/orders", json=body, headers={"Idempotency-Key": key}) as resp:
                payload = await resp.read()
                outcome = _outcome(resp.status, ok=(202,))
                if resp.status == 202:
                    order_id = json.loads(payload)["order_id"]
                    run.accepted[key] = order_id
                    run.accepted_at.setdefault(order_id, at)
                elif resp.status < 500 and resp.status not in (409, 429):
                    run.attempts.append(Attempt(at, "write", outcome))
                    run.failed_orders.append(key)  # refused for good: a client bug, not an outage
                    return
                retry_after = float(resp.headers.get("Retry-After", delay))
        except TimeoutError:
            outcome = "timeout"
        except aiohttp.ClientError:
            outcome = "connection"
        run.attempts.append(Attempt(at, "write", outcome))
        if outcome == "ok":
            return
        await asyncio.sleep(retry_after)
        delay = min(delay * 2, 4.0)
    run.failed_orders.append(key)


async def _read(session: aiohttp.ClientSession, base: str, t0: float, run: Run) -> None:
    recent = list(run.accepted.values())[-200:]
    path = f"/orders/{random.choice(recent)}" if recent else "/orders?customer_id=avail-0"
    at = time.monotonic() - t0
    try:
        async with session.get(f"{base}{path}") as resp:
            await resp.read()
            outcome = _outcome(resp.status, ok=())
    except TimeoutError:
        outcome = "timeout"
    except aiohttp.ClientError:
        outcome = "connection"
    run.attempts.append(Attempt(at, "read", outcome))


async def _load(cfg: StackConfig, plan: Plan, run: Run, t0: float) -> None:
    base = cfg.gateway_url
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    # an operator's token: it places and reads orders on the simulated customers' behalf
    headers = bearer(issue_token(cfg, "walsaga-availability", Role.OPERATOR, ttl_s=24 * 3600))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout,
                                     headers=headers) as session:
        tasks: list[asyncio.Task[None]] = []
        writes, reads = int(plan.order_rate * plan.seconds), int(plan.read_rate * plan.seconds)
        schedule = sorted([(i / plan.order_rate, "w", i) for i in range(writes)] +
                          [(i / plan.read_rate, "r", i) for i in range(reads)])
        for offset, what, i in schedule:
            delay = t0 + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_write(session, base, i, t0, run) if what == "w"
                                             else _read(session, base, t0, run)))
        await asyncio.gather(*tasks)


def _inject_all(cfg: StackConfig, plan: Plan, run: Run, t0: float, stop: threading.Event) -> None:
    """The fault schedule, in its own thread: inject, wait HEAL_AFTER_S, heal, until the load ends. A fault is due
    every fault_every_s, but never sooner than SETTLE_S after the previous one healed (a restarted Faust worker can
    take a minute to be ready): each fault meets a healed stack."""
    k, healed = 0, 0.0
    while True:
        due = max(t0 + plan.first_fault_at_s + k * plan.fault_every_s, healed + SETTLE_S)
        if stop.wait(max(0.0, due - time.monotonic())) or due - t0 > plan.seconds - plan.fault_every_s / 2:
            return
        fault = faults.ROTATION[k % len(faults.ROTATION)]
        entry: dict[str, Any] = {"fault": fault.name, "at_s": round(time.monotonic() - t0, 1)}
        say(f"t={entry['at_s']:.0f}s fault {k + 1}: {fault.name}")
        try:
            entry["target"], heal = fault.inject(cfg)
            stop.wait(max(0.0, t0 + entry["at_s"] + HEAL_AFTER_S - time.monotonic()))
            heal()
            entry["healed_at_s"] = round(time.monotonic() - t0, 1)
            healed = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - a fault that could not be injected is reported, not fatal
            entry["error"] = f"{type(exc).__name__}: {exc}"
            say(f"fault {k + 1} failed: {entry['error']}")
        run.faults.append(entry)
        k += 1


def summarize(run: Run, plan: Plan) -> dict[str, Any]:
    """Availability per attempt and per order, and what each fault's window cost."""
    def share(kind: str, attempts: list[Attempt]) -> dict[str, Any]:
        mine = [a for a in attempts if a.kind == kind]
        bad = Counter(a.outcome for a in mine if unavailable(a))
        answered = len(mine) - sum(bad.values())
        return {"attempts": len(mine), "failed": dict(bad),
                "available_pct": round(100 * answered / len(mine), 3) if mine else None}

    per_fault = []
    for f, (start, end) in zip(run.faults, windows(run, plan), strict=True):
        inside = [a for a in run.attempts if start <= a.at < end]
        failing = [a.at for a in inside if a.kind == "write" and unavailable(a)]
        per_fault.append({**f, "window_s": [start, end], "writes": share("write", inside),
                          "reads": share("read", inside),
                          "write_outage_s": round(failing[-1] - failing[0], 1) if failing else 0.0})
    orders = len(run.accepted) + len(run.failed_orders)
    return {"writes": share("write", run.attempts), "reads": share("read", run.attempts),
            "orders": orders, "accepted": len(run.accepted), "unanswered_after_retries": len(run.failed_orders),
            "orders_available_pct": round(100 * len(run.accepted) / orders, 3) if orders else None,
            "faults": per_fault}


def windows(run: Run, plan: Plan) -> list[tuple[float, float]]:
    """Each fault's window: from the fault until the next one, at most fault_every_s."""
    starts = [f["at_s"] for f in run.faults]
    return [(s, min(s + plan.fault_every_s, nxt)) for s, nxt in zip(starts, [*starts[1:], float("inf")], strict=True)]


def saga_ms_by_window(run: Run, plan: Plan, latency_ms: dict[str, float]) -> list[dict[str, float]]:
    """Saga latency of the orders placed in each fault's window: what the fault cost the asynchronous path."""
    out = []
    for start, end in windows(run, plan):
        out.append(percentiles(ms for o, ms in latency_ms.items() if start <= run.accepted_at.get(o, -1) < end))
    return out


def check(cfg: StackConfig, run: Run, plan: Plan) -> dict[str, Any]:
    """After the load: every accepted order's saga ends, nothing is lost or doubled (reconcile finds nothing)."""
    engines = {db: create_engine(db_url(cfg, db), pool_size=2) for db in scan.SOURCES}
    try:
        ids = sorted(set(run.accepted.values()))
        say(f"waiting for the sagas of {len(ids)} accepted orders to end ...")
        still_open = wait_settled(engines["saga"], ids, timeout=600)
        created, ended = order_created_at(engines["orders"], ids), saga_ends(engines["saga"], ids)
        latency_ms = {o: (ended[o] - created[o]).total_seconds() * 1000 for o in ended if o in created}
        with engines["orders"].connect() as conn:
            stored = set(conn.execute(text("SELECT order_id FROM orders WHERE customer_id LIKE 'avail-%'")).scalars())
            outcomes = {f"{r.status}{' ' + r.cancel_reason if r.cancel_reason else ''}": r.n for r in conn.execute(
                text("SELECT status, cancel_reason, count(*) AS n FROM orders WHERE customer_id LIKE 'avail-%' "
                     "GROUP BY 1, 2 ORDER BY 3 DESC"))}
        time.sleep(cfg.reconcile_grace)
        report = reconcile(scan.Sources(**engines), cfg.home / "reconciliation", grace_s=0.0,
                           channels=("log",), saga_sla_s=600.0)
        return {"accepted_orders": len(ids),
                # an accepted order the orders database does not have: lost
                "accepted_not_stored": len(set(ids) - stored),
                # an order no client answer names: a retry that created a second order (doubled), or a request
                # that never got an answer (at most unanswered_after_retries of them)
                "stored_not_accepted": len(stored - set(ids)),
                "sagas_not_ended": still_open, "saga_ms": percentiles(latency_ms.values()),
                "saga_ms_by_window": saga_ms_by_window(run, plan, latency_ms), "order_outcomes": outcomes,
                "divergences": report.total, "divergences_by_kind": dict(report.by_kind)}
    finally:
        for engine in engines.values():
            engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.availability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=Plan.seconds)
    parser.add_argument("--order-rate", type=float, default=Plan.order_rate)
    parser.add_argument("--read-rate", type=float, default=Plan.read_rate)
    parser.add_argument("--keep", action="store_true", help="leave the stack running (and its data) afterwards")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    plan = Plan(args.seconds, args.order_rate, args.read_rate)
    cfg = availability_config()
    lifecycle.wipe(cfg)
    try:
        lifecycle.up(cfg)
        gw = Gateway.as_(cfg)
        for sku in SKUS:
            gw.set_stock(sku, 1_000_000)
        run = Run()
        stop = threading.Event()
        say(f"{plan.seconds:.0f} s of {plan.order_rate:g} orders/s and {plan.read_rate:g} reads/s; a fault every "
            f"{plan.fault_every_s:.0f} s from t={plan.first_fault_at_s:.0f}s, healed after {HEAL_AFTER_S:.0f} s")
        t0 = time.monotonic() + 1.0
        injector = threading.Thread(target=_inject_all, args=(cfg, plan, run, t0, stop), daemon=True)
        injector.start()
        progress = threading.Thread(target=_progress, args=(run, plan, t0, stop), daemon=True)
        progress.start()
        asyncio.run(_load(cfg, plan, run, t0))
        stop.set()
        injector.join(timeout=HEAL_AFTER_S + 120)
        results = {"plan": plan.__dict__, "heal_after_s": HEAL_AFTER_S, "settle_s": SETTLE_S,
                   "attempts_per_write": ATTEMPTS, "timeout_s": TIMEOUT_S, "summary": summarize(run, plan),
                   "checks": check(cfg, run, plan)}
        write(cfg, results, args.out)
        say(f"report written to {args.out / 'AVAILABILITY.md'}")
    finally:
        if not args.keep:
            lifecycle.wipe(cfg)
    return 0


def _progress(run: Run, plan: Plan, t0: float, stop: threading.Event) -> None:
    while not stop.wait(30.0):
        bad = sum(1 for a in run.attempts if unavailable(a))
        say(f"t={time.monotonic() - t0:.0f}/{plan.seconds:.0f}s: {len(run.attempts)} requests, {bad} failed, "
            f"{len(run.accepted)} orders accepted")


if __name__ == "__main__":
    procs.renice(10)  # the load generator stands in for client machines: the stack comes first
    sys.exit(main())
