"""The Faust app factory: the one wiring point of the stream-processor process. The agents are thin: they hand each
record to the orchestrator (or fan-out) and produce what it decided. Run several workers: they share the consumer
group and split the partitions; all saga state lives in the saga database, none in worker memory."""
from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import faust
from aiokafka.errors import KafkaError, KafkaTimeoutError
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError, OperationalError

from schemas import codec, topics
from schemas.commands import to_record
from schemas.headers import Envelope, as_pairs
from services.common.consumer import is_transient
from services.common.dead_letters import dead_letter_headers
from services.common.faults import crash_point
from services.common.kafka_access import KafkaAccess
from services.common.published_schemas import PublishedSchemas
from services.common.retention import Pruner, scale_from_env, scaled
from stream_processors import confluent_transport
from stream_processors.batching import take_ready
from stream_processors.fetching import FetchWait, fetch_wait_url
from stream_processors.notifications.fanout import FINAL_STATES, commands_for
from stream_processors.saga import catalog
from stream_processors.saga import store as saga_store
from stream_processors.saga.model import RetryPolicy
from stream_processors.saga.orchestrator import CONSUMER, Dispatch, Orchestrator, RawMessage

log = logging.getLogger(__name__)
T = TypeVar("T")
# The orchestrator takes what has arrived (up to 200 records, never waiting for more: stream_processors/batching.py)
# and commits it in one transaction: under load that turns a WAL flush and a producer round trip per record into one
# per batch, at low load a record is handled at once (docs/benchmarks/FINDINGS.md).
ORCHESTRATOR_BATCH = 200
PRODUCER_REQUEST_TIMEOUT_S = 15.0
COMMIT_INTERVAL_S = 0.5        # how often a Faust app commits the offsets of what its agents finished
COMMIT_ON_TIMER_ONLY = 2**31 - 1  # Faust's "commit every n records", out of reach (see faust_app)
METADATA_MAX_AGE_MS = 5000


# librdkafka (our confluent transport): 3-8 % fewer CPU-ms per saga than aiokafka at 10, 75 and 100 orders/s, and
# as many or more sagas completed at saturation (docs/benchmarks/FINDINGS.md, session 9). Its commits are asynchronous
# (session 10: a synchronous commit once waited for the group coordinator on the thread librdkafka needed to find
# it), and it passed the fault suite, make test and the HA suite (session 11). WALSAGA_FAUST_TRANSPORT=aiokafka puts
# the apps back on Faust's own transport.
DEFAULT_TRANSPORT = "confluent"


def transport_from_env() -> str:
    """The Faust transport of every walsaga app: WALSAGA_FAUST_TRANSPORT, aiokafka or confluent (librdkafka)."""
    return os.environ.get("WALSAGA_FAUST_TRANSPORT", DEFAULT_TRANSPORT)


@dataclass(frozen=True)
class ProcessorSettings:
    kafka: KafkaAccess
    saga_db_url: str
    web_port: int
    data_dir: str
    notification_channels: tuple[str, ...] = ("log",)
    step_timeout: float = 10.0
    forward_attempts: int = 3
    compensation_attempts: int = 8
    sweep_interval: float = 0.5
    batch: int = ORCHESTRATOR_BATCH       # most records per orchestrator transaction (1 = one per record)
    producer_linger_ms: int = 1           # how long the producer holds a command to batch it with others
    kafka_replication: int = 1            # of the topics Faust creates itself (3 in the HA profile)
    prune_interval: float = 60.0          # how often the saga store's rows past retention are deleted; 0: never
    retention_scale: float = 1.0          # < 1 only in the soak benchmark (services/common/retention.scaled)
    transport: str = DEFAULT_TRANSPORT    # the Faust transport (faust_app)
    # the version new instances of a saga start on, when not its newest (a rollback or a canary of a new version)
    start_versions: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> ProcessorSettings:
        return cls(
            kafka=KafkaAccess.from_env(),
            saga_db_url=os.environ["WALSAGA_SAGA_DB_URL"],
            web_port=int(os.environ.get("WALSAGA_FAUST_WEB_PORT", "18150")),
            data_dir=os.environ.get("WALSAGA_FAUST_DATA_DIR", "/tmp/walsaga-faust"),
            notification_channels=tuple(c for c in os.environ.get("WALSAGA_NOTIFICATION_CHANNELS", "log").split(",")
                                        if c),
            step_timeout=float(os.environ.get("WALSAGA_STEP_TIMEOUT_S", "10")),
            forward_attempts=int(os.environ.get("WALSAGA_FORWARD_ATTEMPTS", "3")),
            compensation_attempts=int(os.environ.get("WALSAGA_COMPENSATION_ATTEMPTS", "8")),
            batch=max(1, int(os.environ.get("WALSAGA_SAGA_BATCH", str(ORCHESTRATOR_BATCH)))),
            producer_linger_ms=int(os.environ.get("WALSAGA_PRODUCER_LINGER_MS", "1")),
            kafka_replication=int(os.environ.get("WALSAGA_KAFKA_REPLICATION", "1")),
            prune_interval=float(os.environ.get("WALSAGA_PRUNE_INTERVAL_S", "60")),
            retention_scale=scale_from_env(),
            transport=transport_from_env(),
            start_versions=start_versions(os.environ.get("WALSAGA_SAGA_START_VERSIONS", "")),
        )


def start_versions(spec: str) -> dict[str, int]:
    """`place_order=1,refund_order=1` -> {"place_order": 1, "refund_order": 1}"""
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, version = item.partition("=")
        if not sep or not version.strip().isdigit():
            raise ValueError(f"WALSAGA_SAGA_START_VERSIONS: {item!r} is not <saga>=<version>")
        out[name.strip()] = int(version)
    return out


def create_app(settings: ProcessorSettings) -> faust.App:
    app = faust_app("walsaga-processors", settings.kafka, settings.web_port, settings.data_dir,
                    settings.kafka_replication, settings.producer_linger_ms, transport=settings.transport)
    codec.use_published(PublishedSchemas(settings.kafka))  # writer schemas of a newer release (rolling upgrades)
    saga_db = create_engine(settings.saga_db_url, pool_size=4)  # no pre-ping: retry_transient
    orchestrator = Orchestrator(saga_db,
                                RetryPolicy(step_timeout=settings.step_timeout,
                                            forward_attempts=settings.forward_attempts,
                                            compensation_attempts=settings.compensation_attempts),
                                start_versions=settings.start_versions)

    async def produce(*dispatches: Dispatch) -> None:
        """Every command on the broker before this returns (the source offsets are only acknowledged after it);
        the sends are pipelined, not one round trip each. A send that timed out (its partition's leader went
        silent: PRODUCER_REQUEST_TIMEOUT_S) is sent again, by then to the partition's new leader; a command that
        did reach the old one arrives twice and the participant's inbox drops the copy."""
        records = [to_record(cmd, d.saga_id, d.correlation_id, d.causation_id)
                   for d in dispatches for cmd in d.commands]
        while records:
            sent = [await app.producer.send(r.topic, r.key, r.value, None, None, r.headers) for r in records]
            results = await asyncio.gather(*sent, return_exceptions=True)
            failed = [(r, exc) for r, exc in zip(records, results, strict=True) if isinstance(exc, BaseException)]
            for _, exc in failed:
                if not resendable(exc):
                    raise exc
            if failed:
                log.warning("%d of %d commands not acknowledged (%s); sending them again", len(failed), len(records),
                            type(failed[0][1]).__name__)
            records = [r for r, _ in failed]

    async def dead_letter(msg: RawMessage, reason: str, consumer: str) -> None:
        log.error("%s: dead-lettering %s[%d]@%d: %s", consumer, msg.topic, msg.partition, msg.offset, reason)
        await app.producer.send_and_wait(
            topics.DEAD_LETTERS, msg.key, msg.value, None, None,
            dead_letter_headers(msg.headers, reason=reason, consumer=consumer, topic=msg.topic,
                                partition=msg.partition, offset=msg.offset))

    saga_sources = app.topic(*catalog.sources(), key_serializer="raw", value_serializer="raw")

    lag = InputLag()

    @app.agent(saga_sources, name="saga-orchestrator")
    async def drive_sagas(stream: faust.StreamT) -> None:
        async for events in take_ready(stream, settings.batch):
            msgs = [raw_message(e) for e in events]
            lag.saw(events[-1].message.timestamp)
            outcomes = await retry_transient(partial(asyncio.to_thread, orchestrator.handle_batch, msgs))
            crash_point("processors:after-commit")
            for msg, outcome in zip(msgs, outcomes, strict=True):
                if isinstance(outcome, str):
                    await dead_letter(msg, outcome, CONSUMER)
                    await retry_transient(lambda: asyncio.to_thread(orchestrator.count_dead_letter))
            await produce(*(o for o in outcomes if isinstance(o, Dispatch)))

    @app.timer(interval=settings.sweep_interval)
    async def sweep_deadlines() -> None:
        # every worker sweeps; the row locks (SKIP LOCKED) keep two workers off the same saga
        if lag.behind(settings.step_timeout / 4):
            # replies are waiting in this worker's own input: a deadline now would re-send commands whose replies
            # are already here, and under overload those re-sends become most of the load (a retry storm)
            return
        try:
            dispatches = await asyncio.to_thread(orchestrator.sweep_deadlines)
        except (OperationalError, DBAPIError) as exc:
            log.warning("deadline sweep skipped: saga database unavailable (%s)", type(exc).__name__)
            return
        await produce(*dispatches)

    if settings.prune_interval > 0:
        pruner = Pruner(saga_db, scaled(saga_store.RETENTION, settings.retention_scale),
                        settings.prune_interval, "processors")

        @app.timer(interval=settings.prune_interval)
        async def prune_saga_store() -> None:
            # every worker prunes; SKIP LOCKED keeps two workers' batches apart
            await asyncio.to_thread(pruner.run)

    order_events = app.topic(topics.ORDERS_EVENTS, key_serializer="raw", value_serializer="raw")

    @app.agent(order_events, name="notification-fanout")
    async def fan_out(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = raw_message(event)
            try:
                env = Envelope.from_headers(msg.headers)
                if env.event_type not in FINAL_STATES:
                    continue
                record = codec.decode(env.event_type, env.schema_version, msg.value)
            except (ValueError, codec.UnknownSchema) as exc:
                # the orchestrator reads the same topic and dead-letters this record; one copy is enough
                log.error("fan-out: skipping undecodable %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, exc)
                continue
            commands = commands_for(env.event_type, record, settings.notification_channels)
            await produce(Dispatch(env.saga_id, env.correlation_id, env.event_id, commands))

    app.walsaga_orchestrator = orchestrator  # type: ignore[attr-defined]
    return app


class InputLag:
    """How far behind its input a consumer runs: the age of the newest record of its latest batch when it was taken.
    A worker that took nothing for a while is idle, not behind."""

    def __init__(self) -> None:
        self.taken_at = 0.0
        self.lag_s = 0.0

    def saw(self, record_timestamp: float | None) -> None:
        self.taken_at = time.time()
        self.lag_s = max(0.0, self.taken_at - record_timestamp) if record_timestamp else 0.0

    def behind(self, threshold_s: float, idle_after_s: float = 2.0) -> bool:
        return time.time() - self.taken_at < idle_after_s and self.lag_s > threshold_s


def resendable(exc: BaseException) -> bool:
    """A send that may succeed when sent again (a timeout, a leader that moved); anything else is a bug or a
    misconfiguration and propagates."""
    if isinstance(exc, confluent_transport.DeliveryFailed):
        return exc.retriable
    return isinstance(exc, KafkaError) and (exc.retriable or isinstance(exc, KafkaTimeoutError))


def faust_app(app_id: str, kafka: KafkaAccess, web_port: int, data_dir: str, replication: int = 1,
              producer_linger_ms: int = 1, fetch_wait: FetchWait | None = None,
              transport: str = DEFAULT_TRANSPORT) -> faust.App:
    """The settings every walsaga Faust app shares; the app id is its consumer group. An app that batches its input
    anyway passes a fetch_wait (stream_processors/fetching.py). `transport` "confluent" runs the app's Kafka I/O on
    librdkafka (stream_processors/confluent_transport.py)."""
    if transport == "confluent":
        broker = confluent_transport.url(kafka.bootstrap)
    elif transport == "aiokafka":
        broker = fetch_wait_url(kafka.bootstrap) if fetch_wait else f"kafka://{kafka.bootstrap}"
    else:
        raise ValueError(f"unknown Faust transport {transport!r} (aiokafka or confluent)")
    app = faust.App(
        app_id,
        broker=broker,
        broker_credentials=faust.SASLCredentials(username=kafka.username, password=kafka.password,
                                                 mechanism=kafka.mechanism) if kafka.username else None,
        web_port=web_port, web_bind="127.0.0.1", web_host="127.0.0.1",
        datadir=data_dir,
        key_serializer="raw", value_serializer="raw",
        topic_partitions=topics.PARTITIONS, topic_replication_factor=replication,
        consumer_auto_offset_reset="earliest",
        # offsets are committed on Faust's timer only, never from its fetch loop: that loop awaits its commit's
        # answer, which on librdkafka comes with a poll, and the fetch thread stops polling while the batches it
        # handed over wait for that same loop (confluent_transport.MAX_QUEUED_BATCHES): each such commit stalled
        # every agent of the app for COMMIT_WAIT_S (10 s; session 12 in docs/benchmarks/FINDINGS.md)
        broker_commit_every=COMMIT_ON_TIMER_ONLY, broker_commit_interval=COMMIT_INTERVAL_S,
        # Faust's 60 s session timeout stays: with 10 s, after a Kafka node was paused for 30 s the group's
        # committed offsets stayed behind for minutes while every saga ended (tests/ha); the cost is a slow
        # takeover after a worker dies (README, HA profile)
        producer_acks=-1, producer_linger=producer_linger_ms / 1000,
        # Faust's default (20 min) kept every command to a silent partition leader (a paused Kafka node) waiting
        # until the node answered again, and the orchestrator's agent with it: the whole pipeline stalled (tests/ha).
        # After this long the send fails and produce() sends it again, by then to the new leader (the controller
        # fences a silent broker after ~9 s). Metadata is refreshed every 5 s, so fetches move over as well.
        producer_request_timeout=PRODUCER_REQUEST_TIMEOUT_S,
        producer_metadata_max_age_ms=METADATA_MAX_AGE_MS, consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        stream_wait_empty=False,
    )
    app.walsaga_fetch_wait = fetch_wait  # type: ignore[attr-defined]
    app.walsaga_kafka = kafka  # type: ignore[attr-defined]
    return app


async def retry_transient(call: Callable[[], Awaitable[T]]) -> T:
    """Retries while the database is unreachable (exponential backoff with jitter); the record is not acknowledged
    meanwhile, so nothing is skipped. Any other error propagates."""
    delay = 0.1
    while True:
        try:
            return await call()
        except (OperationalError, DBAPIError) as exc:
            if not is_transient(exc):
                raise
            log.warning("saga database unavailable (%s); retrying in ~%.1fs", type(exc).__name__, delay)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)


def raw_message(event: faust.EventT) -> RawMessage:
    m = event.message
    return RawMessage(m.topic, m.partition, m.offset, m.key, m.value, as_pairs(m.headers))
