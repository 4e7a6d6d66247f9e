"""What a record costs a Faust app on each transport: aiokafka (Faust's default) against librdkafka
(stream_processors/confluent_transport.py).

A relay app (a Faust worker process, one agent: take what has arrived, send each record on with its key and headers,
wait for the broker's acknowledgements, like the orchestrator's agent) reads one topic and writes another. A paced
producer feeds it; a consumer reads the output and checks every record arrived once with its headers. The relay
process's CPU (all its threads, from /proc) is divided by the records it relayed: at a low rate (each record its own
fetch, as at 10 sagas/s) and for a burst (batches). Runs against the benchmark stack (`python -m bench.cost --keep`
leaves it up), as the stack's admin principal, on topics of its own that it deletes afterwards.

    python -m bench.transports [--rate 70] [--seconds 20] [--burst 10000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.headers import as_pairs, for_confluent
from services.common.kafka_access import KafkaAccess

IN, OUT = "walsaga.bench.relay-in", "walsaga.bench.relay-out"
TRANSPORTS = ("aiokafka", "confluent")
TICK = os.sysconf("SC_CLK_TCK")


def relay_main(transport: str, web_port: int) -> None:
    """The relay worker (runs in its own process)."""
    import asyncio
    import logging

    import faust
    from faust import Worker

    from stream_processors.app import faust_app
    from stream_processors.batching import take_ready

    logging.basicConfig(level=logging.WARNING)
    app = faust_app(f"walsaga-bench-relay-{transport}-{uuid.uuid4().hex[:8]}", KafkaAccess.from_env(), web_port,
                    f"/tmp/walsaga-bench-relay-{transport}", transport=transport)

    @app.agent(app.topic(IN, key_serializer="raw", value_serializer="raw"))
    async def relay(stream: faust.StreamT) -> None:
        async for events in take_ready(stream, 200):
            sent = [await app.producer.send(OUT, e.message.key, e.message.value, None, None,
                                            as_pairs(e.message.headers)) for e in events]
            await asyncio.gather(*sent)

    Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Result:
    transport: str
    phase: str
    records: int
    cpu_ms_per_record: float
    latency_p50_ms: float
    latency_p99_ms: float


def _topics(admin: AdminClient) -> None:
    for fut in admin.delete_topics([IN, OUT]).values():
        try:
            fut.result()
        except Exception:  # noqa: BLE001 - absent on a first run
            pass
    time.sleep(1)
    for fut in admin.create_topics([NewTopic(t, 4, 1) for t in (IN, OUT)]).values():
        fut.result()


def _drain(consumer: Consumer, expected: set[str], timeout: float, relay: subprocess.Popen[bytes]) -> list[float]:
    """Reads the relay's output until every expected id arrived once with its headers; latencies in ms."""
    latencies, deadline = [], time.monotonic() + timeout
    while expected and time.monotonic() < deadline and relay.poll() is None:
        for msg in consumer.consume(500, 0.5):
            if msg.error():
                continue
            headers = dict(as_pairs(msg.headers()))
            rid = headers.get("id", b"").decode()
            if rid not in expected or headers.get("kind") != b"relay":
                raise AssertionError(f"unexpected or duplicated record {rid!r} with headers {headers}")
            expected.discard(rid)
            latencies.append(msg.timestamp()[1] - float(headers["sent_ms"]))  # the relay's send time
    if expected:
        raise AssertionError(f"{len(expected)} records never came out of the relay")
    return latencies


def _feed(producer: Producer, count: int, rate: float | None) -> set[str]:
    ids: set[str] = set()
    start = time.monotonic()
    for i in range(count):
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        rid = str(uuid.uuid4())
        ids.add(rid)
        headers = [("id", rid.encode()), ("kind", b"relay"), ("sent_ms", str(time.time() * 1000).encode())]
        producer.produce(IN, key=rid.encode(), value=os.urandom(300), headers=for_confluent(headers))
        producer.poll(0)
    producer.flush()
    return ids


def measure(access: KafkaAccess, transport: str, rate: float, seconds: float, burst: int, port: int) -> list[Result]:
    relay = subprocess.Popen([sys.executable, "-m", "bench.transports", "--relay", transport, "--port", str(port),
                              "worker"], env={**os.environ, **access.env()})
    producer = Producer(access.confluent({"linger.ms": 1}))
    consumer = Consumer(access.confluent({"group.id": f"bench-relay-out-{uuid.uuid4()}",
                                          "auto.offset.reset": "latest", "enable.auto.commit": False}))
    consumer.subscribe([OUT])
    results = []
    try:
        consumer.consume(1, 3.0)  # joins the group before anything is relayed
        print(f"bench.transports: {transport}: warming up", flush=True)
        _drain(consumer, _feed(producer, 300, 50), 120, relay)
        time.sleep(2)
        for phase, count, pace in ((f"{rate:g}/s", int(rate * seconds), rate), ("burst", burst, None)):
            print(f"bench.transports: {transport}: {phase}, {count} records", flush=True)
            before = cpu_seconds(relay.pid)
            latencies = _drain(consumer, _feed(producer, count, pace), 120 + seconds, relay)
            used = cpu_seconds(relay.pid) - before
            q = statistics.quantiles(latencies, n=100)
            results.append(Result(transport, phase, count, used * 1000 / count, q[49], q[98]))
            print(f"bench.transports: {results[-1]}", flush=True)
            time.sleep(2)
    finally:
        relay.terminate()
        relay.wait(30)
        consumer.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.transports", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=70.0, help="records/s of the paced phase (70: ~10 sagas/s)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=10000)
    parser.add_argument("--only", choices=TRANSPORTS, help="measure one transport")
    parser.add_argument("--relay", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=2990, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.relay:
        sys.argv = [sys.argv[0], "worker"]
        relay_main(args.relay, args.port)
        return 0
    from bench.run import bench_config
    from walsaga.stack import kafka_acls
    access = kafka_acls.admin(bench_config())
    admin = AdminClient(access.confluent())
    results: list[Result] = []
    for i, transport in enumerate([args.only] if args.only else TRANSPORTS):
        _topics(admin)
        results += measure(access, transport, args.rate, args.seconds, args.burst, args.port + i)
    _topics(admin)
    admin.delete_topics([IN, OUT])
    print("| transport | phase | records | relay CPU-ms per record | latency p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.transport} | {r.phase} | {r.records} | {r.cpu_ms_per_record:.3f} | {r.latency_p50_ms:.1f} | "
              f"{r.latency_p99_ms:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
