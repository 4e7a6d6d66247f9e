"""What this worker last wrote of each saga it drives: the state and the commands of its last decision.

A saga's records arrive on one partition, so the worker that wrote a saga usually handles its next record as well,
and reading the saga again would be a round trip that returns what this worker already knows. An entry is only a
guess: another worker (after a rebalance), a deadline sweep or an operator may have moved the saga since. So a
record decided on a cached state is written only if the saga's row still has that version (store.write_message's
`expected_version`), and a stale entry makes the batch run again on states read from the database."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from stream_processors.saga.model import Command, SagaState

Known = tuple[SagaState, tuple[Command, ...]]
CAPACITY = 5_000  # sagas in flight at once on one worker; the least recently written go first


class SagaCache:
    """Least recently written sagas are evicted past `capacity`; safe to use from the batch and the sweep threads."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Known] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, saga_id: str) -> Known | None:
        with self._lock:
            return self._entries.get(saga_id)

    def put_all(self, written: Mapping[str, Known | None]) -> None:
        """What a committed transaction wrote. Nothing is kept of a saga that does not exist (None) or is over: an
        ended saga rarely gets another record (a follow-up request reads it)."""
        with self._lock:
            for saga_id, known in written.items():
                if known is None or known[0].status.terminal:
                    self._entries.pop(saga_id, None)
                    continue
                self._entries[saga_id] = known
                self._entries.move_to_end(saga_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def drop(self, saga_id: str) -> None:
        with self._lock:
            self._entries.pop(saga_id, None)

    def __len__(self) -> int:
        return len(self._entries)
