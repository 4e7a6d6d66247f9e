"""Baseline (b): DTM (github.com/dtm-labs/dtm, built from the Go module proxy) running the same place-order saga
against the same participants, on the same stack, at the same open-loop rates as walsaga's own steps.

The participants are walsaga's services themselves: DTM calls their command handlers over HTTP
(services/common/saga_branches.py), one local transaction per call as with a Kafka command. DTM keeps its state in a
database `dtm` on the saga cluster (where walsaga's orchestrator keeps its own). The saga, in DTM's terms:

    step 01  action: -             compensate: orders CancelOrder OUT_OF_STOCK
    step 02  action: ReserveStock  compensate: ReleaseStock
    step 03  action: -             compensate: orders CancelOrder PAYMENT_DECLINED
    step 04  action: Authorize     compensate: VoidPayment
    step 05  action: ConfirmOrder  (the pivot; from here steps only retry forward)
    step 06  action: CapturePayment
    step 07  action: CommitStock

DTM compensates every step that ran, the failed one included, newest first; the two empty steps make the order's
cancel carry the reason of the step that failed (the first cancel wins; the second finds the order cancelled).
The order row is the app's own local transaction (written by this driver; no OrderCreated event, which would start
walsaga's saga too). Latency: the order row's commit-time stamp to the last branch's transaction (database clocks),
the same ends as walsaga's measure.saga_latencies_ms.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from bench.cost import Meter
from bench.loadgen import open_loop, order_body
from bench.measure import latencies_and_rate, order_created_at, percentiles, stack_rss_mib, wait_until_ended
from schemas import participants
from services.common import outbox, saga_branches
from services.common.auth import Role
from services.orders import db as orders_db
from services.orders.domain import OrderLine, place
from walsaga.client import Gateway, bearer, issue_token
from walsaga.stack import procs, runtime_user
from walsaga.stack.config import REPO, Secrets, StackConfig, db_url, password_key

VERSION = "v1.19.0"
MODULE = "github.com/dtm-labs/dtm"
HOME = REPO / ".stack" / "lib" / f"dtm-{VERSION}-loopback"
# DTM binds its HTTP and gRPC servers to every interface and has no authentication; the copy built here listens on
# 127.0.0.1 only (the two listen addresses in dtmsvr/svr.go are patched before `go build`)
LISTEN_SOURCE, LISTEN_ANY, LISTEN_LOOPBACK = "dtmsvr/svr.go", 'fmt.Sprintf(":%d"', 'fmt.Sprintf("127.0.0.1:%d"'
STORE_SQL = "dtmsvr.storage.postgres.sql"
# the participants whose commands DTM calls as HTTP saga branches (schemas/participants.py)
PARTICIPANTS = tuple(p.name for p in participants.PARTICIPANTS if p.saga_branches)
Say = Callable[[str], None]


class DtmUnavailable(RuntimeError):
    """DTM cannot be built or started here; the report says why instead of a number."""


def binary(say: Say) -> Path:
    """The dtm server binary, built once from the Go module proxy and cached next to the stack's other jars."""
    exe, sql = HOME / "dtm", HOME / STORE_SQL
    if exe.exists() and sql.exists():
        return exe
    go = shutil.which("go")
    if go is None:
        raise DtmUnavailable("no Go toolchain on PATH (DTM is built from source through the Go module proxy)")
    say(f"DTM {VERSION}: downloading {MODULE} through the Go module proxy (first time only) ...")
    listing = _run([go, "mod", "download", "-json", f"{MODULE}@{VERSION}"], None, "go mod download", say)
    src_dir = Path(json.loads(listing)["Dir"])
    HOME.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "dtm"
        shutil.copytree(src_dir, src)
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only; go build writes nothing there
        _listen_on_loopback(src / LISTEN_SOURCE)
        say(f"DTM {VERSION}: go build (first time: 2-8 minutes, its dependencies come through the proxy too) ...")
        _run([go, "build", "-o", str(HOME / "dtm.partial"), "."], src, "go build", say)
        shutil.copy(src / "sqls" / STORE_SQL, sql)
    (HOME / "dtm.partial").rename(exe)
    # a program the stack's runtime user runs (walsaga/stack/runtime_user.py), whatever umask built it
    for path in (HOME, exe):
        path.chmod(0o755)
    (HOME / STORE_SQL).chmod(0o644)
    return exe


def _listen_on_loopback(server_go: Path) -> None:
    code = server_go.read_text()
    if code.count(LISTEN_ANY) != 2:  # the HTTP and the gRPC listener; anything else is a DTM this code does not know
        raise DtmUnavailable(f"{LISTEN_SOURCE} of DTM {VERSION} no longer has its two listen addresses; not patched")
    server_go.write_text(code.replace(LISTEN_ANY, LISTEN_LOOPBACK))


def _run(argv: list[str], cwd: Path | None, label: str, say: Say) -> str:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    while True:
        try:
            out, err = proc.communicate(timeout=30)
            break
        except subprocess.TimeoutExpired:
            say(f"  {label}: still running ({time.monotonic() - started:.0f}s)")
    if proc.returncode != 0:
        raise DtmUnavailable(f"{label} failed ({proc.returncode}): {err.strip()[-600:]}")
    return out


@dataclass
class DtmServer:
    url: str
    store: Engine


def start(cfg: StackConfig, say: Say) -> DtmServer:
    """A database `dtm` on the saga cluster with DTM's own schema, then the dtm server on the stack's DTM port."""
    exe = binary(say)
    cluster = db_url(cfg, "saga", "admin").rsplit("/", 1)[0]  # the saga cluster as its admin, without a database
    admin = create_engine(f"{cluster}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = 'dtm'")).first():
            c.execute(text("CREATE DATABASE dtm"))
    admin.dispose()
    store = create_engine(f"{cluster}/dtm", pool_size=2)
    with store.begin() as c:
        c.exec_driver_sql((HOME / STORE_SQL).read_text())
    conf = runtime_user.write_private(cfg.etc / "dtm.yml", (
        "Store:\n  Driver: 'postgres'\n  Host: '127.0.0.1'\n"
        f"  Port: {cfg.ports.postgres('saga')}\n  User: 'walsaga_admin'\n  Db: 'dtm'\n  Schema: 'public'\n"
        "  MaxOpenConns: 50\n  MaxIdleConns: 50\n"  # the default (500) is more than the cluster's max_connections
        f"HttpPort: {cfg.ports.dtm}\nGrpcPort: {cfg.ports.dtm + 1}\nJsonRpcPort: {cfg.ports.dtm + 2}\n"
        "LogLevel: 'warn'\n"))
    # the password reaches DTM through its environment (Store.Password -> STORE_PASSWORD), never a file; DTM prints
    # its whole configuration at start-up, so its output passes a filter that masks the password before the log
    password = Secrets(cfg.secrets_file).get(password_key("saga", "admin"))
    redact = r's/(Password\\?": *\\?")[^"\\]*/\1***/g'
    procs.start(cfg, "dtm", ["bash", "-o", "pipefail", "-c", '"$0" -c "$1" 2>&1 | sed -E -u -e "$2"',
                             str(exe), str(conf), redact], env={"STORE_PASSWORD": password})
    url = f"http://127.0.0.1:{cfg.ports.dtm}"
    procs.wait_for("dtm", lambda: _answers(url), timeout=60, log=cfg.logs / "dtm.log")
    say(f"DTM {VERSION} serving at {url} (store: database dtm on the saga cluster)")
    return DtmServer(url, store)


def stop(cfg: StackConfig, server: DtmServer | None) -> None:
    procs.stop(cfg, "dtm")
    if server is not None:
        server.store.dispose()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/dtmsvr/newGid", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def saga_request(gid: str, order: dict[str, Any], branch_urls: dict[str, str], token: str) -> dict[str, Any]:
    """DTM's submit body for one order (see the module docstring for the steps)."""
    def url(command: str) -> str:
        service = participants.owner_of(command).name
        return f"{branch_urls[service]}/{service}/saga-branches/{command}"
    reserve = {"order_id": gid, "lines": [{"sku": i["sku"], "quantity": i["quantity"]} for i in order["items"]]}
    authorize = {"order_id": gid, "customer_id": order["customer_id"], "amount": order["total_amount"],
                 "currency": order["currency"], "payment_method": order["payment_method"]}
    steps = [
        ({"action": "", "compensate": url("CancelOrder")}, {"order_id": gid, "reason": "OUT_OF_STOCK"}),
        ({"action": url("ReserveStock"), "compensate": url("ReleaseStock")}, reserve),
        ({"action": "", "compensate": url("CancelOrder")}, {"order_id": gid, "reason": "PAYMENT_DECLINED"}),
        ({"action": url("AuthorizePayment"), "compensate": url("VoidPayment")}, authorize),
        ({"action": url("ConfirmOrder"), "compensate": ""}, {"order_id": gid}),
        ({"action": url("CapturePayment"), "compensate": ""}, {"order_id": gid}),
        ({"action": url("CommitStock"), "compensate": ""}, {"order_id": gid}),
    ]
    return {"gid": gid, "trans_type": "saga", "steps": [s for s, _ in steps],
            "payloads": [json.dumps(p, default=str) for _, p in steps],
            # DTM sends these with every branch call: the branches want a staff token
            "branch_headers": bearer(token)}


@dataclass
class DtmStep:
    rate: float
    duration: float
    submitted: list[str] = field(default_factory=list)     # gids (= order ids)
    errors: dict[str, int] = field(default_factory=dict)
    send_lag_ms: list[float] = field(default_factory=list)


def _insert_order(orders: Engine, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The app's local transaction before it submits the saga: the order row (PENDING), nothing published."""
    order = place(order_id=order_id, customer_id=body["customer_id"], currency=body["currency"],
                  payment_method=body["payment_method"],
                  lines=[OrderLine(i["sku"], i["quantity"], Decimal(i["unit_price"])) for i in body["items"]])
    with orders.begin() as conn:
        outbox.mark_service_write(conn)  # the service's own write (not one behind its back)
        orders_db.insert(conn, order)
    return {**body, "total_amount": order.total_amount}


async def run_step(server: DtmServer, cfg: StackConfig, orders: Engine, rate: float, duration: float,
                   skus: list[str]) -> DtmStep:
    """Open loop (the same schedule and order mix as walsaga's steps); participants' instances taken in turn."""
    result = DtmStep(rate, duration)
    instances = [{svc: f"http://127.0.0.1:{cfg.ports.api(svc, n)}" for svc in PARTICIPANTS}
                 for n in range(cfg.api_instances)]
    token = issue_token(cfg, "walsaga-dtm", Role.OPERATOR, ttl_s=24 * 3600)

    async def one(session: aiohttp.ClientSession, i: int, scheduled: float) -> None:
        result.send_lag_ms.append((time.perf_counter() - scheduled) * 1000)
        gid = str(uuid.uuid4())
        try:
            order = await asyncio.to_thread(_insert_order, orders, gid, order_body(i, skus))
            async with session.post(f"{server.url}/api/dtmsvr/submit",
                                    json=saga_request(gid, order, instances[i % len(instances)], token)) as resp:
                answer = await resp.text()
                key = str(resp.status) if resp.status != 200 or "SUCCESS" not in answer else ""
        except (TimeoutError, aiohttp.ClientError, OSError, SQLAlchemyError) as exc:
            key = type(exc).__name__
        if key:
            result.errors[key] = result.errors.get(key, 0) + 1
        else:
            result.submitted.append(gid)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        await open_loop(rate, duration, lambda i, scheduled: one(session, i, scheduled))
    return result


def wait_finished(server: DtmServer, gids: list[str], timeout: float) -> int:
    """Waits (bounded) until DTM has finished every saga (succeed or failed); returns how many have not."""
    return wait_until_ended(lambda: len(finished(server, gids)), len(gids), timeout)


def finished(server: DtmServer, gids: list[str]) -> list[str]:
    with server.store.connect() as c:
        return list(c.execute(text("SELECT gid FROM trans_global WHERE gid = ANY(:g) AND status IN "
                                   "('succeed', 'failed')"), {"g": gids}).scalars())


def outcomes(server: DtmServer, gids: list[str]) -> dict[str, int]:
    with server.store.connect() as c:
        return dict(c.execute(text("SELECT status, count(*) FROM trans_global WHERE gid = ANY(:g) GROUP BY status"),
                              {"g": gids}).all())


def saga_latencies_ms(engines: dict[str, Engine], gids: list[str]) -> tuple[list[float], float]:
    """Per finished saga (DTM says succeed or failed; pass only those): its last branch's transaction start (the
    participants' database clocks) minus the order row's stamp; also the finished sagas per second over the step.
    walsaga's end is one hop later (the orchestrator's write after the last reply), which favours DTM by that hop."""
    ended: dict[str, Any] = {}
    for svc in PARTICIPANTS:
        with engines[svc].connect() as c:
            rows = c.execute(text(
                "SELECT split_part(key, '/', 1) AS gid, max(created_at) FROM idempotency_key "
                "WHERE client_id = :scope AND split_part(key, '/', 1) = ANY(:ids) GROUP BY 1"),
                {"ids": gids, "scope": saga_branches.CLIENT})
            for gid, at in rows:
                ended[gid] = max(at, ended.get(gid, at))
    return latencies_and_rate(order_created_at(engines["orders"], gids), ended)


def participant_engines(cfg: StackConfig) -> dict[str, Engine]:
    return {svc: create_engine(db_url(cfg, svc), pool_size=4, max_overflow=8) for svc in PARTICIPANTS}


def go_version() -> str:
    go = shutil.which("go")
    if go is None:
        return "none"
    return subprocess.run([go, "version"], capture_output=True, text=True, env={**os.environ}).stdout.strip()


@dataclass
class DtmStepReport:
    offered_per_s: float
    seconds: float
    submitted: int
    errors: dict[str, int]
    completed_per_s: float
    unfinished_after_drain: int
    outcomes: dict[str, int]
    saga_ms: dict[str, float]
    client_send_lag_ms: dict[str, float]
    stack_rss_mib: float
    cost: dict[str, Any] | None = None  # CPU-ms per finished saga by component (bench/cost.py)


def run_baseline(cfg: StackConfig, rates: list[float], seconds: float, say: Say,
                 settle: Callable[[], object] = lambda: None, meter: Meter | None = None) -> dict[str, Any]:
    """DTM at each rate, like walsaga's steps (`settle` before each: the stack quiet again); {"unavailable": why}
    when DTM cannot be built or started here. With a meter (its idle rates measured), each step also gets its CPU
    cost per finished saga by component, DTM's server included."""
    server = None
    engines = participant_engines(cfg)
    try:
        try:
            server = start(cfg, say)
        except (DtmUnavailable, TimeoutError, RuntimeError, OSError) as exc:
            say(f"DTM baseline skipped: {exc}")
            return {"unavailable": str(exc), "go": go_version()}
        skus = [f"dtm-{uuid.uuid4().hex[:6]}-{i}" for i in range(20)]
        admin = Gateway.as_(cfg)
        for sku in skus:
            admin.set_stock(sku, 1_000_000)
        steps = []
        for rate in rates:
            settle()
            steps.append(asdict(_measure(cfg, server, engines, rate, seconds, skus, say, meter, settle)))
        return {"version": VERSION, "go": go_version(), "steps": steps}
    finally:
        stop(cfg, server)
        for engine in engines.values():
            engine.dispose()


def _measure(cfg: StackConfig, server: DtmServer, engines: dict[str, Engine], rate: float, seconds: float,
             skus: list[str], say: Say, meter: Meter | None = None,
             settle: Callable[[], object] = lambda: None) -> DtmStepReport:
    say(f"DTM: offered {rate:g} sagas/s for {seconds:g}s ...")
    before = meter.start_step() if meter else None
    step = asyncio.run(run_step(server, cfg, engines["orders"], rate, seconds, skus))
    rss = stack_rss_mib(cfg)
    unfinished = wait_finished(server, step.submitted, timeout=max(30.0, seconds * 2))
    done = finished(server, step.submitted)
    spent = None
    if meter and before:
        settle()  # the participants' outbox rows still flow through CDC to the read side: part of the cost
        spent = meter.cost_since(before, f"DTM {rate:g}/s", rate, len(done)).as_dict()
    lat, per_s = saga_latencies_ms(engines, done)
    report = DtmStepReport(rate, seconds, len(step.submitted), step.errors, round(per_s, 1), unfinished,
                           outcomes(server, step.submitted), percentiles(lat), percentiles(step.send_lag_ms), rss,
                           spent)
    say(f"  DTM completed {report.completed_per_s}/s, saga p50 {report.saga_ms['p50']} ms p99 "
        f"{report.saga_ms['p99']} ms, unfinished {unfinished}, outcomes {report.outcomes}, errors {step.errors}"
        + (f", {spent['total_gross_ms']} CPU-ms per saga" if spent else ""))
    return report
