"""The vocabulary of sagas as data: steps, definitions, state, and the commands a decision emits."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from schemas import participants
from schemas.commands import Command as Command  # re-exported: a decision's commands

PayloadBuilder = Callable[[Mapping[str, Any]], dict[str, Any]]


class SagaStatus(StrEnum):
    RUNNING = "RUNNING"            # forward steps
    COMPENSATING = "COMPENSATING"  # undoing completed steps, newest first
    FAILING = "FAILING"            # compensations done; the failure action (e.g. cancel the order) is in flight
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"              # compensated and closed with a reason
    PARKED = "PARKED"              # out of retries; waits for an operator (walsaga saga redrive / skip)

    @property
    def terminal(self) -> bool:
        return self in (SagaStatus.COMPLETED, SagaStatus.FAILED)


@dataclass(frozen=True)
class Action:
    """A command sent to one participant and the reply that confirms it."""

    participant: str
    command: str
    reply: str
    build: PayloadBuilder

    @classmethod
    def of(cls, command: str, build: PayloadBuilder) -> Action:
        """The command as the participant registry declares it (schemas/participants.py): its owner, its success."""
        owner = participants.owner_of(command)
        return cls(owner.name, command, owner.command(command).success, build)


def failing_with(command: str, reason: str) -> dict[str, str]:
    """A step's failures: every business "no" the registry declares for `command`, each failing the saga with
    `reason`."""
    return dict.fromkeys(sorted(participants.owner_of(command).command(command).failures), reason)


@dataclass(frozen=True)
class RetryPolicy:
    """Deadlines per attempt grow exponentially: step_timeout * 2**(attempt-1), capped at max_backoff seconds."""

    step_timeout: float = 10.0
    max_backoff: float = 60.0
    forward_attempts: int = 3        # a compensatable step's attempts before the saga compensates with TIMEOUT
    compensation_attempts: int = 8   # attempts of a compensation / retriable step before the saga is parked

    def deadline_after(self, attempt: int) -> float:
        return min(self.step_timeout * 2.0 ** (attempt - 1), self.max_backoff)


@dataclass(frozen=True)
class Step:
    name: str
    action: Action
    # reply types that mean the step failed for a business reason, with the reason the saga fails with
    failures: Mapping[str, str] = field(default_factory=dict)
    compensation: Action | None = None
    # after the pivot a step may not fail: on a missed deadline it is only retried (then parked), never compensated
    retriable: bool = False


# a stage: one step, or steps run in parallel (their commands sent together; the stage is done when every one is)
Stage = Step | tuple[Step, ...]


@dataclass(frozen=True)
class SagaDefinition:
    name: str
    steps: tuple[Stage, ...]
    # runs once after all compensations, with data["failure_reason"] set; None for a saga whose steps cannot fail
    failure_action: Action | None
    timeout_reason: str = "TIMEOUT"
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy())
    # unsolicited events that stop the saga before its pivot, with the reason it fails with (engine.interrupt)
    interrupts: Mapping[str, str] = field(default_factory=dict)
    # unsolicited events that queue another saga on the same instance, run once this one completes (engine.chain)
    followups: Mapping[str, str] = field(default_factory=dict)
    # a changed definition is a new version next to the old one: an instance finishes on the version it started with
    version: int = 1

    def __post_init__(self) -> None:
        names = [s.name for s in self.all_steps()]
        if len(names) != len(set(names)):
            raise ValueError(f"saga {self.name}: step names repeat: {names}")
        for index in range(len(self.steps)):
            stage = self.stage(index)
            if not stage or len({s.retriable for s in stage}) > 1:
                raise ValueError(f"saga {self.name}: stage {index} must be non-empty and either all retriable "
                                 f"(past the pivot) or all compensatable: {[s.name for s in stage]}")

    def actions(self) -> tuple[Action, ...]:
        """Every command the saga may send: its steps' actions and compensations, and its failure action."""
        found: list[Action] = []
        for step in self.all_steps():
            found += [step.action] + ([step.compensation] if step.compensation else [])
        return (*found, *([self.failure_action] if self.failure_action else []))

    def stage(self, index: int) -> tuple[Step, ...]:
        """The steps of stage `index`, run in parallel (one for a sequential step)."""
        stage = self.steps[index]
        return stage if isinstance(stage, tuple) else (stage,)

    def all_steps(self) -> list[Step]:
        return [s for index in range(len(self.steps)) for s in self.stage(index)]

    def reply_types(self) -> set[str]:
        types = {self.failure_action.reply} if self.failure_action else set()
        for s in self.all_steps():
            types |= {s.action.reply, *s.failures}
            if s.compensation:
                types.add(s.compensation.reply)
        return types


@dataclass(frozen=True)
class Awaiting:
    command_id: str
    replies: tuple[str, ...]


@dataclass(frozen=True)
class SagaState:
    saga_id: str
    definition: str
    status: SagaStatus
    step: int                    # index of the stage being run or compensated
    data: Mapping[str, Any]
    awaiting: tuple[Awaiting, ...]  # the commands of the stage still unanswered (several for parallel steps)
    failure_reason: str | None = None
    version: int = 0
    attempt: int = 1                      # attempts of the awaited command so far
    parked_reason: str | None = None
    parked_from: SagaStatus | None = None  # the status to resume in when an operator re-drives the saga
    definition_version: int = 1           # the version of `definition` the instance runs (started or chained on)


@dataclass(frozen=True)
class Decision:
    state: SagaState
    commands: tuple[Command, ...]
    note: str
    applied: bool = True  # False: the message did not match what the saga waits for (stale or duplicate)
    deadline_in: float | None = None  # seconds until the awaited reply is overdue; None when nothing is awaited


def command_id(saga_id: str, phase: str, step: str, command: str) -> str:
    """Deterministic: the same saga, phase and step always yield the same id, so a resent command is harmless."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"saga:{saga_id}:{phase}:{step}:{command}"))
