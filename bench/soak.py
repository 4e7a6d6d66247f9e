"""Soak: do the tables that retention bounds level off? (`make soak`, writes docs/benchmarks/SOAK.md)

Orders flow at a steady rate for a while on the benchmark's stack, whose retention is compressed (every keep times
WALSAGA_RETENTION_SCALE: a day of retention lasts 10 s here, so the 9-day inbox keep is 90 s and the 30-day history
keep 5 minutes) and pruned every 10 s. Each table's row count is sampled every 30 s: a bounded table climbs for
about its keep, then stays flat while the orders keep coming; a business table (orders, saga instances) grows with
them, by design. Only the databases' retention is compressed, not the topics': the run rewinds no consumer, so no
record is redelivered after its claim is gone."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from bench.concurrency import as_client
from bench.loadgen import run_step
from bench.run import bench_config
from services.common import retention
from stream_processors.saga import store as saga_store
from walsaga.client import Gateway
from walsaga.stack import lifecycle
from walsaga.stack.config import REPO, SERVICES, StackConfig, db_url

SCALE = 1 / 8640          # a day lasts 10 s
PRUNE_INTERVAL_S = 10.0
SAMPLE_EVERY_S = 30.0
OUT = REPO / "docs" / "benchmarks" / "SOAK.md"
# (database, table): what retention bounds; then business tables for contrast
BOUNDED = [(svc, table) for svc in SERVICES for table in ("outbox", "inbox", "idempotency_key")] + [
    ("saga", "inbox"), ("saga", "saga_history")]
GROWING = [("orders", "orders"), ("saga", "saga_instance")]
GROWTH_LIMIT = 0.10  # a bounded table may grow by at most this share of its level over the last third of the run


@dataclass
class Sample:
    at_s: float
    counts: dict[tuple[str, str], int]


def say(msg: str) -> None:
    print(f"soak: {msg}", file=sys.stderr, flush=True)


def count_rows(engines: dict[str, Engine]) -> dict[tuple[str, str], int]:
    counts = {}
    for db, table in BOUNDED + GROWING:
        with engines[db].connect() as conn:
            counts[(db, table)] = int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    return counts


def sample_until(engines: dict[str, Engine], t0: float, stop: threading.Event, out: list[Sample]) -> None:
    while True:
        out.append(Sample(time.monotonic() - t0, count_rows(engines)))
        s = out[-1]
        say(f"{s.at_s / 60:4.1f} min: " + ", ".join(f"{db}.{table} {s.counts[(db, table)]}"
                                                    for db, table in (("orders", "outbox"), ("payments", "inbox"),
                                                                      ("orders", "idempotency_key"),
                                                                      ("saga", "saga_history"), ("orders", "orders"))))
        if stop.wait(SAMPLE_EVERY_S):
            out.append(Sample(time.monotonic() - t0, count_rows(engines)))
            return


def verdict(samples: list[Sample], key: tuple[str, str]) -> tuple[str, float]:
    """("levelled off" | "growing" | "unused", change over the last third of the load as a share of its level
    there). The last sample, taken after the load stopped, is left out."""
    during = samples[:-1] if len(samples) > 2 else samples
    tail = [s for s in during if s.at_s >= during[-1].at_s * 2 / 3]
    first, last = tail[0].counts[key], tail[-1].counts[key]
    change = (last - first) / max(first, 1)
    if not any(s.counts[key] for s in samples):
        return "unused", change
    return ("levelled off" if change <= GROWTH_LIMIT else "growing"), change


def report(cfg: StackConfig, samples: list[Sample], rate: float, minutes: float, accepted: int,
           errors: dict[str, int]) -> str:
    keeps = {r.table: r.keep * SCALE for r in (*retention.SERVICE_RULES, *saga_store.RETENTION)}
    lines = [
        "# Soak: bounded tables level off",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make soak` (`python -m bench.soak --rate {rate:g} "
        f"--minutes {minutes:g}`) on the benchmark's stack. {accepted} orders accepted in {minutes:g} minutes at "
        f"{rate:g}/s (errors: {errors or 'none'}).",
        "",
        f"Retention compressed x{SCALE:.6f} (a day lasts {86400 * SCALE:.0f} s), pruned every "
        f"{PRUNE_INTERVAL_S:.0f} s by the command consumers and the orchestrator: outbox "
        f"{keeps['outbox'].total_seconds():.1f} s, idempotency keys {keeps['idempotency_key'].total_seconds():.0f} s, "
        f"inbox claims {keeps['inbox'].total_seconds():.0f} s, saga history "
        f"{keeps['saga_history'].total_seconds():.0f} s after the saga ended. Only the databases' retention is "
        "compressed; the topics keep theirs (no consumer is rewound in this run, so nothing is redelivered after "
        "its claim is gone). Row counts sampled every 30 s (the last one after the load stopped); a table has "
        f"**levelled off** when it grew by at most {GROWTH_LIMIT:.0%} of its level over the last third of the load "
        "(the outboxes drift down: a sample finds what arrived since the last prune, and the two timers drift "
        "apart). **unused**: no row in this run (the load writes through the orders API only, so the other "
        "services keep no idempotency keys).",
        "",
        "| table | " + " | ".join(f"{s.at_s / 60:.1f} min" for s in samples) + " | last third | verdict |",
        "|---|" + "---|" * (len(samples) + 2),
    ]
    for key in BOUNDED + GROWING:
        state, change = verdict(samples, key)
        expected = "bounded" if key in BOUNDED else "grows by design"
        lines.append(f"| {key[0]}.{key[1]} ({expected}) | " + " | ".join(str(s.counts[key]) for s in samples)
                     + f" | {change:+.0%} | {state} |")
    bounded_flat = all(verdict(samples, key)[0] != "growing" for key in BOUNDED)
    lines += ["", "Verdict: " + ("every bounded table levelled off while the orders kept coming."
                                 if bounded_flat else "NOT every bounded table levelled off (see the rows marked "
                                                      "growing).")]
    return "\n".join(lines) + "\n"


def soak_config() -> StackConfig:
    return replace(bench_config(), retention_scale=SCALE, prune_interval=PRUNE_INTERVAL_S)


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.soak")
    parser.add_argument("--rate", type=float, default=15.0, help="orders per second (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=12.0, help="how long (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    cfg = soak_config()
    as_client()  # the load generator stands in for client machines (bench/concurrency.py)
    lifecycle.wipe(cfg)
    try:
        lifecycle.up(cfg)
        gw = Gateway.as_(cfg)
        skus = [f"soak-{uuid.uuid4().hex[:6]}-{i}" for i in range(20)]
        for sku in skus:
            gw.set_stock(sku, 1_000_000)
        engines = {db: create_engine(db_url(cfg, db, "admin"), pool_size=1) for db in (*SERVICES, "saga")}
        samples: list[Sample] = []
        stop = threading.Event()
        t0 = time.monotonic()
        sampler = threading.Thread(target=sample_until, args=(engines, t0, stop, samples), daemon=True)
        sampler.start()
        say(f"{args.rate:g} orders/s for {args.minutes:g} minutes, retention x{SCALE:.6f}")
        step = asyncio.run(run_step(gw, args.rate, args.minutes * 60, skus))
        stop.set()
        sampler.join(60)
        args.out.write_text(report(cfg, samples, args.rate, args.minutes, len(step.accepted), step.errors))
        args.out.with_suffix(".json").write_text(json.dumps(
            [{"at_s": s.at_s, "counts": {f"{db}.{table}": n for (db, table), n in s.counts.items()}}
             for s in samples], indent=1))
        say(f"report written to {args.out}")
        for engine in engines.values():
            engine.dispose()
    finally:
        lifecycle.wipe(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
