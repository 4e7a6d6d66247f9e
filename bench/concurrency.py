"""The 10,000-concurrent-clients run: wrk holds `clients` connections open through the gateway, each one a client
that writes as fast as it is answered (most place orders on a few hot SKUs for a few hot customers, the rest cancel
orders placed before the run, so cancels collide), while an open-loop reader measures GET /orders/{id} latency.
Afterwards the databases are compared with what the clients were told: every 202 must have its effect (zero lost
updates), and each order may have been cancelled once (the later cancels must have been answered 409)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

from bench import gateway_log
from bench.loadgen import run_reads
from bench.measure import percentiles, stack_rss_mib
from services.common.auth import Role
from walsaga.client import Gateway, bearer
from walsaga.stack.config import REPO, StackConfig
from walsaga.stack.procs import raise_open_files

LUA = REPO / "bench" / "wrk" / "load.lua"
HOT_SKUS = 4
TARGETS = 400          # orders placed before the run: cancelled and read during it
CANCEL_SHARE = 0.2     # of the clients
READS_PER_S = 100
# The harness and its reader run above the stack's priority (make bench renices itself): the clients stand in for
# machines of their own, so a starved load generator must not pass its own delays off as the server's. wrk goes back
# to the stack's priority: the writers load the server, the reader observes it.
CLIENT_NICE = -10


def as_client() -> None:
    """This process at the clients' priority (absolute, so calling it twice changes nothing; skipped without root):
    at nice 0 on a saturated box the open-loop writer measured its own starvation (POST p50 7-23 s at 75-100/s while
    the gateway timed every POST within 1.3 s; docs/benchmarks/FINDINGS.md)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, CLIENT_NICE)
    except PermissionError:
        pass


@dataclass
class ConcurrencyReport:
    clients: int
    seconds: float
    orders: dict[str, Any] = field(default_factory=dict)    # wrk's statuses, errors, latency for the order writers
    cancels: dict[str, Any] = field(default_factory=dict)   # ... for the cancelling clients
    reads: dict[str, Any] = field(default_factory=dict)     # open-loop reader: statuses and latency percentiles
    server_errors: int = 0                                  # 5xx answers of any kind
    lost_orders: int = 0             # 202 answers without an order row
    unanswered_orders: int = 0       # order rows whose client got no 202 (an error or a timeout; its retry replays)
    lost_cancels: int = 0            # 202 cancels without a cancelled order
    unanswered_cancels: int = 0      # cancelled orders whose canceller got no 202
    orders_per_s: float = 0.0
    stack_rss_mib: float = 0.0       # at the end of the run, with every client connected
    # the gateway's own view (its access log, bench/gateway_log.py): reads of one order and every write, with
    # nginx's request time and the API's upstream time, during the run
    gateway: dict[str, Any] = field(default_factory=dict)


TARGET_ATTEMPTS = 30


async def _place_targets(gw: Gateway, run_id: str, sku: str, n: int) -> list[str]:
    sem = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=60, headers=bearer(gw.token)) as client:
        async def one(i: int) -> str:
            async with sem:
                for _ in range(TARGET_ATTEMPTS):  # as a client would: an overloaded gateway's 429 is retried
                    resp = await client.post("/orders", headers={"Idempotency-Key": f"{run_id}-target-{i}"}, json={
                        "customer_id": f"wrk-{run_id}-target", "currency": "USD", "payment_method": "pm_card_visa",
                        "items": [{"sku": sku, "quantity": 1, "unit_price": "9.99"}]})
                    if resp.status_code not in (409, 429, 503):  # 409: the same key still in flight
                        break
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                resp.raise_for_status()
                return str(resp.json()["order_id"])
        return list(await asyncio.gather(*(one(i) for i in range(n))))


def _wait_readable(gw: Gateway, order_ids: list[str], timeout: float, say: Any) -> None:
    """The read model must know the targets before reads of them mean anything."""
    deadline = time.monotonic() + timeout
    missing = list(order_ids)
    while missing and time.monotonic() < deadline:
        missing = [o for o in missing if gw.http.get(f"/orders/{o}").status_code != 200]
        if missing:
            say(f"  waiting for the read model: {len(missing)} of {len(order_ids)} orders not there yet")
            time.sleep(2)


def _wrk(cfg: StackConfig, mode: str, connections: int, threads: int, seconds: float, env: dict[str, str]
         ) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["nice", "-n", str(-CLIENT_NICE), "wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s",
         "--timeout", "60s", "-s", str(LUA), cfg.gateway_url],
        env={**env, "WALSAGA_WRK_MODE": mode}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wrk_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate()
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            return dict(json.loads(line[len("WRK_JSON "):]))
    raise RuntimeError(f"wrk printed no result:\n{out}")


def run_concurrency(cfg: StackConfig, orders_db: Engine, clients: int, seconds: float, tmp: Path, say: Any,
                    targets_n: int = TARGETS, reads_per_s: float = READS_PER_S) -> ConcurrencyReport:
    gw = Gateway.as_(cfg, role=Role.OPERATOR, timeout=60)  # places and cancels orders on the customers' behalf
    admin = Gateway.as_(cfg, timeout=60)
    run_id = uuid.uuid4().hex[:6]
    skus = [f"hot-{run_id}-{i}" for i in range(HOT_SKUS)]
    for sku in skus:
        admin.set_stock(sku, 10**9)
    limit = raise_open_files(clients * 2 + 4096)
    say(f"{clients} concurrent clients for {seconds:g}s (file limit {limit}); placing {targets_n} orders to cancel "
        "and read ...")
    targets = asyncio.run(_place_targets(gw, run_id, skus[0], targets_n))
    _wait_readable(gw, targets, timeout=300, say=say)
    target_file = tmp / f"wrk-targets-{run_id}.txt"
    target_file.write_text("\n".join(targets) + "\n")
    env = {"PATH": "/usr/bin:/bin", "WALSAGA_WRK_RUN": run_id, "WALSAGA_WRK_SKUS": ",".join(skus),
           "WALSAGA_WRK_ORDERS": str(target_file), "WALSAGA_WRK_TOKEN": gw.token}
    cancellers = max(1, int(clients * CANCEL_SHARE))
    access_log, error_log = cfg.logs / "nginx-access.log", cfg.logs / "nginx-error.log"
    log_mark = access_log.stat().st_size if access_log.exists() else 0
    error_mark = error_log.stat().st_size if error_log.exists() else 0
    say(f"  wrk: {clients - cancellers} clients placing orders, {cancellers} cancelling, reads at {reads_per_s:g}/s")
    procs = {"order": _wrk(cfg, "order", clients - cancellers, 2, seconds, env),
             "cancel": _wrk(cfg, "cancel", cancellers, 1, seconds, env)}
    reads = asyncio.run(run_reads(gw, reads_per_s, seconds, targets))
    rss = stack_rss_mib(cfg)
    results = {mode: _wrk_result(proc) for mode, proc in procs.items()}
    gateway: dict[str, Any] = {kind: asdict(summary)
                               for kind, summary in gateway_log.by_kind(access_log, log_mark).items()}
    gateway["errors"] = gateway_log.error_reasons(error_log, error_mark)
    with orders_db.connect() as conn:
        placed = conn.execute(text("SELECT count(*) FROM orders WHERE customer_id LIKE :p"),
                              {"p": f"wrk-{run_id}-c%"}).scalar_one()
        cancelled = conn.execute(text(
            "SELECT count(*) FROM orders WHERE order_id = ANY(:ids) AND (status = 'CANCELLING' OR "
            "(status = 'CANCELLED' AND cancel_reason = 'CUSTOMER_CANCELLED'))"), {"ids": targets}).scalar_one()
    accepted, cancel_accepted = results["order"]["statuses"].get("202", 0), results["cancel"]["statuses"].get("202", 0)
    report = ConcurrencyReport(
        clients, seconds, results["order"], results["cancel"],
        {"statuses": reads.statuses, "latency_ms": percentiles(reads.latencies_ms),
         "send_lag_ms": percentiles(reads.send_lag_ms)},
        server_errors=sum(n for r in results.values() for s, n in r["statuses"].items() if int(s) >= 500)
        + sum(n for s, n in reads.statuses.items() if s.isdigit() and int(s) >= 500),
        gateway=gateway,
        lost_orders=max(0, accepted - placed), unanswered_orders=max(0, placed - accepted),
        lost_cancels=max(0, cancel_accepted - cancelled), unanswered_cancels=max(0, cancelled - cancel_accepted),
        orders_per_s=round(placed / seconds, 1), stack_rss_mib=rss)
    say(f"  {placed} orders placed ({report.orders_per_s}/s), {cancelled} cancelled; 5xx {report.server_errors}, "
        f"lost orders {report.lost_orders}, lost cancels {report.lost_cancels}; read p99 "
        f"{report.reads['latency_ms']['p99']} ms (at the gateway: "
        f"{gateway['reads']['request_ms'].get('p99')} ms; writes max {gateway['writes']['request_ms'].get('max')} ms)")
    return report
