"""Every saga definition the orchestrator runs, and which event starts which."""
from __future__ import annotations

from stream_processors.saga.place_order import PLACE_ORDER
from stream_processors.saga.refund_order import REFUND_ORDER

DEFINITIONS = {d.name: d for d in (PLACE_ORDER, REFUND_ORDER)}

# events that start a new saga instance (its id is the event's saga id, i.e. the order id)
STARTERS = {"OrderCreated": PLACE_ORDER.name}
