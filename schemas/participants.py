"""One declaration per participant service: what it is called, where it listens, the topics it answers on, and the
commands it handles with their replies. Topic names, the stack's ports and processes, the Kafka ACLs, the services'
failure replies and the checks that every saga step has a handler are derived from it (tests/unit/
test_participants.py holds the rest of the tree to it).

Ports are explicit numbers (before a stack's offset): adding a participant never moves another one's ports. A
participant's name is part of the data saga instances store (the command's participant): never rename one."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandSpec:
    """A command a participant handles: its success reply and the replies that are a business "no" (the saga
    compensates on those; every other failure is retried, parked or dead-lettered)."""

    name: str
    success: str
    failures: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Participant:
    name: str
    postgres_port: int
    api_port: int                   # instance i listens on api_port + 10 * i
    reply_topic: str                # where its outbox routes its replies and events (the names are not uniform)
    commands: tuple[CommandSpec, ...]
    extra_outbox_topics: tuple[str, ...] = ()   # other topics its outbox routes to
    extra_reads: tuple[str, ...] = ()           # events of others its command consumer follows
    saga_branches: bool = True                  # its commands as HTTP saga branches (the DTM baseline)

    @property
    def command_topic(self) -> str:
        return f"walsaga.{self.name}.commands"

    @property
    def principal(self) -> str:
        """Its Kafka principal, which is also its consumer group."""
        return f"walsaga-{self.name}"

    def command(self, name: str) -> CommandSpec:
        for spec in self.commands:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.name} handles no command {name}")

    def failure_replies(self) -> dict[str, frozenset[str]]:
        return {c.name: c.failures for c in self.commands if c.failures}


INVENTORY_PRICES = "walsaga.inventory.prices"  # keyed by SKU: the price each SKU sells at (PriceChanged)

PARTICIPANTS: tuple[Participant, ...] = (
    Participant(
        "orders", postgres_port=15432, api_port=18101, reply_topic="walsaga.orders.events",
        commands=(
            # a customer's cancel that won the race makes ConfirmOrder answer OrderCancelled
            CommandSpec("ConfirmOrder", "OrderConfirmed", frozenset({"OrderCancelled"})),
            CommandSpec("CancelOrder", "OrderCancelled"),
        ),
        extra_reads=(INVENTORY_PRICES,)),
    Participant(
        "inventory", postgres_port=15433, api_port=18102, reply_topic="walsaga.inventory.replies",
        commands=(
            CommandSpec("ReserveStock", "StockReserved", frozenset({"StockReservationFailed"})),
            CommandSpec("ReleaseStock", "StockReleased"),
            CommandSpec("CommitStock", "StockCommitted"),
            CommandSpec("ReturnStock", "StockReturned"),
        ),
        extra_outbox_topics=(INVENTORY_PRICES,)),
    Participant(
        "payments", postgres_port=15434, api_port=18103, reply_topic="walsaga.payments.replies",
        commands=(
            CommandSpec("AuthorizePayment", "PaymentAuthorized", frozenset({"PaymentDeclined"})),
            CommandSpec("VoidPayment", "PaymentVoided"),
            CommandSpec("CapturePayment", "PaymentCaptured"),
            CommandSpec("RefundPayment", "PaymentRefunded"),
        )),
    Participant(
        "notifications", postgres_port=15435, api_port=18104, reply_topic="walsaga.notifications.events",
        commands=(CommandSpec("SendNotification", "NotificationSent"),),
        saga_branches=False),
)


def participant(name: str) -> Participant:
    for p in PARTICIPANTS:
        if p.name == name:
            return p
    raise KeyError(f"no participant {name}")


def owner_of(command: str) -> Participant:
    """The participant that handles `command`."""
    owners = [p for p in PARTICIPANTS if any(c.name == command for c in p.commands)]
    if len(owners) != 1:
        raise KeyError(f"{command} is handled by {len(owners)} participants, not one")
    return owners[0]


NAMES: tuple[str, ...] = tuple(p.name for p in PARTICIPANTS)
