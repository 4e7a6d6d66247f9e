"""Every saga definition the orchestrator runs, each version of it, and which event starts which saga.

A changed definition is added as a new version (same name, `version` + 1) next to the old one: a new instance starts
on the newest version, an instance in flight finishes on the version it started with. A version leaves this list
only once no instance runs it any more (`walsaga sagas --versions` counts them); an orchestrator whose list lacks a
version that instances in flight still run refuses to start (Orchestrator.missing_versions)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas import participants, topics
from stream_processors.saga.model import SagaDefinition
from stream_processors.saga.place_order import PLACE_ORDER, PLACE_ORDER_V1, saga_data
from stream_processors.saga.refund_order import REFUND_ORDER

DEFINITIONS: tuple[SagaDefinition, ...] = (PLACE_ORDER_V1, PLACE_ORDER, REFUND_ORDER)

@dataclass(frozen=True)
class Starter:
    """An event that starts a new instance of `saga` (its id is the event's saga id, i.e. the order id), and what
    the instance keeps of the event."""

    saga: str
    data: Callable[[Mapping[str, Any]], dict[str, Any]]


STARTERS = {"OrderCreated": Starter(PLACE_ORDER.name, saga_data)}
STARTER_TOPICS = (topics.ORDERS_EVENTS,)


def sources(definitions: Iterable[SagaDefinition] = DEFINITIONS) -> tuple[str, ...]:
    """The topics an orchestrator reads: the starters' and the reply topic of every participant a saga commands
    (schemas/participants.py), each once, in a stable order."""
    replies = [participants.owner_of(a.command).reply_topic for d in definitions for a in d.actions()]
    return tuple(dict.fromkeys([*STARTER_TOPICS, *replies]))


def by_version(definitions: Iterable[SagaDefinition]) -> dict[tuple[str, int], SagaDefinition]:
    """(name, version) -> definition; a version declared twice is a mistake, refused here."""
    out: dict[tuple[str, int], SagaDefinition] = {}
    for d in definitions:
        if (d.name, d.version) in out:
            raise ValueError(f"saga {d.name} v{d.version} is declared twice")
        out[(d.name, d.version)] = d
    return out


def newest(definitions: Iterable[SagaDefinition]) -> dict[str, SagaDefinition]:
    """name -> its newest version: what a new instance (or a chained follow-up) starts on."""
    out: dict[str, SagaDefinition] = {}
    for d in definitions:
        if d.name not in out or d.version > out[d.name].version:
            out[d.name] = d
    return out
