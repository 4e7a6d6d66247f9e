"""Natural batching for Faust agents: take whatever has arrived, never wait on a timer.

Faust's `Stream.take_events(n, within)` wakes every `within` seconds and hands over what it buffered by then, so at
low load every record waits for the next tick (half the window on average, at every saga hop) and an idle worker
still wakes `1/within` times a second. `take_ready` hands a batch over as soon as there is one record and the agent
is free; records that arrive while the agent works on a batch form the next batch. Batches therefore grow with the
load (one transaction and one producer round trip per batch) without adding latency when the load is light.

A batch's events are acknowledged only after the agent has finished with it (it asked for the next one); a crash or a
stop mid-batch leaves the batch and everything buffered behind it unacknowledged, so it is all redelivered (unlike
`take_events`, which acknowledges a batch in a `finally` and so also when its agent is cancelled mid-batch).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust


async def take_ready(stream: faust.StreamT, max_batch: int) -> AsyncIterator[list[faust.EventT]]:
    """Yields lists of 1..max_batch events in stream order, each as soon as the previous one was handled."""
    if max_batch < 1:
        raise ValueError("max_batch must be at least 1")
    pending: list[faust.EventT] = []
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()

    async def buffer(value: Any) -> Any:
        # runs in the stream's background drainer, once per record, in order
        while len(pending) >= max_batch:
            room.clear()
            await stream.wait(room)  # type: ignore[attr-defined]
        event = stream.current_event
        if event is None:
            raise RuntimeError("stream has no current event")
        pending.append(event)
        arrived.set()
        return value

    stream.enable_acks = False  # acknowledged below, after the agent is done
    stream.add_processor(buffer)
    # the background drainer Faust's take_events uses: it iterates the stream, running `buffer` on every record
    stream._enable_passive(aiter(stream.channel))  # type: ignore[attr-defined]
    while not stream.should_stop:
        await stream.wait_for_stopped(arrived)  # type: ignore[attr-defined]
        if not pending:
            continue
        batch = pending[:]
        pending.clear()
        arrived.clear()
        room.set()
        yield batch
        # only here once the agent asks for more, i.e. it finished the batch; a worker stopped mid-batch closes this
        # generator at the yield instead, and the batch stays unacknowledged, to be redelivered
        for event in batch:
            await stream.ack(event)
