"""The fetch wait of the batching Faust apps: the consumer the transport builds carries it (aiokafka or librdkafka),
aiokafka builds its fetcher from those settings, the views and the reconciler use it and the orchestrator (on the
saga's path) does not. No broker: the consumers connect only when started."""
from __future__ import annotations

import asyncio
import inspect
from typing import Any

import aiokafka
import pytest

from reconciliation import scan
from services.common.kafka_access import KafkaAccess
from stream_processors import confluent_transport, fetching
from stream_processors.app import ProcessorSettings, faust_app
from stream_processors.app import create_app as create_processors
from stream_processors.reconciler.app import FETCH_WAIT as RECONCILER_WAIT
from stream_processors.reconciler.app import ReconcilerSettings
from stream_processors.reconciler.app import create_app as create_reconciler
from stream_processors.views.app import FETCH_WAIT as VIEWS_WAIT
from stream_processors.views.app import ViewSettings
from stream_processors.views.app import create_app as create_views

BOOTSTRAP = KafkaAccess("127.0.0.1:1")
DB_URL = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # engines connect lazily: never here


def consumer_of(app: Any) -> aiokafka.AIOKafkaConsumer:
    async def build() -> aiokafka.AIOKafkaConsumer:
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer.stop()  # never started: only releases what the constructor made
        return consumer
    return asyncio.run(build())


def test_an_app_with_a_fetch_wait_lets_the_broker_gather_records(tmp_path: Any) -> None:
    app = faust_app("t-wait", BOOTSTRAP, 1, str(tmp_path), fetch_wait=fetching.FetchWait(max_wait_ms=123),
                    transport="aiokafka")
    consumer = consumer_of(app)
    assert isinstance(app.transport, fetching.Transport)
    assert (consumer._fetch_max_wait_ms, consumer._fetch_min_bytes) == (123, fetching.FetchWait(1).min_bytes)


def test_an_app_without_one_keeps_fausts_fetch(tmp_path: Any) -> None:
    consumer = consumer_of(faust_app("t-plain", BOOTSTRAP, 1, str(tmp_path), transport="aiokafka"))
    assert consumer._fetch_min_bytes == 1


def test_aiokafka_builds_its_fetcher_from_the_settings_we_set() -> None:
    """An aiokafka upgrade that stops reading them would silently bring back a fetch per record."""
    start = inspect.getsource(aiokafka.AIOKafkaConsumer.start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start
    assert "fetch_min_bytes=self._fetch_min_bytes" in start


def test_a_renamed_setting_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="_fetch_max_wait_ms"):
        fetching.apply(object(), fetching.FetchWait(max_wait_ms=10))  # type: ignore[arg-type]


def test_views_and_reconciler_wait_the_orchestrator_does_not(tmp_path: Any) -> None:
    views = create_views(ViewSettings(BOOTSTRAP, DB_URL, 1, str(tmp_path / "v"), transport="aiokafka"))
    reconciler = create_reconciler(ReconcilerSettings(BOOTSTRAP, DB_URL, {db: DB_URL for db in scan.SOURCES}, 1,
                                                      str(tmp_path / "r"), transport="aiokafka"))
    processors = create_processors(ProcessorSettings(BOOTSTRAP, DB_URL, 1, str(tmp_path / "p"), transport="aiokafka"))
    assert consumer_of(views)._fetch_max_wait_ms == VIEWS_WAIT.max_wait_ms
    assert consumer_of(reconciler)._fetch_max_wait_ms == RECONCILER_WAIT.max_wait_ms
    assert consumer_of(processors)._fetch_min_bytes == 1


def test_the_orchestrator_on_librdkafka_fetches_at_once_as_its_own_principal(tmp_path: Any) -> None:
    access = KafkaAccess("127.0.0.1:1", "walsaga-processors", "secret")
    processors = create_processors(ProcessorSettings(access, DB_URL, 1, str(tmp_path / "p"), transport="confluent"))
    assert isinstance(processors.transport, confluent_transport.Transport)
    settings = confluent_transport.consumer_settings(processors)
    assert "fetch.min.bytes" not in settings and "fetch.wait.max.ms" not in settings  # the broker's default
    assert (settings["group.id"], settings["enable.auto.commit"]) == ("walsaga-processors", False)
    assert (settings["sasl.username"], settings["sasl.password"], settings["sasl.mechanism"]) == \
        ("walsaga-processors", "secret", "SCRAM-SHA-512")


def test_an_unknown_transport_is_refused(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="unknown Faust transport"):
        create_processors(ProcessorSettings(BOOTSTRAP, DB_URL, 1, str(tmp_path / "p"), transport="kafka-python"))


def test_views_and_reconciler_on_librdkafka_keep_their_fetch_wait(tmp_path: Any) -> None:
    views = create_views(ViewSettings(BOOTSTRAP, DB_URL, 1, str(tmp_path / "v"), transport="confluent"))
    reconciler = create_reconciler(ReconcilerSettings(BOOTSTRAP, DB_URL, {db: DB_URL for db in scan.SOURCES}, 1,
                                                      str(tmp_path / "r"), transport="confluent"))
    for app, wait in ((views, VIEWS_WAIT), (reconciler, RECONCILER_WAIT)):
        assert isinstance(app.transport, confluent_transport.Transport)
        settings = confluent_transport.consumer_settings(app)
        assert (settings["fetch.wait.max.ms"], settings["fetch.min.bytes"]) == (wait.max_wait_ms, wait.min_bytes)


def test_every_app_runs_on_librdkafka_unless_told_otherwise(tmp_path: Any) -> None:
    for app in (create_views(ViewSettings(BOOTSTRAP, DB_URL, 1, str(tmp_path / "v"))),
                create_processors(ProcessorSettings(BOOTSTRAP, DB_URL, 1, str(tmp_path / "p")))):
        assert isinstance(app.transport, confluent_transport.Transport)


def test_aiokafka_when_told(tmp_path: Any) -> None:
    for app in (create_views(ViewSettings(BOOTSTRAP, DB_URL, 1, str(tmp_path / "v"), transport="aiokafka")),
                create_processors(ProcessorSettings(BOOTSTRAP, DB_URL, 1, str(tmp_path / "p"),
                                                    transport="aiokafka"))):
        assert not isinstance(app.transport, confluent_transport.Transport)
        assert app.transport.driver_version.startswith("aiokafka")
