"""The Python processes: each service's API instances and command consumer, the order-queries API, and the Faust
workers (saga processors and read-model workers)."""
from __future__ import annotations

import sys
import urllib.request

from walsaga.stack import procs
from walsaga.stack.config import API_SERVICES, QUERIES, REPO, SERVICES, StackConfig, db_url


def base_env(cfg: StackConfig) -> dict[str, str]:
    return {"WALSAGA_KAFKA_BOOTSTRAP": cfg.kafka_bootstrap, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def process_names(cfg: StackConfig) -> list[str]:
    names = [f"{svc}-api-{i}" for svc in API_SERVICES for i in range(cfg.api_instances)]
    names += [f"{svc}-consumer" for svc in SERVICES]
    names += [f"processors-{i}" for i in range(cfg.faust_instances)]
    names += [f"views-{i}" for i in range(cfg.view_instances)]
    names += ["reconciler-0"]
    return names


def start_services(cfg: StackConfig) -> None:
    for svc in API_SERVICES:
        env = {**base_env(cfg), "WALSAGA_DB_URL": db_url(cfg, "views" if svc == QUERIES else svc)}
        for i in range(cfg.api_instances):
            procs.start(cfg, f"{svc}-api-{i}", [sys.executable, "-m", f"services.{svc}.main", "api", "--port",
                                                str(cfg.ports.api(svc, i))], {**env, "WALSAGA_INSTANCE": str(i)},
                        cwd=REPO, nice=cfg.edge_nice)
        if svc in SERVICES:
            start_consumer(cfg, svc)
    for svc in API_SERVICES:
        for i in range(cfg.api_instances):
            port = cfg.ports.api(svc, i)
            procs.wait_for(f"{svc}-api-{i}", lambda port=port: healthy(port), timeout=60,
                           log=cfg.logs / f"{svc}-api-{i}.log")


def start_consumer(cfg: StackConfig, svc: str, extra_env: dict[str, str] | None = None, instance: int = 0) -> str:
    """One command consumer of `svc` (instances share the consumer group and split the partitions); its name."""
    name = f"{svc}-consumer" if instance == 0 else f"{svc}-consumer-{instance}"
    env = {**base_env(cfg), "WALSAGA_DB_URL": db_url(cfg, svc), "WALSAGA_INSTANCE": str(instance),
           **(extra_env or {})}
    procs.start(cfg, name, [sys.executable, "-m", f"services.{svc}.main", "consumer"], env, cwd=REPO)
    return name


def start_processors(cfg: StackConfig, instances: range | None = None, extra_env: dict[str, str] | None = None,
                     wait: bool = True) -> None:
    for i in instances if instances is not None else range(cfg.faust_instances):
        _start_worker(cfg, f"processors-{i}", "stream_processors.main", cfg.ports.faust_web(i),
                      {"WALSAGA_SAGA_DB_URL": db_url(cfg, "saga"), "WALSAGA_STEP_TIMEOUT_S": str(cfg.step_timeout),
                       **(extra_env or {})}, wait)


def start_views(cfg: StackConfig, instances: range | None = None, wait: bool = True) -> None:
    """The read-model workers (one consumer group; run up to one per partition)."""
    for i in instances if instances is not None else range(cfg.view_instances):
        _start_worker(cfg, f"views-{i}", "stream_processors.views.main", cfg.ports.views_web(i),
                      {"WALSAGA_VIEWS_DB_URL": db_url(cfg, "views")}, wait)


def start_reconciler(cfg: StackConfig, wait: bool = True) -> None:
    """The continuous reconciliation checks: reads every service database, keeps its state in the views database."""
    env = {"WALSAGA_VIEWS_DB_URL": db_url(cfg, "views"), "WALSAGA_RECONCILE_GRACE_S": str(cfg.reconcile_grace),
           **{f"WALSAGA_DB_URL_{db.upper()}": db_url(cfg, db) for db in (*SERVICES, "saga")}}
    _start_worker(cfg, "reconciler-0", "stream_processors.reconciler.main", cfg.ports.reconciler_web(0), env, wait)


def _start_worker(cfg: StackConfig, name: str, module: str, web_port: int, extra: dict[str, str],
                  wait: bool) -> None:
    if procs.read_pid(cfg, name):
        return
    datadir = cfg.data / "faust" / name
    datadir.mkdir(parents=True, exist_ok=True)
    env = {**base_env(cfg), "WALSAGA_FAUST_WEB_PORT": str(web_port), "WALSAGA_FAUST_DATA_DIR": str(datadir), **extra}
    log = cfg.logs / f"{name}.log"
    start_mark = log.stat().st_size if log.exists() else 0
    procs.start(cfg, name, [sys.executable, "-m", module, "worker", "--without-uvloop"], env, cwd=REPO)
    if wait:
        procs.wait_for(name, lambda: _faust_ready(cfg, name, start_mark), timeout=90, log=log)


def healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
        return resp.status == 200


def _faust_ready(cfg: StackConfig, name: str, since: int) -> bool:
    """Ready once this start (not an earlier one in the same log) has printed Faust's ready line."""
    with open(cfg.logs / f"{name}.log", "rb") as f:
        f.seek(since)
        fresh = f.read().decode(errors="replace")
    return procs.read_pid(cfg, name) is not None and "Worker ready" in fresh
