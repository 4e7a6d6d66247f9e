"""The participant registry (schemas/participants.py) against the rest of the tree: every saga action names the
participant that handles its command and that command's success reply, every business failure a saga compensates on
is declared once (in the registry), every registered command has a handler and a contract, and the ports, topics and
ACLs derived from it do not collide."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc import connectors
from schemas import codec, participants, topics
from schemas.participants import PARTICIPANTS
from services.inventory import handlers as inventory
from services.notifications.handlers import NotificationHandlers
from services.orders import handlers as orders
from services.payments.handlers import PaymentHandlers
from stream_processors.notifications.fanout import commands_for
from stream_processors.saga import catalog
from stream_processors.saga.model import SagaDefinition, Step
from walsaga.stack import kafka_acls
from walsaga.stack.config import API_SERVICES, DATABASES, REPO, SERVICES, Ports

# each participant's handler table (a new participant adds its own: CONTRIBUTING.md)
HANDLERS = {
    "orders": orders.COMMAND_HANDLERS,
    "inventory": inventory.COMMAND_HANDLERS,
    "payments": PaymentHandlers(provider=None).table(),  # type: ignore[arg-type]  # only the table's keys are read
    "notifications": NotificationHandlers(channels={}).table(),
}


def _steps(definition: SagaDefinition) -> Iterator[Step]:
    for i in range(len(definition.steps)):
        yield from definition.stage(i)


@pytest.mark.parametrize("definition", catalog.DEFINITIONS, ids=lambda d: f"{d.name}.v{d.version}")
def test_every_saga_action_is_what_the_registry_says(definition: SagaDefinition) -> None:
    for action in definition.actions():
        owner = participants.owner_of(action.command)
        assert (action.participant, action.reply) == (owner.name, owner.command(action.command).success), action


@pytest.mark.parametrize("definition", catalog.DEFINITIONS, ids=lambda d: f"{d.name}.v{d.version}")
def test_a_step_compensates_on_exactly_the_failures_its_command_declares(definition: SagaDefinition) -> None:
    for step in _steps(definition):
        declared = participants.owner_of(step.action.command).command(step.action.command).failures
        assert set(step.failures) == declared, step.name


def test_every_registered_command_has_a_handler_and_no_handler_is_unregistered() -> None:
    assert set(HANDLERS) == set(participants.NAMES)
    for p in PARTICIPANTS:
        assert set(HANDLERS[p.name]) == {c.name for c in p.commands}, p.name


def test_the_orchestrator_reads_the_starters_and_every_commanded_participants_replies() -> None:
    assert catalog.sources() == (topics.ORDERS_EVENTS, topics.INVENTORY_REPLIES, topics.PAYMENTS_REPLIES)
    assert kafka_acls.EVENTS_AND_REPLIES == catalog.sources()


def test_the_notification_fanout_sends_a_registered_command() -> None:
    (command,) = commands_for("OrderConfirmed", {"order_id": "o-1", "customer_id": "c-1"}, ["email"])
    assert command.participant == participants.owner_of(command.command_type).name


def test_every_command_and_reply_has_a_contract_and_each_command_one_owner() -> None:
    contracts = {name for name, _ in codec.sources()}
    for p in PARTICIPANTS:
        for spec in p.commands:
            assert participants.owner_of(spec.name) is p
            assert {spec.name, spec.success, *spec.failures} <= contracts, spec


def test_each_participant_has_its_folder_migrations_and_connector() -> None:
    for p in PARTICIPANTS:
        assert (REPO / "services" / p.name / "main.py").is_file(), p.name
        assert (REPO / "services" / p.name / "migrations").is_dir(), p.name
        assert connectors.identity(p.name)[1]["slot.name"] == f"walsaga_{p.name}_outbox", p.name


def test_the_stack_and_the_topics_follow_the_registry() -> None:
    assert SERVICES == participants.NAMES
    assert set(API_SERVICES) == {*participants.NAMES, "queries"}
    assert set(DATABASES) == {*participants.NAMES, "saga", "views"}
    assert topics.COMMAND_TOPIC == {p.name: p.command_topic for p in PARTICIPANTS}
    for p in PARTICIPANTS:
        assert {p.reply_topic, p.command_topic, *p.extra_outbox_topics} <= set(topics.ALL)
        assert p.reply_topic in kafka_acls.OUTBOX_ROUTED
        assert {t.name for t in kafka_acls.grants() if t.principal == p.principal
                and t.operation.name == "READ" and t.resource.name == "TOPIC"} == {
            p.command_topic, *p.extra_reads, topics.SCHEMAS}


def test_ports_are_explicit_and_never_collide() -> None:
    ports = Ports()
    api = [ports.api(svc, i) for svc in API_SERVICES for i in range(5)]
    postgres = [ports.postgres(db) for db in DATABASES]
    workers = [ports.faust_web(0), ports.views_web(0)]
    every = api + postgres + workers + [ports.gateway, ports.kafka, ports.connect]
    assert len(every) == len(set(every))
    assert max(api) < ports.faust_web(0)  # five API instances of each service stay below the workers' ports
    assert [ports.postgres(p.name) for p in PARTICIPANTS] == [p.postgres_port for p in PARTICIPANTS]
    assert [ports.api(p.name, 0) for p in PARTICIPANTS] == [p.api_port for p in PARTICIPANTS]


def test_the_registry_is_the_bottom_layer() -> None:
    source = Path(participants.__file__).read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert all(line.startswith(("from __future__", "from dataclasses")) for line in imports), imports
