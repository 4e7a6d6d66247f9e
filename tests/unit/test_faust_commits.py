"""Every walsaga Faust app commits its offsets on Faust's timer only, never from Faust's fetch loop.

That loop awaits its commit's answer, and on librdkafka the answer comes with a poll, while the fetch thread stops
polling once the batches it handed over wait for that same loop (confluent_transport.MAX_QUEUED_BATCHES): each such
commit stalled every agent of the app for COMMIT_WAIT_S (FINDINGS, session 12: saga p50 13 s at 30 orders/s, 0.38 s
without). No broker: the apps are only built."""
from __future__ import annotations

import inspect
from typing import Any

import pytest
from faust.transport.consumer import Consumer as FaustConsumer

from services.common.kafka_access import KafkaAccess
from stream_processors.app import COMMIT_INTERVAL_S, COMMIT_ON_TIMER_ONLY, faust_app

BOOTSTRAP = KafkaAccess("127.0.0.1:1")


@pytest.mark.parametrize("transport", ["confluent", "aiokafka"])
def test_an_app_commits_on_its_timer_only(tmp_path: Any, transport: str) -> None:
    app = faust_app(f"t-{transport}", BOOTSTRAP, 1, str(tmp_path), transport=transport)
    assert app.conf.broker_commit_every == COMMIT_ON_TIMER_ONLY
    assert app.conf.broker_commit_interval == COMMIT_INTERVAL_S


def test_fausts_fetch_loop_commits_only_after_that_many_records() -> None:
    """A Faust upgrade that commits from its fetch loop for another reason would bring the stall back."""
    init, drain = inspect.getsource(FaustConsumer.__init__), inspect.getsource(FaustConsumer._drain_messages)
    assert "self._commit_every = self.app.conf.broker_commit_every" in init
    assert drain.count("await self.commit(") == 1
    assert "if self._n_acked >= commit_every:" in drain
