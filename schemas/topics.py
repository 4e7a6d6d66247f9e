"""Every topic name, defined once. Outbox rows name their destination in `aggregatetype`; the Debezium
EventRouter (connectors/_outbox-defaults.json) turns it into `walsaga.<aggregatetype>`."""
from __future__ import annotations

from typing import Any

from schemas.participants import INVENTORY_PRICES as INVENTORY_PRICES  # re-exported: every topic is named here
from schemas.participants import PARTICIPANTS, participant

PREFIX = "walsaga."

# A participant's topics are declared with it (schemas/participants.py); these names are for the code that reads a
# particular one. Written by Debezium from the services' outbox tables:
ORDERS_EVENTS = participant("orders").reply_topic
INVENTORY_REPLIES = participant("inventory").reply_topic
PAYMENTS_REPLIES = participant("payments").reply_topic
NOTIFICATIONS_EVENTS = participant("notifications").reply_topic
# INVENTORY_PRICES, keyed by SKU: the price each SKU sells at (PriceChanged), read by the orders service

# written by the stream processors, read by exactly one service each
COMMAND_TOPIC = {p.name: p.command_topic for p in PARTICIPANTS}
ORDERS_COMMANDS = COMMAND_TOPIC["orders"]
INVENTORY_COMMANDS = COMMAND_TOPIC["inventory"]
PAYMENTS_COMMANDS = COMMAND_TOPIC["payments"]
NOTIFICATIONS_COMMANDS = COMMAND_TOPIC["notifications"]

# poison records of every consumer, with the reason and origin in headers (services/common/dead_letters.py)
DEAD_LETTERS = "walsaga.deadletters"

# every service's connector writes one record per heartbeat interval (keyed by database) through its outbox, so its
# replication slot keeps advancing while the service is idle (docs/cdc.md); nobody needs to consume it
CDC_HEARTBEATS = "walsaga.cdc-heartbeats"

# writes to a service's business tables made behind its API (plain SQL), published by triggers through the outbox;
# keyed by order id (or SKU); read by the continuous reconciliation checks
DIRECT_WRITES = "walsaga.direct-writes"

# every contract version any release ships (schemas/avro), published before that release runs (walsaga/stack/
# topics.py, `walsaga schemas publish`), keyed `<Type>.v<N>`, compacted: where a reader finds the writer schema of a
# record from a newer release (schemas/codec.py, services/common/published_schemas.py)
SCHEMAS = "walsaga.schemas"

# what each participant's outbox routes to (its connector writes them)
PARTICIPANT_OUTBOX = [t for p in PARTICIPANTS for t in (p.reply_topic, *p.extra_outbox_topics)]

ALL = [*PARTICIPANT_OUTBOX, *COMMAND_TOPIC.values(), DEAD_LETTERS, CDC_HEARTBEATS, DIRECT_WRITES, SCHEMAS]

# How long every topic keeps its records (set on each topic; the inbox retention is derived from it:
# services/common/retention.py)
RETENTION_MS = 7 * 24 * 3600 * 1000
# Kafka deletes whole segments, once their newest record is past retention: a record lives up to retention.ms +
# segment.ms. The broker's default segment.ms is 7 days, which would keep a record for up to 14 days, past the inbox
# claims that dedup it; a segment rolls daily here, so a record is gone within 8 days (retention.INBOX_KEEP > that).
SEGMENT_MS = 24 * 3600 * 1000


def declared_config(topic: str) -> dict[str, str]:
    """The topic settings walsaga declares on the broker (walsaga/stack/topics.py creates and aligns them)."""
    return {"retention.ms": str(RETENTION_MS), "segment.ms": str(SEGMENT_MS),
            **OVERRIDES.get(topic, {}).get("config", {})}


def longest_life_ms(topic: str) -> int:
    """How long a record of `topic` may still be handed to a consumer, at the most."""
    config = declared_config(topic)
    return int(config["retention.ms"]) + int(config["segment.ms"])

# Records are keyed by saga id (= order id), so one order's messages stay in order on one partition.
PARTITIONS = 4

# topics that differ from the defaults above: partitions and topic configs
OVERRIDES: dict[str, dict[str, Any]] = {
    CDC_HEARTBEATS: {"partitions": 1, "config": {"retention.ms": str(24 * 3600 * 1000)}},
    # one partition: a reader reads it whole; compacted: a version's record is kept for as long as the topic lives
    SCHEMAS: {"partitions": 1, "config": {"cleanup.policy": "compact"}},
}


def outbox_destination(topic: str) -> str:
    """The `aggregatetype` value an outbox row carries so the EventRouter routes it to `topic`."""
    assert topic.startswith(PREFIX), topic
    return topic[len(PREFIX):]
