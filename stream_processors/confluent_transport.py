"""A Faust transport on confluent-kafka (librdkafka) that carries what walsaga's records need.

faust-streaming 0.15.3 ships a confluent-kafka driver for stateless agents, but as shipped it cannot run walsaga:
it drops every record's headers (walsaga's envelope is in them) on both sides, swaps key and value on send,
completes send futures from its producer thread without the event loop's knowledge, knows no SASL, waits out a
whole `consume` timeout before handing over what arrived, and seeks with coroutines it never awaits. This module
keeps the driver's consumer thread and its rebalance handling and replaces those parts:

- consumer: headers kept; librdkafka's own fetching (`fetch.wait.max.ms`) and SASL identity; a fetch hands over at
  once whatever is queued (poll for the first record, then take the rest without waiting); a record fetched before
  its partition was reassigned or sought is never handed over after it (Faust would take the offsets it skips for a
  gap and commit them unread);
- producer: one librdkafka producer whose delivery reports a thread of its own polls and hands to the event loop;
  keys are hashed with murmur2 like every Java client (Kafka Connect, the other Faust apps), so a key lands on the
  same partition whoever produces it.

Select it with `broker=url(bootstrap)`; the app carries its `KafkaAccess` as `app.walsaga_kafka`."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import confluent_kafka
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from faust.transport.consumer import RecordMap
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import confluent as faust_confluent
from faust.transport.producer import Producer as BaseProducer
from faust.types import TP, ConsumerMessage, HeadersArg, RecordMetadata
from mode.utils.times import want_seconds

from services.common.kafka_access import KafkaAccess
from services.common.polling import poll_ready
from stream_processors.kafka_retries import passing, retrying_async

SCHEME = "walsaga-confluent"
log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_TAKE = 1000              # most records one fetch hands to Faust
START = confluent_kafka.OFFSET_BEGINNING  # where a partition never committed starts (auto.offset.reset earliest)
MAX_QUEUED_BATCHES = 4       # fetched batches Faust has not taken yet, before the fetch thread waits
# the fetch thread's longest wait for a record: confluent-kafka serializes the calls on a consumer, so this is also
# the longest a commit or an assignment query waits for a poll to return (20 idle wake-ups a second, in C)
FETCH_WAIT_S = 0.05
RESET_RETRY_S = 5.0          # the committed offsets' query timeout, and the wait before asking again
COMMIT_WAIT_S = 10.0         # longest a commit's answer is awaited; then it is left to the next commit
DELIVERY_POLL_S = 1.0        # the delivery thread's wait when nothing is in flight (a report wakes it at once)


def url(kafka_bootstrap: str) -> str:
    return f"{SCHEME}://{kafka_bootstrap}"


def _access(app: Any) -> KafkaAccess:
    access = getattr(app, "walsaga_kafka", None)
    if not isinstance(access, KafkaAccess):
        raise RuntimeError("a Faust app on the walsaga-confluent transport needs app.walsaga_kafka (a KafkaAccess)")
    return access


def consumer_settings(app: Any) -> dict[str, Any]:
    """The librdkafka consumer of a Faust app: its identity, its group, Faust's session settings; offsets are
    committed by Faust, never automatically. The broker answers a fetch as soon as a record is there, unless the app
    has a fetch wait (stream_processors/fetching.py)."""
    conf = app.conf
    wait = getattr(app, "walsaga_fetch_wait", None)  # an app that batches anyway lets the broker gather records
    return _access(app).confluent({
        **({"fetch.wait.max.ms": wait.max_wait_ms, "fetch.min.bytes": wait.min_bytes} if wait else {}),
        "group.id": conf.id,
        "client.id": conf.broker_client_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": int(conf.broker_session_timeout * 1000),
        "heartbeat.interval.ms": int(conf.broker_heartbeat_interval * 1000),
        "topic.metadata.refresh.interval.ms": int(conf.consumer_metadata_max_age_ms),
    })


class ConsumerThread(faust_confluent.ConfluentConsumerThread):
    """One thread owns the librdkafka consumer: confluent-kafka serializes every call on a consumer, so a call
    from another thread while this one polls waits for the poll (and, polled in a loop, can starve). The thread
    polls, hands each batch straight to the event loop (one wake-up per batch), serves the group's rebalances
    (librdkafka runs them inside poll) and, between polls, runs the calls Faust makes (commits, committed
    offsets, positions, seeks). Faust's synchronous questions (the assignment, a partition's high watermark)
    are answered from what the thread saw last."""

    _fetcher: threading.Thread | None = None
    _fetch_error: BaseException | None = None
    _generation = 0
    _rebalances = 0  # rebalance callbacks served so far (by polls, on the fetch thread)
    _reset_due = False  # set on the fetch thread: partitions go back to their committed offsets before any hand-over
    _rejoin_due = False  # set on the fetch thread when the assignment was lost: leave the group and join it again
    _topics: list[str] = []

    def _create_worker_consumer(self, transport: Any, loop: asyncio.AbstractEventLoop) -> Any:
        # commits are asynchronous, answered in a later poll: a synchronous one waits for the group coordinator for as
        # long as it takes (60 s a try after a broker restart), and on the fetch thread that stops every poll, which
        # is what lets librdkafka finish a rebalance and find the coordinator again; seen to stall the worker for good
        self._commits: deque[concurrent.futures.Future[confluent_kafka.KafkaError | None]] = deque()
        return faust_confluent.AsyncConsumer({**consumer_settings(self.app), "on_commit": self._on_committed},
                                             self.logger)

    async def subscribe(self, topics: Any) -> None:
        consumer = self._ensure_consumer().consumer
        self._topics = list(topics)
        if self._fetcher is not None:
            await self._call(self._subscribe, consumer)
            return
        self._subscribe(consumer)
        self._app_loop = asyncio.get_running_loop()
        self._fetched: asyncio.Queue[tuple[list[Any], dict[TP, int]]] = asyncio.Queue()
        self._room = threading.Semaphore(MAX_QUEUED_BATCHES)
        self._stop_fetching = threading.Event()
        self._requests: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]] = \
            queue.SimpleQueue()
        self._rebalancing: list[Callable[[], Any]] = []  # Faust's handlers of the rebalances of the last poll
        # a partition's epoch moves whenever its position is reset (assigned, revoked, sought): a record fetched in
        # an older epoch is never handed over, for Faust would take the offsets it skips for a gap and commit them
        self._epochs: defaultdict[TP, int] = defaultdict(int)
        self._held: dict[TP, tuple[int, list[Any]]] = {}
        self._seen_highwaters: dict[TP, int] = {}
        self._assignment: set[TP] = set()
        self._fetcher = threading.Thread(target=self._fetch, args=(consumer,), name=f"{self.app.conf.id}-fetch",
                                         daemon=True)
        self._fetcher.start()

    def _subscribe(self, consumer: confluent_kafka.Consumer) -> None:
        consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs `fn` on the fetch thread between two polls (or here, when there is no fetch thread)."""
        if self._fetcher is None:
            return fn(*args, **kwargs)
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._requests.put((done, partial(fn, *args, **kwargs)))
        return await asyncio.wrap_future(done)

    def _serve_requests(self) -> None:
        while True:
            try:
                done, fn = self._requests.get_nowait()
            except queue.Empty:
                return
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller, whose await raises it
                    done.set_exception(exc)

    def _fetch(self, consumer: confluent_kafka.Consumer) -> None:
        loop = self._app_loop
        assert loop is not None
        try:
            while not self._stop_fetching.is_set():
                self._serve_requests()
                if not self._room.acquire(timeout=FETCH_WAIT_S):
                    continue  # Faust has not taken the batches already handed over: wait for it
                rebalances = self._rebalances
                records: list[Any] = poll_ready(consumer, FETCH_WAIT_S, MAX_TAKE, self.app.conf.id)
                self._finish_rebalances()
                if self._rejoin_due:
                    self._rejoin(consumer)
                if records and self._rebalances != rebalances:
                    # the take spanned a rebalance: it may mix records fetched before it with records fetched after,
                    # so none is handed over and every partition goes back to its committed offset
                    self._reset_due = True
                if self._reset_due:
                    records = []
                    self._try_reset(consumer)
                epochs = {}
                for tp in {TP(r.topic(), r.partition()) for r in records}:
                    epochs[tp] = self._epochs[tp]
                    self._seen_highwaters[tp] = consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)[1]
                if records:
                    loop.call_soon_threadsafe(self._fetched.put_nowait, (records, epochs))
                else:
                    self._room.release()
        except BaseException as exc:  # noqa: BLE001 - Faust's next fetch raises it: the worker crashes loudly
            self._fetch_error = exc
            loop.call_soon_threadsafe(self._fetched.put_nowait, ([], {}))
        finally:
            self._serve_requests()

    def _finish_rebalances(self) -> None:
        """Runs Faust's handlers of the rebalances the last poll served, one after the other (a revocation's
        handler must be done before the next assignment's starts), and waits for each, serving the calls it makes
        meanwhile; only then is another record handed over."""
        while self._rebalancing:
            handled = asyncio.run_coroutine_threadsafe(self._rebalancing.pop(0)(), self.thread_loop)
            while not handled.done():
                self._serve_requests()
                concurrent.futures.wait([handled], timeout=0.005)
            handled.result()

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)  # now, so the calls Faust's handler makes see the assignment it is told about
        tps = {TP(tp.topic, tp.partition) for tp in partitions}
        self._assignment |= tps
        self._rebalanced(tps)
        self._generation += 1  # librdkafka does not tell the group's generation; Faust only needs it to change
        generation = self._generation

        def assigned() -> Any:
            self.app.consumer_generation_id = generation
            return self.on_partitions_assigned(tps, generation)
        self._rebalancing.append(assigned)

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        tps = {TP(tp.topic, tp.partition) for tp in partitions}
        self._assignment -= tps
        self._rebalanced(tps)
        # a commit still unanswered is answered "not committed" now: its answer would come with a poll, and none
        # comes until Faust's handlers of this rebalance are done, which may wait for that commit
        for answered in self._commits:
            _answer(answered, confluent_kafka.KafkaError(confluent_kafka.KafkaError._REVOKE_PARTITIONS))
        if self._stop_fetching.is_set():
            return  # the consumer is closing (Faust committed before it stopped the thread)
        self._rebalancing.append(lambda: self.on_partitions_revoked(tps))

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """The group session expired (e.g. the broker away longer than it): the partitions may be another member's
        already. Faust sees them revoked (nothing fetched for them is handed over, no commit is tried for them), and
        the consumer rejoins the group after this poll."""
        log.warning("%s: assignment of %d partitions lost (group session expired); rejoining the group",
                    self.app.conf.id, len(partitions))
        self._on_revoke(consumer, partitions)
        self._rejoin_due = True

    def _rejoin(self, consumer: confluent_kafka.Consumer) -> None:
        """On the fetch thread: leave the group and join it again as a new member. librdkafka was seen never to hand
        a consumer partitions again after its assignment was lost (the participant consumers start a fresh consumer
        for it, services/common/consumer.py); here the consumer object is shared with Faust's calls, so it stays and
        only its membership starts over. The next assignment goes back to the committed offsets, as any does."""
        self._rejoin_due = False
        consumer.unsubscribe()
        self._subscribe(consumer)

    def _rebalanced(self, tps: set[TP]) -> None:
        self._moved(tps)
        self._rebalances += 1

    def _moved(self, tps: set[TP]) -> None:
        """On the fetch thread, when the partitions' positions were reset: what was fetched for them before is stale."""
        if self._fetcher is None:
            return
        for tp in tps:
            self._epochs[tp] += 1

    async def getmany(self, active_partitions: set[TP] | None, timeout: float) -> RecordMap:
        """What has been fetched for the partitions Faust reads now. Records of a partition Faust has paused stay
        here, in order, until it resumes it (Faust drops any record of a paused partition it is given)."""
        if self._fetcher is None:
            await asyncio.sleep(timeout)
            return {}
        ready = self._ready(active_partitions)
        if ready:
            return ready
        try:
            async with asyncio.timeout(timeout):
                self._take(await self._fetched.get())
        except TimeoutError:
            return {}
        return self._ready(active_partitions)

    def _take(self, batch: tuple[list[Any], dict[TP, int]]) -> None:
        batches = [batch]
        while not self._fetched.empty():
            batches.append(self._fetched.get_nowait())
        for _ in batches:
            self._room.release()
        if self._fetch_error is not None:
            raise self._fetch_error
        for records, epochs in batches:
            for record in records:
                tp = TP(record.topic(), record.partition())
                if tp not in self._assignment or epochs[tp] != self._epochs[tp]:
                    continue  # fetched before the partition was revoked, reassigned or sought: fetched again
                epoch, held = self._held.get(tp, (epochs[tp], []))
                if epoch != epochs[tp]:
                    held = []
                held.append(record)
                self._held[tp] = (epochs[tp], held)

    def _ready(self, active_partitions: set[TP] | None) -> RecordMap:
        while not self._fetched.empty():
            self._take(self._fetched.get_nowait())
        ready = {}
        for tp in [tp for tp in self._held if active_partitions is None or tp in active_partitions]:
            epoch, records = self._held.pop(tp)
            if epoch == self._epochs[tp]:
                ready[tp] = records
        return ready

    def assignment(self) -> set[TP]:
        return set(self._assignment) if self._fetcher is not None else super().assignment()

    def highwater(self, tp: TP) -> int:
        return self._seen_highwaters.get(tp, -1) if self._fetcher is not None else super().highwater(tp)

    async def on_thread_stop(self) -> None:
        if self._fetcher is not None:
            self._stop_fetching.set()
            self._room.release()
            await asyncio.to_thread(self._fetcher.join)
            self._fetcher = None
        if self._consumer is not None:
            self._consumer.close()  # leaves the group now: the partitions move without waiting for a timeout

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Faust calls this after a rebalance and whenever it dropped records it had been given (its flow stopped
        mid-batch): every assigned partition goes back to its committed offset, and what was fetched beyond it is
        dropped here too, so nothing Faust dropped is skipped."""
        consumer = self._ensure_consumer().consumer
        if self._fetcher is None:
            return self._reset_to_committed(consumer)
        while True:  # a broker that is away stops everything anyway: wait for it, never crash the worker
            try:
                return await self._call(self._reset_or_owe, consumer)
            except confluent_kafka.KafkaException as exc:
                if not passing(exc):
                    raise
                log.warning("committed offsets: %s; again in %.0fs", exc.args[0], RESET_RETRY_S)
            await asyncio.sleep(RESET_RETRY_S)

    def _reset_or_owe(self, consumer: confluent_kafka.Consumer) -> dict[TP, int]:
        """On the fetch thread: the reset, or, when the broker could not answer, the debt of one: nothing is handed
        over until the fetch thread or a later call succeeds."""
        try:
            return self._reset_to_committed(consumer)
        except confluent_kafka.KafkaException:
            self._reset_due = True
            raise

    def _try_reset(self, consumer: confluent_kafka.Consumer) -> None:
        try:
            self._reset_to_committed(consumer)
        except confluent_kafka.KafkaException as exc:
            if not passing(exc):
                raise
            log.warning("committed offsets: %s; again after the next poll", exc.args[0])

    def _reset_to_committed(self, consumer: confluent_kafka.Consumer) -> dict[TP, int]:
        """On the fetch thread, between two polls, so no record fetched before the seeks is taken for one after."""
        assignment = consumer.assignment()
        committed = _committed(consumer, assignment, RESET_RETRY_S) if assignment else []
        for tp in committed:
            # a partition the group never committed starts over where a new group would (auto.offset.reset)
            _seek_if_fetching(consumer, tp if tp.offset >= 0 else TopicPartition(tp.topic, tp.partition, START))
        self._moved({TP(tp.topic, tp.partition) for tp in committed})
        offsets = {TP(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}
        self._reset_due = False
        log.info("%d assigned partitions back to their committed offsets: %s", len(assignment),
                 ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in sorted(offsets.items())))
        return offsets

    async def _committed_offsets(self, partitions: list[TP]) -> Mapping[TP, int]:
        consumer = self._ensure_consumer().consumer
        wanted = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        committed = await retrying_async(lambda: self._call(_committed, consumer, wanted, 10),
                                         "committed offsets")
        return {TP(tp.topic, tp.partition): tp.offset for tp in committed}

    async def commit(self, tps: Mapping[TP, int]) -> bool:
        """Commits the offsets of the partitions still assigned; False when they could not be: the next commit
        covers them, or after a rebalance their records are delivered again (the agents' inboxes drop them). The
        commit is asynchronous (its answer comes with a later poll, awaited COMMIT_WAIT_S at most), so the fetch
        thread never waits for a group coordinator. Only a fatal error raises (and crashes the worker)."""
        assigned = self.assignment()
        offsets = [TopicPartition(tp.topic, tp.partition, offset) for tp, offset in tps.items() if tp in assigned]
        if not offsets:
            return False
        answered: concurrent.futures.Future[confluent_kafka.KafkaError | None] = concurrent.futures.Future()
        await self._call(self._commit_async, offsets, answered)
        try:
            async with asyncio.timeout(COMMIT_WAIT_S):
                error = await asyncio.wrap_future(answered)
        except TimeoutError:
            log.warning("commit of %d offsets not answered within %.0fs; left to the next commit", len(offsets),
                        COMMIT_WAIT_S)
            return False
        if error is None:
            return True
        if error.fatal():
            raise confluent_kafka.KafkaException(error)
        log.warning("commit of %d offsets failed (%s); left to the next commit", len(offsets), error)
        return False

    def _commit_async(self, offsets: list[TopicPartition],
                      answered: concurrent.futures.Future[confluent_kafka.KafkaError | None]) -> None:
        """On the fetch thread: sends the commit; `_on_committed` answers it. A partition revoked or lost since the
        commit was asked for is left out: another member may own it now."""
        offsets = [o for o in offsets if TP(o.topic, o.partition) in self._assignment]
        if not offsets or self._rejoin_due:
            _answer(answered, confluent_kafka.KafkaError(confluent_kafka.KafkaError._ASSIGNMENT_LOST))
            return
        self._commits.append(answered)
        try:
            self._ensure_consumer().consumer.commit(offsets=offsets, asynchronous=True)
        except confluent_kafka.KafkaException as exc:
            self._commits.remove(answered)
            _answer(answered, exc.args[0])

    def _on_committed(self, error: confluent_kafka.KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's answer to the oldest commit still waiting (answers come in order), in a poll."""
        if not self._commits:
            return
        answered = self._commits.popleft()
        if error is None:
            error = next((tp.error for tp in partitions if tp.error is not None), None)
        _answer(answered, error)

    async def position(self, tp: TP) -> int | None:
        consumer = self._ensure_consumer().consumer
        (pos,) = await retrying_async(lambda: self._call(consumer.position, [TopicPartition(tp.topic, tp.partition)]),
                                      "position")
        return pos.offset if pos.offset >= 0 else None

    def seek(self, partition: TP, offset: int) -> None:
        consumer = self._ensure_consumer().consumer
        target = TopicPartition(partition.topic, partition.partition, offset)
        if self._fetcher is None:
            consumer.seek(target)
        else:
            self._requests.put((concurrent.futures.Future(), partial(self._seek_one, consumer, target)))

    def _seek_one(self, consumer: confluent_kafka.Consumer, target: TopicPartition) -> None:
        consumer.seek(target)
        self._moved({TP(target.topic, target.partition)})

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        consumer = self._ensure_consumer().consumer
        for tp, offset in partitions.items():
            await self._call(self._seek_one, consumer, TopicPartition(tp.topic, tp.partition, offset))

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        return await self._watermarks(partitions, 0)

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        return await self._watermarks(partitions, 1)

    async def _watermarks(self, partitions: tuple[TP, ...], which: int) -> Mapping[TP, int]:
        consumer = self._ensure_consumer().consumer
        marks = {}
        for tp in partitions:
            query = partial(self._call, consumer.get_watermark_offsets, TopicPartition(tp.topic, tp.partition),
                            timeout=10)
            marks[tp] = (await retrying_async(query, "watermarks"))[which]
        return marks


def _answer(answered: concurrent.futures.Future[confluent_kafka.KafkaError | None],
            error: confluent_kafka.KafkaError | None) -> None:
    """Answers a commit unless it already was, or its waiter gave up (the event loop cancels the future then)."""
    try:
        if not answered.done():
            answered.set_result(error)
    except concurrent.futures.InvalidStateError:
        pass  # answered or cancelled in between, from the event loop's thread


def _committed(consumer: confluent_kafka.Consumer, partitions: list[TopicPartition],
               timeout: float) -> list[TopicPartition]:
    """The group's committed offsets, or the error of the first partition the broker could not answer for: one
    taken for "never committed" would send that partition back to its start, or leave it where it was fetched."""
    committed = consumer.committed(partitions, timeout=timeout)
    for tp in committed:
        if tp.error is not None:
            raise confluent_kafka.KafkaException(tp.error)
    return committed


def _seek_if_fetching(consumer: confluent_kafka.Consumer, tp: TopicPartition) -> None:
    """A partition that has not started fetching (just assigned) starts at its committed offset anyway."""
    try:
        consumer.seek(tp)
    except confluent_kafka.KafkaException as exc:
        if exc.args[0].code() != confluent_kafka.KafkaError._STATE:
            raise


class Consumer(faust_confluent.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _to_message(self, tp: TP, record: Any) -> ConsumerMessage:
        timestamp_type, timestamp = record.timestamp()
        key, value = record.key(), record.value()
        return ConsumerMessage(
            record.topic(), record.partition(), record.offset(),
            timestamp / 1000.0 if timestamp is not None else 0.0, timestamp_type,
            record.headers() or [], key, value, None,
            len(key) if key is not None else 0, len(value) if value is not None else 0, tp,
            generation_id=self.app.consumer_generation_id)  # Faust skips a record of another generation

    def verify_event_path(self, now: float, tp: TP) -> None:
        return None  # the driver's own raises AttributeError on every livelock check


class DeliveryFailed(Exception):
    """librdkafka could not deliver a record (after its retries, within message.timeout.ms)."""

    def __init__(self, error: confluent_kafka.KafkaError) -> None:
        super().__init__(error.str())
        self.error = error
        self.retriable = error.retriable() or error.code() == confluent_kafka.KafkaError._MSG_TIMED_OUT


class Producer(BaseProducer):
    """Sends through one librdkafka producer; a thread polls its delivery reports and completes each send's future
    on the event loop."""

    _producer: confluent_kafka.Producer | None = None
    _poller: threading.Thread | None = None
    _stopping = False

    async def on_start(self) -> None:
        await super().on_start()  # Faust's producer buffer
        conf = self.app.conf
        self._producer = confluent_kafka.Producer(_access(self.app).producer({
            "client.id": conf.broker_client_id,
            "acks": "all" if conf.producer_acks == -1 else conf.producer_acks,
            "enable.idempotence": True,
            "linger.ms": int(conf.producer_linger * 1000),
            "message.timeout.ms": int(conf.producer_request_timeout * 1000),
            "topic.metadata.refresh.interval.ms": int(conf.producer_metadata_max_age_ms),
        }))
        self._stopping = False
        self._poller = threading.Thread(target=self._poll_deliveries, name="walsaga-deliveries", daemon=True)
        self._poller.start()

    def _poll_deliveries(self) -> None:
        producer = self._producer
        assert producer is not None
        while not self._stopping:
            producer.poll(DELIVERY_POLL_S)

    async def on_stop(self) -> None:
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, 10.0)
        self._stopping = True
        if self._poller is not None:
            await asyncio.to_thread(self._poller.join)

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
                   timestamp: float | None, headers: HeadersArg | None, *,
                   transactional_id: str | None = None) -> Awaitable[RecordMetadata]:
        producer = self._producer
        if producer is None:
            raise RuntimeError("producer not started")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[RecordMetadata] = loop.create_future()

        def delivered(err: confluent_kafka.KafkaError | None, msg: Any) -> None:  # runs on the delivery thread
            loop.call_soon_threadsafe(_settle, fut, err, msg)

        kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": delivered}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp is not None:
            kwargs["timestamp"] = int(timestamp * 1000)
        if headers:
            kwargs["headers"] = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        producer.produce(topic, **kwargs)
        return fut

    async def send_and_wait(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
                            timestamp: float | None, headers: HeadersArg | None, *,
                            transactional_id: str | None = None) -> RecordMetadata:
        return await (await self.send(topic, key, value, partition, timestamp, headers))

    async def flush(self) -> None:
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, 10.0)

    async def create_topic(self, topic: str, partitions: int, replication: int, *,
                           config: Mapping[str, Any] | None = None, timeout: Any = 30.0, retention: Any = None,
                           compacting: bool | None = None, deleting: bool | None = None,
                           ensure_created: bool = False) -> None:
        """Faust's own topics (the assignor's leader topic): created if missing, left alone if there."""
        admin = AdminClient(_access(self.app).confluent())
        settings = {**(config or {}), **faust_confluent.Transport._topic_config(
            self.transport,  # type: ignore[arg-type]
            int(want_seconds(retention) * 1000) if retention else None, compacting, deleting)}
        (fut,) = admin.create_topics([NewTopic(topic, partitions, replication, config=settings)]).values()
        try:
            await asyncio.to_thread(fut.result, want_seconds(timeout))
        except confluent_kafka.KafkaException as exc:
            if exc.args[0].code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    def key_partition(self, topic: str, key: bytes) -> TP:
        raise NotImplementedError("walsaga produces with keys and lets librdkafka's murmur2 partitioner choose")

    def supports_headers(self) -> bool:
        return True


def _settle(fut: asyncio.Future[RecordMetadata], err: confluent_kafka.KafkaError | None, msg: Any) -> None:
    if fut.done():
        return
    if err is not None:
        fut.set_exception(DeliveryFailed(err))
        return
    tp = TP(msg.topic(), msg.partition())
    fut.set_result(RecordMetadata(tp.topic, tp.partition, tp, msg.offset()))


class Transport(faust_confluent.Transport):
    Consumer = Consumer
    Producer = Producer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
