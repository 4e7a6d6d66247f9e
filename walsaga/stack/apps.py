"""The Python processes: each service's API instances and command consumer, the order-queries API, and the Faust
workers (saga processors and read-model workers)."""
from __future__ import annotations

import sys
import urllib.request

from reconciliation import scan
from walsaga.stack import kafka_acls, procs, runtime_user
from walsaga.stack.config import API_SERVICES, QUERIES, REPO, SERVICES, StackConfig, db_url, token_public_key


def base_env(cfg: StackConfig, kafka_principal: str | None = None) -> dict[str, str]:
    """What every process gets; one that talks to Kafka also its principal's credentials (stack/kafka_acls.py)."""
    kafka = kafka_acls.access(cfg, kafka_principal).env() if kafka_principal else {}
    return {**kafka, "WALSAGA_KAFKA_BOOTSTRAP": cfg.kafka_bootstrap,
            "WALSAGA_KAFKA_REPLICATION": str(cfg.replication_factor), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def process_names(cfg: StackConfig) -> list[str]:
    names = [f"{svc}-api-{i}" for svc in API_SERVICES for i in range(cfg.api_instances)]
    names += [consumer_name(svc, i) for svc in SERVICES for i in range(cfg.consumer_instances)]
    names += [f"processors-{i}" for i in range(cfg.faust_instances)]
    names += [f"views-{i}" for i in range(cfg.view_instances)]
    names += [f"reconciler-{i}" for i in range(cfg.reconciler_instances)]
    return names


def start_services(cfg: StackConfig) -> None:
    for svc in API_SERVICES:
        for i in range(cfg.api_instances):
            start_api(cfg, svc, i, wait=False)
        if svc in SERVICES:
            for i in range(cfg.consumer_instances):
                start_consumer(cfg, svc, instance=i)
    for svc in API_SERVICES:
        for i in range(cfg.api_instances):
            _wait_api(cfg, svc, i)


def start_api(cfg: StackConfig, svc: str, instance: int, wait: bool = True,
              extra_env: dict[str, str] | None = None) -> None:
    """One instance of a service's REST API (or the order-queries API), behind the gateway."""
    # the read side only reads: the views database's read-only role
    db = db_url(cfg, "views", "reader") if svc == QUERIES else db_url(cfg, svc)
    env = {**base_env(cfg), "WALSAGA_DB_URL": db,
           "WALSAGA_INSTANCE": str(instance), "WALSAGA_TOKEN_PUBLIC_KEY": token_public_key(cfg),
           "WALSAGA_SAGA_BRANCHES": "1" if cfg.saga_branches else "0", **(extra_env or {})}
    procs.start(cfg, f"{svc}-api-{instance}", [sys.executable, "-m", f"services.{svc}.main", "api", "--port",
                                               str(cfg.ports.api(svc, instance))], env, cwd=REPO,
                nice=cfg.read_nice if svc == QUERIES else cfg.edge_nice)
    if wait:
        _wait_api(cfg, svc, instance)


def _wait_api(cfg: StackConfig, svc: str, instance: int) -> None:
    port = cfg.ports.api(svc, instance)
    procs.wait_for(f"{svc}-api-{instance}", lambda: healthy(port), timeout=60,
                   log=cfg.logs / f"{svc}-api-{instance}.log")


def start_consumer(cfg: StackConfig, svc: str, extra_env: dict[str, str] | None = None, instance: int = 0) -> str:
    """One command consumer of `svc` (instances share the consumer group and split the partitions); its name."""
    name = consumer_name(svc, instance)
    env = {**base_env(cfg, kafka_acls.service(svc)), "WALSAGA_DB_URL": db_url(cfg, svc),
           "WALSAGA_INSTANCE": str(instance), "WALSAGA_PRUNE_INTERVAL_S": str(cfg.prune_interval),
           "WALSAGA_RETENTION_SCALE": str(cfg.retention_scale),
           "WALSAGA_TEST_MODE": "1" if cfg.test_mode else "0", **(extra_env or {})}
    procs.start(cfg, name, [sys.executable, "-m", f"services.{svc}.main", "consumer"], env, cwd=REPO)
    return name


def start_processors(cfg: StackConfig, instances: range | None = None, extra_env: dict[str, str] | None = None,
                     wait: bool = True) -> None:
    for i in instances if instances is not None else range(cfg.faust_instances):
        _start_worker(cfg, f"processors-{i}", "stream_processors.main", cfg.ports.faust_web(i), kafka_acls.PROCESSORS,
                      {"WALSAGA_SAGA_DB_URL": db_url(cfg, "saga"), "WALSAGA_STEP_TIMEOUT_S": str(cfg.step_timeout),
                       "WALSAGA_PRUNE_INTERVAL_S": str(cfg.prune_interval),
                       "WALSAGA_RETENTION_SCALE": str(cfg.retention_scale), **(extra_env or {})}, wait)


def start_views(cfg: StackConfig, instances: range | None = None, wait: bool = True,
                extra_env: dict[str, str] | None = None) -> None:
    """The read-model workers (one consumer group; run up to one per partition)."""
    for i in instances if instances is not None else range(cfg.view_instances):
        _start_worker(cfg, f"views-{i}", "stream_processors.views.main", cfg.ports.views_web(i), kafka_acls.VIEWS,
                      {"WALSAGA_VIEWS_DB_URL": db_url(cfg, "views"), **(extra_env or {})}, wait)


def start_reconciler(cfg: StackConfig, wait: bool = True, instance: int = 0) -> None:
    """The continuous reconciliation checks: reads every service database, keeps its state in the views database.
    Several instances share the consumer group and take due checks with SKIP LOCKED."""
    env = {"WALSAGA_VIEWS_DB_URL": db_url(cfg, "views"), "WALSAGA_RECONCILE_GRACE_S": str(cfg.reconcile_grace),
           **{f"WALSAGA_DB_URL_{db.upper()}": db_url(cfg, db, "reader") for db in scan.SOURCES}}
    _start_worker(cfg, f"reconciler-{instance}", "stream_processors.reconciler.main",
                  cfg.ports.reconciler_web(instance), kafka_acls.RECONCILER, env, wait)


def start_reconcilers(cfg: StackConfig) -> None:
    for i in range(cfg.reconciler_instances):
        start_reconciler(cfg, instance=i)


def consumer_name(svc: str, instance: int) -> str:
    return f"{svc}-consumer" if instance == 0 else f"{svc}-consumer-{instance}"


def _start_worker(cfg: StackConfig, name: str, module: str, web_port: int, kafka_principal: str,
                  extra: dict[str, str], wait: bool) -> None:
    if procs.read_pid(cfg, name):
        return
    datadir = cfg.data / "faust" / name
    datadir.mkdir(parents=True, exist_ok=True)
    for d in (datadir.parent, datadir):
        runtime_user.own(d, 0o700)
    env = {**base_env(cfg, kafka_principal), "WALSAGA_FAUST_WEB_PORT": str(web_port),
           "WALSAGA_FAUST_DATA_DIR": str(datadir), **extra}
    log = cfg.logs / f"{name}.log"
    start_mark = log.stat().st_size if log.exists() else 0
    procs.start(cfg, name, [sys.executable, "-m", module, "worker"], env, cwd=REPO)
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
