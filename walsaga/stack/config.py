"""Where the stack lives and which ports it uses: the one place both are decided.

Ports are the project's own (not the tools' defaults) so a developer's other servers never clash. The test suite
runs its stack with WALSAGA_PORT_OFFSET so a developer's running stack and the tests never share a port or a data dir.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from schemas import participants
from services.common import auth
from walsaga.stack import runtime_user

REPO = Path(__file__).resolve().parents[2]
KAFKA_VERSION = "4.3.1"
DEBEZIUM_VERSION = "3.6.1.Final"

SERVICES = participants.NAMES
# The read side: the order-queries API over the views database (fed by the read-model worker, stream_processors/views).
QUERIES = "queries"
API_SERVICES = SERVICES + (QUERIES,)
# The saga orchestrator keeps its state in a cluster of its own, so no service's database outage stops sagas of others;
# the read models too, so a views outage never stops a write.
STACK_DATABASES = ("saga", "views")
DATABASES = SERVICES + STACK_DATABASES
# explicit numbers (before a stack's offset), so a new participant never moves another's ports
POSTGRES_PORTS = {**{p.name: p.postgres_port for p in participants.PARTICIPANTS}, "saga": 15436, "views": 15437}
API_PORTS = {**{p.name: p.api_port for p in participants.PARTICIPANTS}, QUERIES: 18105}
HA_PORT_OFFSET = 3000  # the HA profile's ports (tests use 1000, the benchmark 2000)
# Ports' ranges are chosen so that no port at one offset (0, 1000, 2000, 3000) meets another's (unit-tested)


def _db_index(db: str) -> int:
    index = POSTGRES_PORTS[db] - 15432
    if not 0 <= index < 20:
        raise ValueError(f"postgres port of {db} outside 15432-15451: the HA member ports would collide")
    return index


@dataclass(frozen=True)
class Ports:
    offset: int = 0

    def _p(self, port: int) -> int:
        return port + self.offset

    @property
    def gateway(self) -> int:
        return self._p(8080)

    def postgres(self, db: str) -> int:
        return self._p(POSTGRES_PORTS[db])

    @property
    def kafka(self) -> int:
        return self.kafka_node(1)

    @property
    def kafka_controller(self) -> int:
        return self.kafka_controller_node(1)

    def kafka_node(self, node: int) -> int:
        """The client listener of KRaft node `node` (node ids start at 1)."""
        return self._p(19092 + 10 * (node - 1))

    def kafka_controller_node(self, node: int) -> int:
        return self._p(19093 + 10 * (node - 1))

    @property
    def connect(self) -> int:
        return self.connect_worker(0)

    def connect_worker(self, worker: int) -> int:
        return self._p(18083 + worker)

    def api(self, service: str, instance: int) -> int:
        return self._p(API_PORTS[service] + 10 * instance)

    def faust_web(self, instance: int) -> int:
        return self._p(18150 + instance)

    def views_web(self, instance: int) -> int:
        return self._p(18170 + instance)

    def reconciler_web(self, instance: int) -> int:
        return self._p(18180 + instance)

    def pg_member(self, db: str, member: int) -> int:
        """HA profile: the PostgreSQL instance `member` (1, 2) of `db`'s Patroni pair. Clients never use it: they
        reach the current primary through HAProxy on `postgres(db)`."""
        return self._p(12300 + 20 * (member - 1) + _db_index(db))

    def patroni_rest(self, db: str, member: int) -> int:
        """HA profile: the REST API of the Patroni managing `pg_member(db, member)` (HAProxy asks it GET /patroni)."""
        return self._p(12340 + 20 * (member - 1) + _db_index(db))

    def etcd_client(self, node: int) -> int:
        """HA profile: etcd node `node` (1-3), Patroni's consensus store."""
        return self._p(12385 + 10 * (node - 1))

    def etcd_peer(self, node: int) -> int:
        return self._p(12386 + 10 * (node - 1))

    @property
    def dtm(self) -> int:
        """The DTM baseline's coordinator (bench/dtm.py; HTTP here, gRPC and JSON-RPC on the next two)."""
        return self._p(18190)


@dataclass(frozen=True)
class StackConfig:
    home: Path
    ports: Ports
    api_instances: int = 1
    faust_instances: int = 1
    view_instances: int = 1
    consumer_instances: int = 1   # command consumers per participant service (one consumer group each)
    reconciler_instances: int = 1
    kafka_nodes: int = 1          # KRaft nodes, each broker + controller; 3 make the HA profile's quorum
    connect_workers: int = 1      # Kafka Connect workers in one group
    postgres_members: int = 1     # 2: every database a Patroni-managed primary + standby behind HAProxy (HA profile)
    step_timeout: float = 10.0
    reconcile_grace: float = 30.0  # the continuous checks look at an order once it has been quiet this long
    prune_interval: float = 60.0   # how often consumers and the orchestrator delete rows past retention (0: never)
    retention_scale: float = 1.0   # < 1 only in the soak benchmark (services/common/retention.scaled)
    saga_branches: bool = False    # the APIs serve DTM saga branches (the benchmark's baseline and its tests only)
    test_mode: bool = False        # fault-injection payment methods are honoured (the test stacks only)
    # CPU priority (nice) of the request path - gateway, every API instance, the views database - over the
    # asynchronous pipeline (Connect, consumers, Faust) on a shared box: an accepted write is durable in its outbox,
    # so under overload answering clients comes first and the pipeline catches up later. Negative needs root and is
    # skipped without it (docs/benchmarks/FINDINGS.md)
    edge_nice: int = -10
    # the read API (order queries) above the rest of the request path: a read changes nothing and has a client
    # waiting, and a write it delays is answered 429 anyway. In the 10,000-client part alone, five steps more took
    # the reads' gateway p99 from 2.2-3.5 s to 1.5-1.9 s; the full benchmark run after it did not show a gain
    # (FINDINGS.md, session 13)
    read_nice: int = -15
    # gateway admission control, a flood guard in front of the APIs' own adaptive limits (services/common/admission.py):
    # writes/s passed on, and how many more may wait at the gateway (at most queue/rate seconds) before it answers 429
    gateway_write_rate: int = 150
    gateway_write_queue: int = 300
    lib_dir: Path = field(default=REPO / ".stack" / "lib" / f"kafka-{KAFKA_VERSION}")
    plugin_dir: Path = field(default=REPO / ".stack" / "plugins" / f"debezium-{DEBEZIUM_VERSION}")

    @classmethod
    def from_env(cls, ha: bool | None = None) -> StackConfig:
        """The dev stack, or with `ha` (or WALSAGA_HA=1) the HA profile: 3 KRaft nodes, 2 Connect workers and two of
        every worker process, in a home and on ports of its own so it never collides with the dev stack."""
        ha = os.environ.get("WALSAGA_HA") == "1" if ha is None else ha
        home = Path(os.environ.get("WALSAGA_HOME", REPO / ".stack" / ("ha-home" if ha else "home"))).resolve()
        workers = "2" if ha else "1"
        return cls(
            home=home,
            ports=Ports(int(os.environ.get("WALSAGA_PORT_OFFSET", str(HA_PORT_OFFSET) if ha else "0"))),
            api_instances=int(os.environ.get("WALSAGA_API_INSTANCES", "2")),
            faust_instances=int(os.environ.get("WALSAGA_FAUST_INSTANCES", workers)),
            view_instances=int(os.environ.get("WALSAGA_VIEW_INSTANCES", workers)),
            consumer_instances=int(os.environ.get("WALSAGA_CONSUMER_INSTANCES", workers)),
            reconciler_instances=int(os.environ.get("WALSAGA_RECONCILER_INSTANCES", workers)),
            kafka_nodes=3 if ha else 1,
            connect_workers=2 if ha else 1,
            postgres_members=2 if ha else 1,
            step_timeout=float(os.environ.get("WALSAGA_STEP_TIMEOUT_S", "10")),
            reconcile_grace=float(os.environ.get("WALSAGA_RECONCILE_GRACE_S", "30")),
            prune_interval=float(os.environ.get("WALSAGA_PRUNE_INTERVAL_S", "60")),
            edge_nice=int(os.environ.get("WALSAGA_EDGE_NICE", "-10")),
            read_nice=int(os.environ.get("WALSAGA_READ_NICE", "-15")),
            gateway_write_rate=int(os.environ.get("WALSAGA_GATEWAY_WRITE_RATE", "150")),
            gateway_write_queue=int(os.environ.get("WALSAGA_GATEWAY_WRITE_QUEUE", "300")),
        )

    @property
    def replication_factor(self) -> int:
        """Of every topic, Connect's and Faust's internal ones included."""
        return min(3, self.kafka_nodes)

    @property
    def min_insync_replicas(self) -> int:
        """With 3 replicas a write needs 2 in sync (acks=all): one node may die without losing an acknowledged
        record or stopping writes."""
        return 2 if self.replication_factor >= 3 else 1

    def broker_names(self) -> list[str]:
        """Process names of the KRaft nodes; node 1 keeps the single-node stack's name."""
        return ["kafka" if n == 1 else f"kafka-{n}" for n in range(1, self.kafka_nodes + 1)]

    def connect_names(self) -> list[str]:
        return ["connect" if w == 0 else f"connect-{w}" for w in range(self.connect_workers)]

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def etc(self) -> Path:
        return self.home / "etc"

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets" / "secrets.properties"

    @property
    def connect_users_file(self) -> Path:
        """Kafka Connect's REST users (PropertyFileLoginModule: `user: password`), 0600 like the other secrets."""
        return self.home / "secrets" / "connect-users.properties"

    @property
    def token_key_file(self) -> Path:
        return self.home / "secrets" / "token-signing.properties"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def kafka_bootstrap(self) -> str:
        """Every node: a client reaches the cluster while any one of them is down."""
        return ",".join(f"127.0.0.1:{self.ports.kafka_node(n)}" for n in range(1, self.kafka_nodes + 1))

    @property
    def connect_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.connect}"

    def dirs(self) -> list[Path]:
        return [self.data, self.logs, self.run, self.etc, self.secrets_file.parent]


class Secrets:
    """Passwords generated on first start, kept in one 0600 file under the stack home; never printed or committed.

    Kafka Connect reads the same file through its FileConfigProvider, so connector configs hold references, not values.
    A `shared` file belongs to the stack's runtime user (walsaga/stack/runtime_user.py: Connect reads it); the
    directory stays its creator's (root's when root starts the stack), so the runtime user cannot swap a file in it.
    """

    def __init__(self, path: Path, shared: bool = True) -> None:
        self.path = path
        self.shared = shared
        self._values = self._read()

    def _read(self) -> dict[str, str]:
        values: dict[str, str] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if "=" in line and not line.startswith("#"):
                    key, value = line.split("=", 1)
                    values[key] = value
        return values

    def get(self, key: str, generate: Callable[[], str] = lambda: secrets.token_urlsafe(24)) -> str:
        if key not in self._values:
            # another Secrets of the same file may have added keys since this one read it (the Kafka users'
            # passwords while this one waited): read them in, never write them away
            self._values = {**self._read(), **self._values}
            if key not in self._values:
                self._values[key] = generate()
                self._save()
        return self._values[key]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.parent.chmod(0o711)  # nobody lists it; each file is 0600
        body = "".join(f"{k}={v}\n" for k, v in sorted(self._values.items()))
        runtime_user.write_private(self.path, body, shared=self.shared)

    def ensure_all(self) -> None:
        for db in DATABASES:
            for role in ("admin", "owner", "app", "reader", "cdc", "replicator"):  # replicator: the HA profile's
                self.get(password_key(db, role))
        self.get("connect.rest.password")
        self.get("patroni.rest.password")


CONNECT_REST_USER = "walsaga"


def connect_credentials(cfg: StackConfig) -> tuple[str, str]:
    """Who may use Kafka Connect's REST API (HTTP basic; the password is generated with the stack's secrets)."""
    return CONNECT_REST_USER, Secrets(cfg.secrets_file).get("connect.rest.password")


def token_signing_key(cfg: StackConfig) -> str:
    """The private key `walsaga token` signs with: WALSAGA_TOKEN_SIGNING_KEY when set (a compose deployment's,
    deploy/compose/env.example), else the local stack's, generated on first use. That one has a file of its own:
    Kafka Connect reads the passwords file (its FileConfigProvider) and has no business with the key."""
    stored = Secrets(cfg.token_key_file, shared=False)  # root's alone when root runs the stack: no process reads it
    return os.environ.get("WALSAGA_TOKEN_SIGNING_KEY") or stored.get("token.signing_key", auth.new_signing_key)


def token_public_key(cfg: StackConfig) -> str:
    """What the APIs verify tokens with: they can check a token, never make one."""
    return auth.public_key_of(token_signing_key(cfg))


def password_key(db: str, role: str) -> str:
    return f"{db}.{role}.password"


def db_url(cfg: StackConfig, db: str, role: str = "app", driver: str = "postgresql+psycopg") -> str:
    pw = Secrets(cfg.secrets_file).get(password_key(db, role))
    return f"{driver}://{role_name(db, role)}:{pw}@127.0.0.1:{cfg.ports.postgres(db)}/{db}"


def role_name(db: str, role: str) -> str:
    """admin: the cluster's superuser; owner: owns the database (migrations); app: the runtime role (DML only);
    reader: SELECT only (the reconciler); cdc: Debezium's replication role (walsaga/stack/roles.py)."""
    return {"admin": "walsaga_admin", "owner": f"{db}_owner", "app": f"{db}_app", "reader": f"{db}_reader",
            "cdc": "walsaga_cdc"}[role]
