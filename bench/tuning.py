"""Each tunable setting's effect, measured: the shipped settings, then one setting changed at a time on the same
running stack, each under the same open-loop step; the setting is put back before the next.

What is varied and how it is applied (no restart of the whole stack):
  Debezium poll.interval.ms and Connect's producer linger.ms  -> every outbox connector's config is put again;
  the orchestrator's batch size and its producer's linger.ms -> the Faust worker restarts with the setting;
  API instances per service                                   -> the second instances stop, the gateway restarts.
Kafka partitions are not varied here: a topic's partition count cannot shrink, and growing it on a live stack moves
keys between partitions (a saga's records would lose their order); it takes a stack per value (FINDINGS.md)."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bench.measure import cpu_seconds
from cdc import connectors as cdc_connectors
from walsaga.stack import apps, gateway, lifecycle, procs
from walsaga.stack.config import API_SERVICES, SERVICES, StackConfig
from walsaga.stack.kafka import connect_client

Say = Callable[[str], None]
# the processes whose CPU each row reports, by a marker in their command line
CPU_OF = {"connect": "ConnectDistributed", "orchestrator": "stream_processors.main", "apis": " api --port"}


@dataclass(frozen=True)
class Variant:
    setting: str
    shipped: str
    tried: str
    apply: Callable[[StackConfig], None] = field(repr=False)
    revert: Callable[[StackConfig], None] = field(repr=False)


def connectors_with(overrides: dict[str, str]) -> tuple[Callable[[StackConfig], None], Callable[[StackConfig], None]]:
    def put(cfg: StackConfig, wanted: dict[str, str]) -> None:
        lifecycle.register_connectors(cfg, wanted)
        _wait_tasks_carry(cfg, wanted)
    shipped = {key: cdc_connectors.identity("orders")[1][key] for key in overrides}
    return (lambda cfg: put(cfg, overrides)), (lambda cfg: put(cfg, shipped))


def _wait_tasks_carry(cfg: StackConfig, wanted: dict[str, str], timeout: float = 60.0) -> None:
    """Connect restarts a connector's tasks in the background after a config put (the status says RUNNING for the
    old task meanwhile): waits until every task runs with the wanted values."""
    client = connect_client(cfg, cfg.connect_url)
    names = [cdc_connectors.identity(svc)[0] for svc in SERVICES]
    deadline = time.monotonic() + timeout
    while True:
        tasks = [t for name in names for t in client.task_configs(name)]
        if tasks and all(t.get(k) == v for t in tasks for k, v in wanted.items()):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"connector tasks not restarted with {wanted} after {timeout:.0f}s")
        time.sleep(0.5)
    for name in names:
        cdc_connectors.wait_running(client, name)


def orchestrator_with(env: dict[str, str]) -> tuple[Callable[[StackConfig], None], Callable[[StackConfig], None]]:
    def restart(cfg: StackConfig, extra: dict[str, str]) -> None:
        for i in range(cfg.faust_instances):
            procs.stop(cfg, f"processors-{i}")
        apps.start_processors(cfg, extra_env=extra)
    return (lambda cfg: restart(cfg, env)), (lambda cfg: restart(cfg, {}))


def api_instances(n: int) -> tuple[Callable[[StackConfig], None], Callable[[StackConfig], None]]:
    def apply(cfg: StackConfig) -> None:
        for svc in API_SERVICES:
            for i in range(n, cfg.api_instances):
                procs.stop(cfg, f"{svc}-api-{i}")
        _restart_gateway(replace(cfg, api_instances=n))

    def revert(cfg: StackConfig) -> None:
        apps.start_services(cfg)  # starts what is missing
        _restart_gateway(cfg)
    return apply, revert


def _restart_gateway(cfg: StackConfig) -> None:
    procs.stop(cfg, "gateway")
    gateway.start(cfg)


def variants(cfg: StackConfig) -> list[Variant]:
    return [
        Variant("Debezium poll.interval.ms", "40", "500 (Debezium's default)",
                *connectors_with({"poll.interval.ms": "500"})),
        Variant("Debezium poll.interval.ms", "40", "100", *connectors_with({"poll.interval.ms": "100"})),
        # the settings shipped before: the queue waited for a full batch or the poll interval, the reader woke twice
        # as often when idle
        Variant("Debezium poll.interval.ms + max.batch.size", "40 + 1", "20 + 2048 (shipped before)",
                *connectors_with({"poll.interval.ms": "20", "max.batch.size": "2048"})),
        Variant("Debezium max.batch.size", "1", "256", *connectors_with({"max.batch.size": "256"})),
        Variant("Connect producer linger.ms", "1", "20", *connectors_with({"producer.override.linger.ms": "20"})),
        Variant("orchestrator records per transaction", "200", "1 (a transaction per record)",
                *orchestrator_with({"WALSAGA_SAGA_BATCH": "1"})),
        Variant("orchestrator producer linger.ms", "1", "20", *orchestrator_with({"WALSAGA_PRODUCER_LINGER_MS": "20"})),
        Variant("API instances per service (uvicorn processes)", str(cfg.api_instances), "1", *api_instances(1)),
    ]


def run_tuning(cfg: StackConfig, measure: Callable[[float, float], Any], settle: Callable[[], object], rate: float,
               seconds: float, say: Say, only: list[Variant] | None = None) -> list[dict[str, Any]]:
    """The shipped settings first (the reference row), then each variant; `measure(rate, seconds)` runs one step."""
    rows = [_row(None, measure, settle, rate, seconds, say)]
    for variant in only if only is not None else variants(cfg):
        say(f"tuning: {variant.setting} {variant.shipped} -> {variant.tried} ...")
        try:
            variant.apply(cfg)
            rows.append(_row(variant, measure, settle, rate, seconds, say))
        finally:
            variant.revert(cfg)  # also after a failed apply: the next row starts from the shipped settings
    return rows


def _row(variant: Variant | None, measure: Callable[[float, float], Any], settle: Callable[[], object], rate: float,
         seconds: float, say: Say) -> dict[str, Any]:
    if variant is None:
        say("tuning: the shipped settings (reference) ...")
    settle()
    before, t0 = {k: cpu_seconds(marker) for k, marker in CPU_OF.items()}, time.monotonic()
    step = measure(rate, seconds)
    wall = time.monotonic() - t0  # the step and its drain: CPU is averaged over both
    cpu = {k: round(100 * (cpu_seconds(marker) - before[k]) / wall, 1) for k, marker in CPU_OF.items()}
    return {"setting": variant.setting if variant else "(shipped settings)",
            "shipped": variant.shipped if variant else "", "tried": variant.tried if variant else "",
            "step": asdict(step), "cpu_percent": cpu}
