"""The saga engine: pure functions from (definition, state, message or deadline) to a decision. No I/O.

Every decision that sends a command also sets a deadline for its reply. A missed deadline re-sends the same command
(same id, so a participant that did get it drops the copy). A compensatable step that keeps missing its deadline
fails the saga with TIMEOUT and is itself compensated too, because the participant may have acted late; the
participants' barriers refuse such a late action. Compensations and retriable steps never give up silently: past
their budget the saga is PARKED for an operator, with its reason."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from stream_processors.saga.model import (
    Action,
    Awaiting,
    Command,
    Decision,
    SagaDefinition,
    SagaState,
    SagaStatus,
    command_id,
)

IN_FLIGHT = (SagaStatus.RUNNING, SagaStatus.COMPENSATING, SagaStatus.FAILING)


def start(defn: SagaDefinition, saga_id: str, data: Mapping[str, Any]) -> Decision:
    state = SagaState(saga_id, defn.name, SagaStatus.RUNNING, 0, dict(data), None, definition_version=defn.version)
    return _run_step(defn, state, 0, "started")


def on_reply(defn: SagaDefinition, state: SagaState, reply_type: str, causation_id: str) -> Decision:
    """Apply a participant's reply. Replies to anything but the awaited command are ignored (stale or duplicate)."""
    if state.awaiting is None or causation_id != state.awaiting.command_id or reply_type not in state.awaiting.replies:
        return Decision(state, (), f"ignored {reply_type} (not awaited)", applied=False)
    if state.status is SagaStatus.PARKED and state.parked_from is not None:
        # the awaited reply came late, after the saga was parked: it un-parks the saga (else it would be lost)
        state = replace(state, status=state.parked_from, parked_reason=None, parked_from=None)
    if state.status is SagaStatus.RUNNING:
        step = defn.steps[state.step]
        if reply_type == step.action.reply:
            if state.step + 1 == len(defn.steps):
                return Decision(_bump(state, status=SagaStatus.COMPLETED, awaiting=None), (), "completed")
            return _run_step(defn, state, state.step + 1, f"{step.name} done")
        return _fail(defn, state, step.failures[reply_type], state.step - 1, f"{step.name} failed")
    if state.status is SagaStatus.COMPENSATING:
        return _compensate_from(defn, state, state.step - 1, f"{defn.steps[state.step].name} compensated")
    if state.status is SagaStatus.FAILING:
        return Decision(_bump(state, status=SagaStatus.FAILED, awaiting=None), (), "failed and compensated")
    return Decision(state, (), f"ignored {reply_type} (saga {state.status})", applied=False)


def on_deadline(defn: SagaDefinition, state: SagaState) -> Decision:
    """The awaited reply is overdue: re-send, give up on the step (compensate with TIMEOUT), or park."""
    if state.status not in IN_FLIGHT or state.awaiting is None:
        return Decision(state, (), f"no deadline in status {state.status}", applied=False)
    policy = defn.policy
    step = defn.steps[state.step] if state.status is not SagaStatus.FAILING else None
    compensatable_forward = state.status is SagaStatus.RUNNING and step is not None and not step.retriable
    budget = policy.forward_attempts if compensatable_forward else policy.compensation_attempts
    if state.attempt < budget:
        return _resend(defn, state)
    what = _awaited_label(defn, state)
    if compensatable_forward:
        # the step itself may have been applied late: compensate it as well as every completed step before it
        return _fail(defn, state, defn.timeout_reason, state.step, f"{what} timed out after {state.attempt} attempts")
    return park(state, f"{what} unanswered after {state.attempt} attempts")


def interrupt(defn: SagaDefinition, state: SagaState, reason: str) -> Decision:
    """An outside event stops the saga (e.g. the customer cancelled the order). Before the pivot the in-flight step
    is compensated along with every completed one, exactly as on a timeout: the participants' barriers refuse an
    action that arrives after its compensation. From the pivot on it changes nothing here: the pivot's participant
    answers with the failure itself (a cancelled order refuses ConfirmOrder), or a follow-up saga handles it."""
    if state.status is not SagaStatus.RUNNING or defn.steps[state.step].retriable:
        return Decision(state, (), f"{reason} changes nothing here (saga {state.status})", applied=False)
    return _fail(defn, state, reason, state.step, f"interrupted at {defn.steps[state.step].name}")


def queue_followup(state: SagaState, followup: str) -> Decision:
    """Remember to run `followup` on this instance once the current saga completes (see chain)."""
    if state.data.get("followup") == followup:
        return Decision(state, (), f"{followup} already queued", applied=False)
    queued = _bump(state, data={**state.data, "followup": followup})
    return Decision(queued, (), f"{followup} queued until {state.definition} completes")


def chain(nxt: SagaDefinition, state: SagaState, note: str) -> Decision:
    """Start `nxt` on a completed saga instance: same id, same data, its history continues."""
    if state.status is not SagaStatus.COMPLETED:
        raise ValueError(f"saga {state.saga_id} is {state.status}; only a completed saga can chain")
    data = {k: v for k, v in state.data.items() if k != "followup"}
    started = replace(state, definition=nxt.name, definition_version=nxt.version, data=data, failure_reason=None)
    return _run_step(nxt, started, 0, f"{note}; {nxt.name} started")


def park(state: SagaState, reason: str) -> Decision:
    parked = _bump(state, status=SagaStatus.PARKED, parked_reason=reason, parked_from=state.status)
    return Decision(parked, (), f"parked: {reason}")


def redrive(defn: SagaDefinition, state: SagaState) -> Decision:
    """Operator: resume a parked saga where it stopped, with a fresh retry budget (re-sends the awaited command)."""
    if state.status is not SagaStatus.PARKED or state.parked_from is None:
        raise ValueError(f"saga {state.saga_id} is {state.status}, not PARKED")
    resumed = replace(state, status=state.parked_from, parked_reason=None, parked_from=None, attempt=0)
    decision = _resend(defn, resumed)
    return replace(decision, note=f"re-driven by operator; {decision.note}")


def skip(defn: SagaDefinition, state: SagaState) -> Decision:
    """Operator: treat the awaited command as done (the operator fixed it by hand) and move on."""
    if state.status is not SagaStatus.PARKED or state.parked_from is None or state.awaiting is None:
        raise ValueError(f"saga {state.saga_id} is {state.status}, not PARKED")
    resumed = replace(state, status=state.parked_from, parked_reason=None, parked_from=None)
    success_reply = state.awaiting.replies[0]
    decision = on_reply(defn, resumed, success_reply, state.awaiting.command_id)
    return replace(decision, note=f"operator skipped {_awaited_label(defn, state)}; {decision.note}")


def _awaited_label(defn: SagaDefinition, state: SagaState) -> str:
    if state.status is SagaStatus.FAILING or state.parked_from is SagaStatus.FAILING:
        return defn.failure_action.command if defn.failure_action else "failure action"
    step = defn.steps[state.step]
    compensating = SagaStatus.COMPENSATING in (state.status, state.parked_from)
    action = step.compensation if compensating and step.compensation else step.action
    return f"{step.name}: {action.command}"


def _fail(defn: SagaDefinition, state: SagaState, reason: str, compensate_from: int, note: str) -> Decision:
    failed = replace(state, failure_reason=reason, data={**state.data, "failure_reason": reason})
    return _compensate_from(defn, failed, compensate_from, f"{note}: {reason}")


def _resend(defn: SagaDefinition, state: SagaState) -> Decision:
    """The same command again (same id): harmless for a participant that already applied it."""
    if state.status is SagaStatus.FAILING:
        assert defn.failure_action is not None
        cmd = _command(state, "failure", "failure", defn.failure_action)
    elif state.status is SagaStatus.COMPENSATING:
        step = defn.steps[state.step]
        assert step.compensation is not None
        cmd = _command(state, "compensate", step.name, step.compensation)
    else:
        step = defn.steps[state.step]
        cmd = _command(state, "forward", step.name, step.action)
    new = _bump(state, attempt=state.attempt + 1)
    return Decision(new, (cmd,), f"re-sent {cmd.command_type} (attempt {new.attempt})",
                    deadline_in=defn.policy.deadline_after(new.attempt))


def _run_step(defn: SagaDefinition, state: SagaState, index: int, note: str) -> Decision:
    step = defn.steps[index]
    cmd = _command(state, "forward", step.name, step.action)
    replies = (step.action.reply, *step.failures)
    new = _bump(state, status=SagaStatus.RUNNING, step=index, awaiting=Awaiting(cmd.command_id, replies), attempt=1)
    return Decision(new, (cmd,), f"{note}; {step.name}: {step.action.command}",
                    deadline_in=defn.policy.deadline_after(1))


def _compensate_from(defn: SagaDefinition, state: SagaState, index: int, note: str) -> Decision:
    """Compensate the step at `index` or the nearest earlier one that has a compensation; when none is left, run
    the failure action."""
    while index >= 0 and defn.steps[index].compensation is None:
        index -= 1
    if index < 0:
        if defn.failure_action is None:
            raise ValueError(f"saga {defn.name} failed ({state.failure_reason}) but declares no failure action")
        cmd = _command(state, "failure", "failure", defn.failure_action)
        new = _bump(state, status=SagaStatus.FAILING, step=-1, attempt=1,
                    awaiting=Awaiting(cmd.command_id, (defn.failure_action.reply,)))
        return Decision(new, (cmd,), f"{note}; {defn.failure_action.command}",
                        deadline_in=defn.policy.deadline_after(1))
    step = defn.steps[index]
    assert step.compensation is not None
    cmd = _command(state, "compensate", step.name, step.compensation)
    new = _bump(state, status=SagaStatus.COMPENSATING, step=index, attempt=1,
                awaiting=Awaiting(cmd.command_id, (step.compensation.reply,)))
    return Decision(new, (cmd,), f"{note}; compensate {step.name}: {step.compensation.command}",
                    deadline_in=defn.policy.deadline_after(1))


def _command(state: SagaState, phase: str, step_name: str, action: Action) -> Command:
    return Command(command_id(state.saga_id, phase, step_name, action.command), action.participant, action.command,
                   action.build(state.data))


def _bump(state: SagaState, **changes: Any) -> SagaState:
    return replace(state, version=state.version + 1, **changes)
