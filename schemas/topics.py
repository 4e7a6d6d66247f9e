"""Every topic name, defined once. Outbox rows name their destination in `aggregatetype`; the Debezium
EventRouter (connectors/*.json) turns it into `walsaga.<aggregatetype>`."""
from __future__ import annotations

from typing import Any

PREFIX = "walsaga."

# written by Debezium from the services' outbox tables
ORDERS_EVENTS = "walsaga.orders.events"
INVENTORY_REPLIES = "walsaga.inventory.replies"
PAYMENTS_REPLIES = "walsaga.payments.replies"
NOTIFICATIONS_EVENTS = "walsaga.notifications.events"
# keyed by SKU: the price each SKU sells at (PriceChanged), read by the orders service to price orders
INVENTORY_PRICES = "walsaga.inventory.prices"

# written by the stream processors, read by exactly one service each
ORDERS_COMMANDS = "walsaga.orders.commands"
INVENTORY_COMMANDS = "walsaga.inventory.commands"
PAYMENTS_COMMANDS = "walsaga.payments.commands"
NOTIFICATIONS_COMMANDS = "walsaga.notifications.commands"

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

COMMAND_TOPIC = {
    "orders": ORDERS_COMMANDS,
    "inventory": INVENTORY_COMMANDS,
    "payments": PAYMENTS_COMMANDS,
    "notifications": NOTIFICATIONS_COMMANDS,
}

ALL = [ORDERS_EVENTS, INVENTORY_REPLIES, PAYMENTS_REPLIES, NOTIFICATIONS_EVENTS, INVENTORY_PRICES,
       ORDERS_COMMANDS, INVENTORY_COMMANDS, PAYMENTS_COMMANDS, NOTIFICATIONS_COMMANDS, DEAD_LETTERS, CDC_HEARTBEATS,
       DIRECT_WRITES, SCHEMAS]

# How long every topic keeps its records (set on each topic; the inbox retention is derived from it:
# services/common/retention.py)
RETENTION_MS = 7 * 24 * 3600 * 1000

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
