"""The saga engine: pure functions from (definition, state, message or deadline) to a decision. No I/O.

Every decision that sends a command also sets a deadline for its reply. A missed deadline re-sends the same command
(same id, so a participant that did get it drops the copy). A compensatable step that keeps missing its deadline
fails the saga with TIMEOUT and is itself compensated too, because the participant may have acted late; the
participants' barriers refuse such a late action. Compensations and retriable steps never give up silently: past
their budget the saga is PARKED for an operator, with its reason.

A stage of parallel steps sends all their commands at once and awaits every reply. A business failure of one fails
the saga: every other step of the stage is compensated, done or still in flight (the barriers again), then the
earlier stages, newest first; the compensations of one stage are sent together too."""
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
    Step,
    command_id,
)

IN_FLIGHT = (SagaStatus.RUNNING, SagaStatus.COMPENSATING, SagaStatus.FAILING)


def start(defn: SagaDefinition, saga_id: str, data: Mapping[str, Any]) -> Decision:
    state = SagaState(saga_id, defn.name, SagaStatus.RUNNING, 0, dict(data), (), definition_version=defn.version)
    return _run_stage(defn, state, 0, "started")


def on_reply(defn: SagaDefinition, state: SagaState, reply_type: str, causation_id: str) -> Decision:
    """Apply a participant's reply. Replies to anything but an awaited command are ignored (stale or duplicate)."""
    hit = next((a for a in state.awaiting if a.command_id == causation_id and reply_type in a.replies), None)
    if hit is None:
        return Decision(state, (), f"ignored {reply_type} (not awaited)", applied=False)
    if state.status is SagaStatus.PARKED and state.parked_from is not None:
        # the awaited reply came late, after the saga was parked: it un-parks the saga (else it would be lost)
        state = replace(state, status=state.parked_from, parked_reason=None, parked_from=None)
    rest = tuple(a for a in state.awaiting if a is not hit)
    if state.status is SagaStatus.RUNNING:
        step = _step_of(defn, state, "forward", hit.command_id)
        if reply_type != step.action.reply:
            return _fail(defn, state, step.failures[reply_type], state.step, f"{step.name} failed", spare=step.name)
        if rest:
            return _wait_for_rest(defn, state, rest, f"{step.name} done")
        if state.step + 1 == len(defn.steps):
            return Decision(_bump(state, status=SagaStatus.COMPLETED, awaiting=()), (), "completed")
        return _run_stage(defn, state, state.step + 1, f"{step.name} done")
    if state.status is SagaStatus.COMPENSATING:
        step = _step_of(defn, state, "compensate", hit.command_id)
        if rest:
            return _wait_for_rest(defn, state, rest, f"{step.name} compensated")
        return _compensate_from(defn, state, state.step - 1, f"{step.name} compensated")
    if state.status is SagaStatus.FAILING:
        return Decision(_bump(state, status=SagaStatus.FAILED, awaiting=()), (), "failed and compensated")
    return Decision(state, (), f"ignored {reply_type} (saga {state.status})", applied=False)


def on_deadline(defn: SagaDefinition, state: SagaState) -> Decision:
    """An awaited reply is overdue: re-send what is unanswered, give up on the stage (compensate with TIMEOUT), or
    park."""
    if state.status not in IN_FLIGHT or not state.awaiting:
        return Decision(state, (), f"no deadline in status {state.status}", applied=False)
    policy = defn.policy
    stage = defn.stage(state.step) if state.status is not SagaStatus.FAILING else ()
    compensatable_forward = state.status is SagaStatus.RUNNING and not any(s.retriable for s in stage)
    budget = policy.forward_attempts if compensatable_forward else policy.compensation_attempts
    if state.attempt < budget:
        return _resend(defn, state)
    what = _awaited_label(defn, state)
    if compensatable_forward:
        # the stage's steps may have been applied late: compensate them as well as every completed stage before
        return _fail(defn, state, defn.timeout_reason, state.step, f"{what} timed out after {state.attempt} attempts")
    return park(state, f"{what} unanswered after {state.attempt} attempts")


def interrupt(defn: SagaDefinition, state: SagaState, reason: str) -> Decision:
    """An outside event stops the saga (e.g. the customer cancelled the order). Before the pivot the in-flight stage
    is compensated along with every completed one, exactly as on a timeout: the participants' barriers refuse an
    action that arrives after its compensation. From the pivot on it changes nothing here: the pivot's participant
    answers with the failure itself (a cancelled order refuses ConfirmOrder), or a follow-up saga handles it."""
    if state.status is not SagaStatus.RUNNING or any(s.retriable for s in defn.stage(state.step)):
        return Decision(state, (), f"{reason} changes nothing here (saga {state.status})", applied=False)
    return _fail(defn, state, reason, state.step, f"interrupted at {_names(defn.stage(state.step))}")


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
    return _run_stage(nxt, started, 0, f"{note}; {nxt.name} started")


def park(state: SagaState, reason: str) -> Decision:
    parked = _bump(state, status=SagaStatus.PARKED, parked_reason=reason, parked_from=state.status)
    return Decision(parked, (), f"parked: {reason}")


def redrive(defn: SagaDefinition, state: SagaState) -> Decision:
    """Operator: resume a parked saga where it stopped, with a fresh retry budget (re-sends what is awaited)."""
    if state.status is not SagaStatus.PARKED or state.parked_from is None:
        raise ValueError(f"saga {state.saga_id} is {state.status}, not PARKED")
    resumed = replace(state, status=state.parked_from, parked_reason=None, parked_from=None, attempt=0)
    decision = _resend(defn, resumed)
    return replace(decision, note=f"re-driven by operator; {decision.note}")


def skip(defn: SagaDefinition, state: SagaState) -> Decision:
    """Operator: treat every awaited command as done (the operator fixed it by hand) and move on."""
    if state.status is not SagaStatus.PARKED or state.parked_from is None or not state.awaiting:
        raise ValueError(f"saga {state.saga_id} is {state.status}, not PARKED")
    label = _awaited_label(defn, state)
    current = replace(state, status=state.parked_from, parked_reason=None, parked_from=None)
    for awaited in state.awaiting:
        decision = on_reply(defn, current, awaited.replies[0], awaited.command_id)
        current = decision.state
    return replace(decision, note=f"operator skipped {label}; {decision.note}")


def _awaited_label(defn: SagaDefinition, state: SagaState) -> str:
    if state.status is SagaStatus.FAILING or state.parked_from is SagaStatus.FAILING:
        return defn.failure_action.command if defn.failure_action else "failure action"
    compensating = SagaStatus.COMPENSATING in (state.status, state.parked_from)
    phase = "compensate" if compensating else "forward"
    labels = []
    for step, action in _stage_actions(defn, state.step, phase):
        if command_id(state.saga_id, phase, step.name, action.command) in {a.command_id for a in state.awaiting}:
            labels.append(f"{step.name}: {action.command}")
    return " + ".join(labels)


def _fail(defn: SagaDefinition, state: SagaState, reason: str, compensate_from: int, note: str,
          spare: str | None = None) -> Decision:
    failed = replace(state, failure_reason=reason, data={**state.data, "failure_reason": reason})
    return _compensate_from(defn, failed, compensate_from, f"{note}: {reason}", spare)


def _resend(defn: SagaDefinition, state: SagaState) -> Decision:
    """The unanswered commands again (same ids): harmless for a participant that already applied one."""
    cmds = _outstanding(defn, state)
    new = _bump(state, attempt=state.attempt + 1)
    return Decision(new, cmds, f"re-sent {' + '.join(c.command_type for c in cmds)} (attempt {new.attempt})",
                    deadline_in=defn.policy.deadline_after(new.attempt))


def _outstanding(defn: SagaDefinition, state: SagaState) -> tuple[Command, ...]:
    if state.status is SagaStatus.FAILING:
        assert defn.failure_action is not None
        candidates = [_command(state, "failure", "failure", defn.failure_action)]
    else:
        phase = "compensate" if state.status is SagaStatus.COMPENSATING else "forward"
        candidates = [_command(state, phase, step.name, action) for step, action in _stage_actions(defn, state.step,
                                                                                                    phase)]
    awaited = {a.command_id for a in state.awaiting}
    return tuple(c for c in candidates if c.command_id in awaited)


def _wait_for_rest(defn: SagaDefinition, state: SagaState, rest: tuple[Awaiting, ...], note: str) -> Decision:
    """One of a stage's parallel commands answered: the others are still awaited, on a fresh deadline."""
    waiting = _bump(state, awaiting=rest)
    return Decision(waiting, (), f"{note}; waiting for {_awaited_label(defn, waiting)}",
                    deadline_in=defn.policy.deadline_after(state.attempt))


def _run_stage(defn: SagaDefinition, state: SagaState, index: int, note: str) -> Decision:
    stage = defn.stage(index)
    cmds = tuple(_command(state, "forward", step.name, step.action) for step in stage)
    awaiting = tuple(Awaiting(cmd.command_id, (step.action.reply, *step.failures))
                     for step, cmd in zip(stage, cmds, strict=True))
    new = _bump(state, status=SagaStatus.RUNNING, step=index, awaiting=awaiting, attempt=1)
    label = " + ".join(f"{step.name}: {step.action.command}" for step in stage)
    return Decision(new, cmds, f"{note}; {label}", deadline_in=defn.policy.deadline_after(1))


def _compensate_from(defn: SagaDefinition, state: SagaState, index: int, note: str,
                     spare: str | None = None) -> Decision:
    """Compensate the steps of stage `index` (all but `spare`, the one that failed and so did nothing) or of the
    nearest earlier stage that has a compensation; when none is left, run the failure action."""
    while index >= 0 and not _compensations(defn, index, spare):
        index, spare = index - 1, None
    if index < 0:
        if defn.failure_action is None:
            raise ValueError(f"saga {defn.name} failed ({state.failure_reason}) but declares no failure action")
        cmd = _command(state, "failure", "failure", defn.failure_action)
        new = _bump(state, status=SagaStatus.FAILING, step=-1, attempt=1,
                    awaiting=(Awaiting(cmd.command_id, (defn.failure_action.reply,)),))
        return Decision(new, (cmd,), f"{note}; {defn.failure_action.command}",
                        deadline_in=defn.policy.deadline_after(1))
    pairs = _compensations(defn, index, spare)
    cmds = tuple(_command(state, "compensate", step.name, action) for step, action in pairs)
    awaiting = tuple(Awaiting(cmd.command_id, (action.reply,)) for (_, action), cmd in zip(pairs, cmds, strict=True))
    new = _bump(state, status=SagaStatus.COMPENSATING, step=index, attempt=1, awaiting=awaiting)
    label = " + ".join(f"{step.name}: {action.command}" for step, action in pairs)
    return Decision(new, cmds, f"{note}; compensate {label}", deadline_in=defn.policy.deadline_after(1))


def _compensations(defn: SagaDefinition, index: int, spare: str | None) -> list[tuple[Step, Action]]:
    return [(s, s.compensation) for s in defn.stage(index) if s.compensation is not None and s.name != spare]


def _stage_actions(defn: SagaDefinition, index: int, phase: str) -> list[tuple[Step, Action]]:
    if phase == "compensate":
        return _compensations(defn, index, None)
    return [(s, s.action) for s in defn.stage(index)]


def _step_of(defn: SagaDefinition, state: SagaState, phase: str, cmd_id: str) -> Step:
    for step, action in _stage_actions(defn, state.step, phase):
        if command_id(state.saga_id, phase, step.name, action.command) == cmd_id:
            return step
    raise LookupError(f"saga {state.saga_id}: no {phase} command {cmd_id} in stage {state.step}")


def _names(stage: tuple[Step, ...]) -> str:
    return " + ".join(s.name for s in stage)


def _command(state: SagaState, phase: str, step_name: str, action: Action) -> Command:
    return Command(command_id(state.saga_id, phase, step_name, action.command), action.participant, action.command,
                   action.build(state.data))


def _bump(state: SagaState, **changes: Any) -> SagaState:
    return replace(state, version=state.version + 1, **changes)
