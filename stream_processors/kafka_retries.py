"""Retrying what librdkafka does not retry itself: a commit or a committed-offsets query while the group
coordinator moves or loads (a broker restarted, a partition leader elected). aiokafka retries these inside its
calls; librdkafka reports them to the caller, and an exception out of a Faust transport's commit crashes the worker
(seen after a broker restart: COORDINATOR_LOAD_IN_PROGRESS, _WAIT_COORD)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_FOR_S = 30.0      # how long a call is retried before its error is let through
FIRST_DELAY_S = 0.1
MAX_DELAY_S = 2.0

_PASSING = frozenset({
    KafkaError._WAIT_COORD, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR, KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION, KafkaError._ALL_BROKERS_DOWN,
})


def passing(exc: KafkaException) -> bool:
    """The error of a cluster that is moving its coordinator or reconnecting, which a later call gets past."""
    error = exc.args[0]
    return isinstance(error, KafkaError) and not error.fatal() and (error.retriable() or error.code() in _PASSING)


def _delays() -> list[float]:
    delays: list[float] = []
    delay = FIRST_DELAY_S
    while sum(delays) < RETRY_FOR_S:
        delays.append(delay)
        delay = min(delay * 2, MAX_DELAY_S)
    return delays


async def retrying_async(call: Callable[[], Awaitable[T]], what: str) -> T:
    """`await call()`, again after a passing error, for RETRY_FOR_S at most."""
    for delay in _delays():
        try:
            return await call()
        except KafkaException as exc:
            if not passing(exc):
                raise
            log.warning("%s: %s; again in %.1fs", what, exc.args[0], delay)
        await asyncio.sleep(delay)
    return await call()
