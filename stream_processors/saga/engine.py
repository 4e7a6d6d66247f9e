"""The saga engine: pure functions from (definition, state, message) to a decision. No I/O."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from stream_processors.saga.model import (Action, Awaiting, Command, Decision, SagaDefinition, SagaState, SagaStatus,
                                          command_id)


def start(defn: SagaDefinition, saga_id: str, data: Mapping[str, Any]) -> Decision:
    state = SagaState(saga_id, defn.name, SagaStatus.RUNNING, 0, dict(data), None)
    return _run_step(defn, state, 0, "started")


def on_reply(defn: SagaDefinition, state: SagaState, reply_type: str, causation_id: str) -> Decision:
    """Apply a participant's reply. Replies to anything but the awaited command are ignored (stale or duplicate)."""
    if state.awaiting is None or causation_id != state.awaiting.command_id or reply_type not in state.awaiting.replies:
        return Decision(state, (), f"ignored {reply_type} (not awaited)", applied=False)
    if state.status is SagaStatus.RUNNING:
        step = defn.steps[state.step]
        if reply_type == step.action.reply:
            if state.step + 1 == len(defn.steps):
                return Decision(_bump(state, status=SagaStatus.COMPLETED, awaiting=None), (), "completed")
            return _run_step(defn, state, state.step + 1, f"{step.name} done")
        reason = step.failures[reply_type]
        failed = _bump(state, failure_reason=reason, data={**state.data, "failure_reason": reason})
        return _compensate_from(defn, failed, state.step - 1, f"{step.name} failed: {reason}")
    if state.status is SagaStatus.COMPENSATING:
        return _compensate_from(defn, state, state.step - 1, f"{defn.steps[state.step].name} compensated")
    if state.status is SagaStatus.FAILING:
        return Decision(_bump(state, status=SagaStatus.FAILED, awaiting=None), (), "failed and compensated")
    return Decision(state, (), f"ignored {reply_type} (saga {state.status})", applied=False)


def _run_step(defn: SagaDefinition, state: SagaState, index: int, note: str) -> Decision:
    step = defn.steps[index]
    cmd = _command(state, "forward", step.name, step.action)
    replies = (step.action.reply, *step.failures)
    new = _bump(state, status=SagaStatus.RUNNING, step=index, awaiting=Awaiting(cmd.command_id, replies))
    return Decision(new, (cmd,), f"{note}; {step.name}: {step.action.command}")


def _compensate_from(defn: SagaDefinition, state: SagaState, index: int, note: str) -> Decision:
    """Compensate the completed step at `index` or the nearest earlier one that has a compensation; when none is
    left, run the failure action."""
    while index >= 0 and defn.steps[index].compensation is None:
        index -= 1
    if index < 0:
        cmd = _command(state, "failure", "failure", defn.failure_action)
        new = _bump(state, status=SagaStatus.FAILING, step=-1,
                    awaiting=Awaiting(cmd.command_id, (defn.failure_action.reply,)))
        return Decision(new, (cmd,), f"{note}; {defn.failure_action.command}")
    step = defn.steps[index]
    assert step.compensation is not None
    cmd = _command(state, "compensate", step.name, step.compensation)
    new = _bump(state, status=SagaStatus.COMPENSATING, step=index,
                awaiting=Awaiting(cmd.command_id, (step.compensation.reply,)))
    return Decision(new, (cmd,), f"{note}; compensate {step.name}: {step.compensation.command}")


def _command(state: SagaState, phase: str, step_name: str, action: Action) -> Command:
    return Command(command_id(state.saga_id, phase, step_name, action.command), action.participant, action.command,
                   action.build(state.data))


def _bump(state: SagaState, **changes: Any) -> SagaState:
    return replace(state, version=state.version + 1, **changes)
