"""Who may do what in the stack's Kafka: one SASL principal per kind of process, the ACLs each one needs and no
more. The brokers run KRaft's StandardAuthorizer and refuse whatever no ACL allows (an anonymous client cannot even
connect: every listener asks for SASL).

- the participant consumers (`walsaga-<service>`) read their command topic (orders also the prices) and write dead
  letters; what a service publishes goes through its outbox, so only Connect's principal writes those topics;
- the orchestrator and notification fan-out (`walsaga-processors`) read events and replies and write commands;
- the read side (`walsaga-views`) reads; the reconciler (`walsaga-reconciler`) reads and sends repair commands;
- Kafka Connect (`walsaga-connect`) writes the outbox-routed topics and owns its own internal topics;
- the stack's tooling (`walsaga-admin`: `walsaga up`, status, operator actions, tests and benchmarks) and the brokers
  (`walsaga-broker`) are super users; only they create or delete topics and alter groups or ACLs.

Applications authenticate with SCRAM-SHA-512 (credentials stored in the cluster's metadata, upserted here on every
start); the admin and the brokers with PLAIN against the brokers' own configuration, so nothing has to exist in
the cluster before the first one logs in."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from reconciliation.checks import Repair
from schemas import topics
from schemas.participants import PARTICIPANTS, owner_of, participant
from services.common.kafka_access import PLAIN, SCRAM, KafkaAccess
from stream_processors.saga import catalog
from walsaga.stack.config import Secrets, StackConfig

ADMIN, BROKER = "walsaga-admin", "walsaga-broker"
PROCESSORS, VIEWS, RECONCILER, CONNECT = "walsaga-processors", "walsaga-views", "walsaga-reconciler", "walsaga-connect"
SUPER_USERS = (ADMIN, BROKER)
SCRAM_ITERATIONS = 8192


def service(svc: str) -> str:
    """A participant service's principal (its consumer group has the same name)."""
    return participant(svc).principal


# what each principal reads (consumer groups are named like the principal: the Faust app ids, walsaga-<service>,
# walsaga-connect) and writes; tests/unit/test_kafka_acls.py holds these against the apps' own subscriptions
EVENTS_AND_REPLIES = catalog.sources()  # what the saga orchestrator reads
OUTBOX_ROUTED = (*topics.PARTICIPANT_OUTBOX, topics.CDC_HEARTBEATS, topics.DIRECT_WRITES)
# the participants reconciliation's safe repairs command (each repair is a command its owner handles)
REPAIRED = tuple(dict.fromkeys(owner_of(r.value).name for r in Repair))
# every app that decodes records also reads the published contracts (a newer release's writer schemas)
READS: dict[str, tuple[str, ...]] = {
    **{p.principal: (p.command_topic, *p.extra_reads, topics.SCHEMAS) for p in PARTICIPANTS},
    PROCESSORS: (*EVENTS_AND_REPLIES, topics.SCHEMAS),
    VIEWS: (*EVENTS_AND_REPLIES, topics.NOTIFICATIONS_EVENTS, topics.DIRECT_WRITES, topics.SCHEMAS),
    RECONCILER: (topics.ORDERS_EVENTS, topics.NOTIFICATIONS_EVENTS, topics.DIRECT_WRITES, topics.SCHEMAS),
    CONNECT: (),
}
WRITES: dict[str, tuple[str, ...]] = {
    **{p.principal: (topics.DEAD_LETTERS,) for p in PARTICIPANTS},
    PROCESSORS: (*topics.COMMAND_TOPIC.values(), topics.DEAD_LETTERS),
    VIEWS: (topics.DEAD_LETTERS,),
    RECONCILER: (*(topics.COMMAND_TOPIC[s] for s in REPAIRED), topics.DEAD_LETTERS),
    CONNECT: OUTBOX_ROUTED,
}
# topics a principal creates and owns, by name prefix: Faust's own (`<app id>-__assignor-__leader`), Connect's
# configs/offsets/status
OWNED_PREFIXES = {PROCESSORS: f"{PROCESSORS}-", VIEWS: f"{VIEWS}-", RECONCILER: f"{RECONCILER}-",
                  CONNECT: f"{CONNECT}-"}
APPLICATION_PRINCIPALS = tuple(READS)


@dataclass(frozen=True)
class Grant:
    principal: str
    operation: AclOperation
    resource: ResourceType
    name: str
    pattern: ResourcePatternType = ResourcePatternType.LITERAL

    def binding(self) -> AclBinding:
        return AclBinding(self.resource, self.name, self.pattern, f"User:{self.principal}", "*", self.operation,
                          AclPermissionType.ALLOW)


def grants() -> Iterator[Grant]:
    for principal in APPLICATION_PRINCIPALS:
        for topic in READS[principal]:
            yield Grant(principal, AclOperation.READ, ResourceType.TOPIC, topic)
        for topic in WRITES[principal]:
            yield Grant(principal, AclOperation.WRITE, ResourceType.TOPIC, topic)
        yield Grant(principal, AclOperation.READ, ResourceType.GROUP, principal)
        if principal in OWNED_PREFIXES:
            yield Grant(principal, AclOperation.ALL, ResourceType.TOPIC, OWNED_PREFIXES[principal],
                        ResourcePatternType.PREFIXED)


def apply(admin: AdminClient, passwords: dict[str, str], timeout: float = 30.0) -> None:
    """Upserts every application principal's SCRAM credential (`passwords[principal]`) and creates its ACLs (adding
    an ACL that exists is a no-op). `admin` must be a super user's client."""
    scram = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(p, scram, passwords[p].encode()) for p in APPLICATION_PRINCIPALS]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(timeout)
    for future in admin.create_acls([g.binding() for g in grants()]).values():
        future.result(timeout)


def access(cfg: StackConfig, principal: str) -> KafkaAccess:
    """How `principal` reaches the stack's Kafka; its password is generated with the stack's secrets."""
    password = Secrets(cfg.secrets_file).get(f"kafka.{principal}.password")
    return KafkaAccess(cfg.kafka_bootstrap, principal, password, PLAIN if principal in SUPER_USERS else SCRAM)


def admin(cfg: StackConfig) -> KafkaAccess:
    """The stack's own tooling: `walsaga up`, status, operator actions, tests and benchmarks."""
    return access(cfg, ADMIN)


def apply_to(cfg: StackConfig) -> None:
    apply(AdminClient(admin(cfg).confluent({"log_level": 3})),
          {p: access(cfg, p).password for p in APPLICATION_PRINCIPALS})
