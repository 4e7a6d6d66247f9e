"""docs/benchmarks/REPORT.md and results.json from one `make bench` run: the saga steps, the baselines, the
10,000-client run, and every target of the benchmark issue against what was measured."""
from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import charts
from bench.cost import Cost, statements_table
from bench.cost import table as cost_table
from cdc import connectors
from schemas import topics
from walsaga.stack.config import DEBEZIUM_VERSION, KAFKA_VERSION, StackConfig

# A step is sustained when at least this share of the offered rate completed, nothing was left unfinished and no
# backlog built up within it (saga p99 under a second: a queue that grew through a 20 s step shows as seconds).
SUSTAINED = 0.95
SUSTAINED_P99_MS = 1000.0


def meta(cfg: StackConfig) -> dict[str, str]:
    return {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)}"
                   f" GiB, {platform.machine()}, Python {platform.python_version()}",
        "versions": f"Kafka {KAFKA_VERSION}, Debezium {DEBEZIUM_VERSION}, PostgreSQL 15",
        "settings": f"synchronous_commit on; poll.interval.ms {connectors.identity('orders')[1]['poll.interval.ms']}; "
                    f"{topics.PARTITIONS} partitions per topic; {cfg.api_instances} API "
                    f"instances per service; {cfg.faust_instances} Faust worker; one command consumer per service; "
                    f"gateway admits {cfg.gateway_write_rate} writes/s and queues {cfg.gateway_write_queue}; "
                    f"request path at nice {cfg.edge_nice}, the read API at {cfg.read_nice}",
    }


def _sustained(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in steps if s["unfinished_after_drain"] == 0 and s["completed_per_s"] >= SUSTAINED *
            s["offered_per_s"] and s["saga_ms"]["p99"] <= SUSTAINED_P99_MS]


def targets(steps: list[dict[str, Any]], conc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows."""
    sustained = _sustained(steps)
    best = max((s["offered_per_s"] for s in sustained), default=0.0)
    peak = max((s["completed_per_s"] for s in steps), default=0.0)
    at_100 = [s for s in sustained if s["offered_per_s"] >= 100]
    hop = max((s["cdc_hop_ms"]["p50"] for s in sustained), default=float("nan"))
    rss = max([s["stack_rss_mib"] for s in steps] + [conc.get("stack_rss_mib", 0.0)])
    reads_p99 = conc["reads"]["latency_ms"]["p99"]

    def verdict(ok: bool, miss: str) -> str:
        return "met" if ok else f"missed: {miss}"

    return [
        ("≥ 300 completed sagas/s sustained", f"{best:g}/s sustained; {peak}/s at saturation",
         verdict(best >= 300, f"{300 / best:.0f}x short" if best else "nothing sustained")),
        ("saga p99 ≤ 500 ms at 100 sagas/s",
         f"{at_100[0]['saga_ms']['p99']} ms" if at_100 else "100/s not sustained",
         verdict(bool(at_100) and at_100[0]["saga_ms"]["p99"] <= 500, "100/s is past the knee")),
        ("CDC hop p50 ≤ 20 ms", f"{hop} ms (worst sustained step; sustained = ≥ 95 % completed, saga p99 ≤ 1 s)",
         verdict(hop <= 20, f"{hop - 20:.1f} ms over")),
        (f"{conc['clients']:,} concurrent clients: zero 5xx", f"{conc['server_errors']} 5xx",
         verdict(conc["server_errors"] == 0, f"{conc['server_errors']} 5xx")),
        (f"{conc['clients']:,} concurrent clients: zero lost updates",
         f"{conc['lost_orders']} orders, {conc['lost_cancels']} cancels lost",
         verdict(conc["lost_orders"] + conc["lost_cancels"] == 0, "updates lost")),
        ("GET p99 ≤ 50 ms during that run", f"{reads_p99} ms", verdict(reads_p99 <= 50, f"{reads_p99 / 50:.1f}x")),
        ("whole stack ≤ 6 GiB RSS", f"{rss:.0f} MiB (most of any step and the clients' run)",
         verdict(rss <= 6144, f"{rss - 6144:.0f} MiB over")),
    ]


def _at(steps: list[dict[str, Any]], rate: float) -> dict[str, Any] | None:
    return next((s for s in steps if s["offered_per_s"] == rate), None)


def cost_targets(steps: list[dict[str, Any]], dtm: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The cost issue's targets (CPU per saga, rate, latency, DTM, idle): (target, measured, verdict) rows."""
    def verdict(ok: bool, miss: str) -> str:
        return "met" if ok else f"missed: {miss}"

    sustained = _sustained(steps)
    best = max((s["offered_per_s"] for s in sustained), default=0.0)
    at10, at50 = _at(steps, 10), _at(steps, 50)
    cost10 = (at10 or {}).get("cost")
    rows: list[tuple[str, str, str]] = []
    if cost10:
        gross, net = cost10["total_gross_ms"], cost10["total_net_ms"]
        rows.append(("whole stack ≤ 25 CPU-ms per completed saga at 10/s", f"{gross} CPU-ms gross, {net} net of idle",
                     verdict(gross <= 25, f"{gross / 25:.1f}x")))
        idle = round(sum(cost10["idle_percent"].values()), 1)
        rows.append(("idle stack ≤ 20 % of one core", f"{idle} %", verdict(idle <= 20, f"{idle - 20:.1f} points over")))
    rows.append(("≥ 100 completed sagas/s sustained", f"{best:g}/s sustained",
                 verdict(best >= 100, f"{100 / best:.1f}x short" if best else "nothing sustained")))
    if at10:
        p50 = at10["saga_ms"]["p50"]
        rows.append(("saga p50 ≤ 100 ms at 10/s", f"{p50} ms", verdict(p50 <= 100, f"{p50 - 100:.0f} ms over")))
    rows.append(("saga p99 ≤ 500 ms at 50/s", f"{at50['saga_ms']['p99']} ms" if at50 else "50/s not measured",
                 verdict(at50 is not None and at50["saga_ms"]["p99"] <= 500 and at50 in sustained,
                         "50/s not sustained" if at50 and at50 not in sustained else "over 500 ms")))
    dtm_steps = {d["offered_per_s"]: d for d in dtm.get("steps", [])}
    if dtm_steps:
        # both finishing everything offered is a tie: completed/s over a step varies by ~1 % with the drain's end
        behind = [f"{s['offered_per_s']:g}/s "
                  f"({s['completed_per_s']} vs {dtm_steps[s['offered_per_s']]['completed_per_s']})"
                  for s in steps if s["offered_per_s"] in dtm_steps
                  and s["completed_per_s"] < RATE_TIE * dtm_steps[s["offered_per_s"]]["completed_per_s"]]
        rows.append(("walsaga completes ≥ DTM's sagas/s at every offered rate (within 2 %)",
                     "behind at " + ", ".join(behind) if behind else "at or above DTM at every rate",
                     verdict(not behind, f"behind at {len(behind)} rate(s)")))
        dtm10 = (dtm_steps.get(10.0) or {}).get("cost")
        if cost10 and dtm10 and dtm_own_path_ms(dtm10) > 0:
            ours, theirs = cost10["total_gross_ms"], dtm_own_path_ms(dtm10)
            rows.append(("fewer CPU-ms per saga than DTM (10/s; DTM: its server, the service APIs and PostgreSQL)",
                         f"walsaga {ours}, DTM {theirs}", verdict(ours < theirs, f"{ours / theirs:.1f}x DTM's")))
    return rows


# DTM's own path: what a DTM deployment runs per saga (the coordinator, the participants' HTTP handlers and their
# databases); the rest of its steps' whole-stack figure is walsaga's CDC pipeline reading the participants' outbox
DTM_PATH = ("DTM server", "service APIs", "PostgreSQL")
RATE_TIE = 0.98


def dtm_own_path_ms(cost: dict[str, Any]) -> float:
    return round(sum(cost["gross_ms"].get(c, 0.0) for c in DTM_PATH), 1)


def gateway_targets(conc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The 10,000-client run judged from the gateway's own log: server-side read p99 and every write answered in
    bounded time."""
    gw = conc.get("gateway") or {}
    if not gw.get("reads", {}).get("count"):
        return []
    reads, writes = gw["reads"], gw["writes"]
    p99, worst = reads["request_ms"]["p99"], writes["request_ms"].get("max", float("nan"))
    # 504: the gateway gave up on an API instance (a write that may have committed, unanswered); 499: the client
    # closed first (wrk closes every connection when its time is up): reported, not the server's failure
    timed_out, closed = writes["statuses"].get("504", 0), writes["statuses"].get("499", 0)
    return [
        ("server-side GET p99 < 300 ms during that run (gateway's request time)",
         f"{p99} ms over {reads['count']} reads",
         "met" if p99 < 300 else f"missed: {p99 / 300:.1f}x"),
        ("every write answered (202/409/429) within 5 s",
         f"slowest {worst / 1000:.1f} s; {timed_out} gateway timeouts (504); {closed} closed by the client (499)",
         "met" if worst <= 5000 and not timed_out else f"missed: slowest {worst / 1000:.1f} s, {timed_out} 504s"),
    ]


def cost_section(steps: list[dict[str, Any]], dtm: dict[str, Any]) -> list[str]:
    """CPU-ms per completed saga by component: every walsaga step, then DTM's steps on the same stack."""
    ours = [Cost.from_dict(s["cost"]) for s in steps if s.get("cost")]
    theirs = [Cost.from_dict(d["cost"]) for d in dtm.get("steps", []) if d.get("cost")]
    if not ours:
        return []
    return [
        "## Cost: CPU-ms per completed saga, by component", "",
        "CPU time (user + system) of every process tree of the stack, read from /proc from a step's start until "
        "every consumer group has caught up after it, divided by the sagas that completed. Gross counts everything; "
        "net subtracts each component's idle rate, measured on the same stack (quiet, warmed up) just before the "
        "steps. Warmed up: unmeasured load at the first rate, in 30 s chunks, until the JIT compilers of Kafka and "
        "Connect used less than 5 % of a core over a chunk (at most 300 s; the run's log says how long). "
        "bench/cost.py; `python -m bench.cost` measures one step alone.", "",
        *cost_table(ours), "",
        *(["DTM's steps on the same stack (DTM server, the services' HTTP handlers, PostgreSQL; the participants' "
           "outbox rows still flow through Debezium to the read side and the checks, so those run too). DTM's own "
           "path per saga (DTM server + service APIs + PostgreSQL, gross): "
           + ", ".join(f"{c.label} {dtm_own_path_ms(c.as_dict())} ms" for c in theirs) + ".", "",
           *cost_table(theirs), ""] if theirs else []),
        *(["PostgreSQL statements per completed saga, by database (pg_stat_statements, the stack's roles only; "
           "each a round trip, BEGIN and COMMIT included). Unlike CPU time, this count does not depend on how busy "
           "the machine is.", "", *statements_table([*ours, *theirs]), ""]
          if any(c.statements for c in [*ours, *theirs]) else []),
    ]


def dtm_section(steps: list[dict[str, Any]], dtm: dict[str, Any]) -> list[str]:
    """walsaga and DTM at the same offered rates, side by side (bench/dtm.py has the saga in DTM's terms)."""
    head = ["## Baseline: DTM running the same saga against the same participants", ""]
    if "unavailable" in dtm:
        return head + [f"Not measured in this run: {dtm['unavailable']}", ""]
    by_rate = {d["offered_per_s"]: d for d in dtm["steps"]}
    rows = []
    for s in steps:
        d = by_rate.get(s["offered_per_s"])
        if d is None:
            continue
        rows.append(f"| {s['offered_per_s']:g} | {s['completed_per_s']} | {s['saga_ms']['p50']} | "
                    f"{s['saga_ms']['p99']} | {s['unfinished_after_drain']} | {d['completed_per_s']} | "
                    f"{d['saga_ms']['p50']} | {d['saga_ms']['p99']} | {d['unfinished_after_drain']} | "
                    f"{', '.join(f'{k} {v}' for k, v in sorted(d['outcomes'].items()))} |")
    return head + [
        f"DTM {dtm['version']} (built here from the Go module proxy with {dtm['go']}), its store a database on the "
        "saga cluster, defaults otherwise (RequestTimeout 3 s, RetryInterval 10 s; store connections capped at 50). "
        "It calls the services' command handlers over HTTP (`/{service}/saga-branches/{Command}`, one local "
        "transaction per call with an idempotency row, as with a Kafka command) on the services' API instances in "
        "turn. Same open-loop rates, SKUs mix and 10 % declined payments as walsaga's steps. Latency: order row stamp "
        "to the last branch's transaction (database clocks). The participants still write their events to the outbox, "
        "so Debezium, the read models and the notifications run during DTM's steps too. DTM runs the five steps one "
        "after the other (the shape of walsaga's place_order v1); walsaga runs v2, whose reserve + authorize and "
        "capture + commit go in parallel: three hops instead of five.", "",
        "| offered /s | walsaga completed /s | walsaga p50 | walsaga p99 | walsaga unfinished | DTM completed /s | "
        "DTM p50 | DTM p99 | DTM unfinished | DTM outcomes |",
        "|---|---|---|---|---|---|---|---|---|---|", *rows, "",
        "![walsaga vs DTM](dtm_vs_walsaga.png)", ""]


def tuning_section(rows: list[dict[str, Any]]) -> list[str]:
    """One row per setting tried (bench/tuning.py), under the reference row of the shipped settings."""
    if not rows:
        return []
    first = rows[0]["step"]
    with_cost = any(r["step"].get("cost") for r in rows)
    out = ["## Settings, one at a time", "",
           "The same running stack; one setting changed, one open-loop step of "
           f"{first['offered_per_s']:g} orders/s for {first['seconds']:g} s, the setting put back. CPU = % of one "
           "core, averaged over the step and its drain (the box has 200 %)"
           + ("; CPU-ms per saga = the whole stack's, gross (bench/cost.py)." if with_cost else "."), "",
           "| setting | shipped | tried | completed /s | saga p50 | saga p99 | CDC hop p50 | CDC hop p99 | "
           "unfinished | CPU Connect | CPU orchestrator | CPU APIs |" + (" CPU-ms per saga |" if with_cost else ""),
           "|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if with_cost else "")]
    for r in rows:
        st, cpu = r["step"], r["cpu_percent"]
        per_saga = f" {st['cost']['total_gross_ms']} |" if with_cost and st.get("cost") else (" |" if with_cost else "")
        out.append(f"| {r['setting']} | {r['shipped']} | {r['tried']} | {st['completed_per_s']} | "
                   f"{st['saga_ms']['p50']} | {st['saga_ms']['p99']} | {st['cdc_hop_ms']['p50']} | "
                   f"{st['cdc_hop_ms']['p99']} | {st['unfinished_after_drain']} | {cpu['connect']} | "
                   f"{cpu['orchestrator']} | {cpu['apis']} |{per_saga}")
    return out + ["", "Latencies in ms. Kafka partitions are not varied in this run: see bench/tuning.py.", ""]


def _gateway_lines(conc: dict[str, Any]) -> list[str]:
    gw = conc.get("gateway") or {}
    if not gw:
        return []
    rows = []
    for kind in ("reads", "writes"):
        g = gw[kind]
        rows.append(f"| {kind} | {g['count']} | {_statuses(g)} | {g['request_ms'].get('p50')} / "
                    f"{g['request_ms'].get('p99')} / {g['request_ms'].get('max')} | {g['upstream_ms'].get('p50')} / "
                    f"{g['upstream_ms'].get('p99')} |")
    errors = gw.get("errors") or {}
    return ["The same run from the gateway's access log (server side: nginx's `$request_time` from the first byte "
            "read to the last byte sent, and `$upstream_response_time` spent waiting on an API instance):", "",
            "| requests | count | statuses | gateway ms p50 / p99 / max | upstream ms p50 / p99 |",
            "|---|---|---|---|---|", *rows, "",
            "Upstream errors in the gateway's error log during the run: "
            + ("; ".join(f"{reason}: {n}" for reason, n in sorted(errors.items(), key=lambda x: -x[1]))
               if errors else "none") + "."]


def _statuses(r: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))


def write(cfg: StackConfig, results: dict[str, Any], seconds: float, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    steps = [asdict(s) for s in results["steps"]]
    baselines = [asdict(b) for b in results["baselines"]]
    conc = asdict(results["concurrency"])
    m = meta(cfg)
    (out / "results.json").write_text(json.dumps({"meta": m, "steps": steps, "baselines": baselines,
                                                  "dtm": results.get("dtm"), "tuning": results.get("tuning"),
                                                  "concurrency": conc}, indent=2) + "\n")
    lines = [
        "# walsaga benchmarks", "",
        f"Generated {m['generated']} by `make bench` on {m['machine']}; {m['versions']}; {m['settings']}. "
        "Every number below was measured in that one run; docs/benchmarks/FINDINGS.md explains them.", "",
        "## Targets", "",
        "| target | measured | verdict |", "|---|---|---|",
        *[f"| {t} | {v} | {d} |" for t, v, d in targets(steps, conc) + cost_targets(steps, results.get("dtm") or {})
          + gateway_targets(conc)],
        "", "## Saga throughput and latency (open loop)", "",
        f"Requests leave on schedule and latency counts from the schedule; each rate for {seconds:g} s; 90 % approved, "
        "10 % declined orders over 20 SKUs. Saga latency = saga end (saga DB clock) - order commit stamp (orders DB "
        "clock); CDC hop = outbox row stamp -> Kafka record timestamp. Accept = POST /orders answered, from the "
        "client's schedule (client) and as the gateway timed it, first byte read to last byte sent (gateway): the "
        "difference is the load generator's own queueing on the shared box.", "",
        "| offered /s | accepted | errors | completed /s | unfinished | saga p50 | p95 | p99 | max | "
        "accept p99 (client) | accept p99 (gateway) | CDC hop p50 | CDC hop p99 | stack RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        lines.append(f"| {s['offered_per_s']:g} | {s['accepted']} | {sum(s['errors'].values())} | "
                     f"{s['completed_per_s']} | {s['unfinished_after_drain']} | {s['saga_ms']['p50']} | "
                     f"{s['saga_ms']['p95']} | {s['saga_ms']['p99']} | {s['saga_ms']['max']} | "
                     f"{s['accept_ms']['p99']} | {s.get('gateway_accept_ms', {}).get('p99', '-')} | "
                     f"{s['cdc_hop_ms']['p50']} | {s['cdc_hop_ms']['p99']} | "
                     f"{s['stack_rss_mib']} |")
    lines += ["", "All latencies in ms.", ""]
    lines += cost_section(steps, results.get("dtm") or {})
    lines += [f"![{title}]({name})" for name, title in charts.CHARTS.items()]
    lines += [
        "", f"## {conc['clients']:,} concurrent clients", "",
        f"wrk holds {conc['clients']:,} connections through the gateway for {conc['seconds']:g} s, each a client "
        "writing as fast as it is answered: 80 % place orders on 4 hot SKUs for 20 hot customers, 20 % cancel 400 "
        "orders placed before the run (the first cancel of each wins, the rest must get 409). Meanwhile an open-loop "
        "reader (aiohttp, fixed rate, latency from the schedule) reads those orders. Lost = a 202 without its effect "
        "in the orders database; unanswered = an effect whose client had no answer yet when wrk stopped.", "",
        "| clients | answers (status: count) | wrk latency p50 / p99 (s) | lost | unanswered |",
        "|---|---|---|---|---|",
        f"| order writers | {_statuses(conc['orders'])} | {conc['orders']['latency_us']['p50'] / 1e6:.1f} / "
        f"{conc['orders']['latency_us']['p99'] / 1e6:.1f} | {conc['lost_orders']} | {conc['unanswered_orders']} |",
        f"| cancellers | {_statuses(conc['cancels'])} | {conc['cancels']['latency_us']['p50'] / 1e6:.1f} / "
        f"{conc['cancels']['latency_us']['p99'] / 1e6:.1f} | {conc['lost_cancels']} | {conc['unanswered_cancels']} |",
        "",
        f"Orders placed: {conc['orders_per_s']}/s. Reads: {_statuses(conc['reads'])}; latency p50 "
        f"{conc['reads']['latency_ms']['p50']} ms, p95 {conc['reads']['latency_ms']['p95']} ms, p99 "
        f"{conc['reads']['latency_ms']['p99']} ms (client send lag p99 {conc['reads']['send_lag_ms']['p99']} ms). "
        f"Stack RSS at the end of the run: {conc['stack_rss_mib']:.0f} MiB.", "",
        *_gateway_lines(conc),
        "", "## Baseline: naive dual write vs the outbox", "",
        "The same closed-loop order writer on one connection, killed with SIGKILL after the time shown; then the "
        "committed orders are matched with their events on Kafka.", "",
        "| writer | seconds | orders committed | per s | events on Kafka | lost |", "|---|---|---|---|---|---|",
        *[f"| {b['mode']} | {b['seconds']:g} | {b['committed']} | {b['per_s']} | {b['events']} | {b['lost']} |"
          for b in baselines],
        "", *dtm_section(steps, results.get("dtm") or {"unavailable": "not run"}),
        *tuning_section(results.get("tuning") or []),
        "Regenerate: `make bench`.", "",
    ]
    charts.render(steps, out, (results.get("dtm") or {}).get("steps", []))
    (out / "REPORT.md").write_text("\n".join(lines))
