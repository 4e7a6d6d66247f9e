"""take_ready: batches form from what arrived while the agent was busy, a lone record is handed over without waiting
for company, order is kept and a batch never exceeds its cap. Faust's in-memory agent test context, no broker."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import pytest

from stream_processors.batching import take_ready

app = faust.App("test-batching", broker="kafka://127.0.0.1:1", store="memory://")


class Busy:
    """What the agent handled, and a gate that keeps it busy with its current batch until the test opens it."""

    def __init__(self) -> None:
        self.handled: list[list[int]] = []
        self.gate = asyncio.Event()


state = Busy()


@app.agent()
async def batcher(stream: faust.StreamT) -> None:
    async for batch in take_ready(stream, 3):
        state.handled.append([e.value for e in batch])
        await state.gate.wait()


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, state.handled
        await asyncio.sleep(0.01)


def _run(scenario: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        global state
        state = Busy()  # its event belongs to this test's loop
        async with batcher.test_context() as agent:
            await scenario(agent)
    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_lone_record_is_handed_over_without_waiting_for_more() -> None:
    async def scenario(agent: Any) -> None:
        state.gate.set()
        await agent.put(1, wait=False)
        await _until(lambda: state.handled == [[1]])
        await agent.put(2, wait=False)
        await _until(lambda: state.handled == [[1], [2]])
    _run(scenario)


def test_records_arriving_while_the_agent_is_busy_form_the_next_batches_in_order_and_capped() -> None:
    async def scenario(agent: Any) -> None:
        await agent.put(0, wait=False)
        await _until(lambda: state.handled == [[0]])  # taken alone; the agent is now busy with it
        for i in range(1, 8):
            await agent.put(i, wait=False)
        state.gate.set()
        await _until(lambda: sum(map(len, state.handled)) == 8)
        assert state.handled == [[0], [1, 2, 3], [4, 5, 6], [7]]
    _run(scenario)


def test_a_batch_needs_room_for_at_least_one_record() -> None:
    async def scenario(agent: Any) -> None:
        with pytest.raises(ValueError):
            await take_ready(app.stream(app.channel()), 0).__anext__()
    _run(scenario)
