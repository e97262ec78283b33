"""The only way an initiative changes stage: `decide`, which also records the decision."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from gates import audit, clock, effects, events
from gates.criteria import Outcome, blocking, registry
from gates.locks import lock_initiative
from gates.models import GateDecision
from gates.stages import StopReason, Transition

log = logging.getLogger(__name__)


class DecisionError(Exception):
    """A decision that cannot be recorded; the message is meant for the person deciding."""


class StaleInitiative(DecisionError):
    def __init__(self) -> None:
        super().__init__(
            "This initiative changed while you were deciding: someone else recorded a decision "
            "first. Reload the page to see its current stage."
        )


class GateRefused(DecisionError):
    def __init__(
        self, transition: str, failing: list[Outcome], *, changed: list[Outcome] = ()
    ) -> None:
        self.failing = failing
        self.changed = list(changed)
        label = Transition(transition).label
        if self.changed:
            names = "; ".join(f"{o.label}: {o.reason}" for o in self.changed)
            message = f"{label} is refused: the evidence changed while you decided — {names}"
        else:
            names = "; ".join(f"{o.label}: {o.reason}" for o in failing)
            message = f"{label} is refused. Not yet met — {names}"
        super().__init__(message)


def available_transitions(initiative) -> list[str]:
    """The transitions the state machine offers from the initiative's current stage."""
    return [t.name for t in initiative.get_all_stage_transitions() if t.source == initiative.stage]


def user_transitions(initiative, user) -> list[str]:
    """Transitions from the current stage this user holds the permission for (criteria aside)."""
    return [
        t.name
        for t in initiative.get_all_stage_transitions()
        if t.source == initiative.stage and t.has_perm(initiative, user)
    ]


def may_take(initiative, transition: str, user) -> bool:
    """Whether the user holds the permission for `transition` on this initiative, any stage."""
    return any(
        t.has_perm(initiative, user)
        for t in initiative.get_all_stage_transitions()
        if t.name == transition
    )


@clock.accepts_now
def decide(
    *,
    initiative,
    transition: str,
    user,
    rationale: str,
    stop_reason: str = "",
    expected_stage: str | None = None,
) -> GateDecision:
    """Take `transition` on `initiative` for `user` and record the gate decision.

    The initiative's row is locked first, and the permission, the stage and every criterion
    are read again under that lock, in the transaction that writes the decision: evidence
    that other services change (they take the same lock) cannot change between the check
    and the write.

    Raises PermissionDenied when the user may not take it, StaleInitiative when the stage is
    no longer the one the user saw (or another decision wins a race), GateRefused with the
    failing criteria (saying so when the evidence changed while the person decided), and
    ValidationError for a missing rationale or stop reason.
    """
    transition = Transition(transition).value
    if transition == Transition.REFRAME:
        raise DecisionError("A reframe is recorded through the reframe page, not as a gate.")
    # Permission first, as in the view: a person who may never take this transition is told
    # so, whatever the rationale, the stage or the criteria say.
    if not may_take(initiative, transition, user):
        raise PermissionDenied(f"You may not {Transition(transition).label.lower()}.")
    rationale = (rationale or "").strip()
    if not rationale:
        raise ValidationError({"rationale": "Give the rationale for this decision."})
    if transition == Transition.STOP and stop_reason not in StopReason.values:
        raise ValidationError({"stop_reason": "Choose why the initiative stops."})
    if expected_stage is not None and expected_stage != initiative.stage:
        raise StaleInitiative()
    # What the gate said before the lock: only to tell a person whose decision is refused
    # that the evidence changed under them, rather than that it never held.
    seen_failing = {o.key for o in blocking(registry.evaluate(initiative, transition))}

    try:
        with transaction.atomic():
            current = lock_initiative(initiative.pk)
            if not may_take(current, transition, user):
                raise PermissionDenied(f"You may not {Transition(transition).label.lower()}.")
            # The stage the person saw (their form's, or the copy they decide on) must still
            # hold; otherwise someone else decided first.
            if current.stage != (expected_stage or initiative.stage):
                raise StaleInitiative()
            if transition not in available_transitions(current):
                raise DecisionError(
                    f"{Transition(transition).label} is not possible from "
                    f"{current.get_stage_display()}."
                )
            outcomes = registry.evaluate(current, transition)
            failing = blocking(outcomes)
            if failing:
                changed = [o for o in failing if o.key not in seen_failing]
                raise GateRefused(transition, failing, changed=changed)
            from_stage = current.stage
            method = getattr(current, transition)
            if transition == Transition.STOP:
                method(reason=stop_reason)
            else:
                method()
            # ConcurrentTransitionMixin turns this into UPDATE ... WHERE stage = from_stage.
            current.save(update_fields=["stage", "stage_entered_at", "stop_reason", "updated_at"])
            decision = GateDecision.objects.create(
                initiative=current,
                transition=transition,
                from_stage=from_stage,
                to_stage=current.stage,
                decided_by=user,
                decided_at=current.stage_entered_at,
                rationale=rationale,
                stop_reason=stop_reason if transition == Transition.STOP else "",
                evidence=_evidence(current, outcomes),
            )
            seal(decision, actor=user)
            effects.run(current, decision)
    except StaleInitiative:
        _reload(initiative)  # so the person sees the current stage next time
        raise
    except (ConcurrentTransition, TransitionNotAllowed) as exc:
        _reload(initiative)
        raise StaleInitiative() from exc
    _reload(initiative, current)
    log.info(
        "gate decision %s on initiative %s by %s: %s -> %s",
        transition,
        initiative.pk,
        user.pk,
        from_stage,
        initiative.stage,
    )
    return decision


def _reload(initiative, fresh=None) -> None:
    """Bring the caller's copy to the stage the database holds.

    Not FSMModelMixin.refresh_from_db: it lifts the field's protection for the whole process
    while it runs, which races with other threads deciding at the same time.
    """
    if fresh is None:
        fresh = type(initiative).objects.get(pk=initiative.pk)
    for name in ("stage", "stage_entered_at", "stop_reason", "updated_at"):
        initiative.__dict__[name] = getattr(fresh, name)
    initiative._update_initial_state()


def seal(decision: GateDecision, *, actor, announce: bool = True) -> None:
    """Append the decision to its initiative's audit chain (inside its transaction) and, unless
    it is history being imported, tell whoever listens."""
    audit.record(
        initiative_id=decision.initiative_id,
        kind="decision",
        actor=actor,
        at=decision.decided_at,
        summary=decision.audit_summary(),
        obj=decision,
    )
    if announce:
        events.emit(
            events.Event(
                kind="decision",
                key=f"decision:{decision.pk}",
                at=decision.decided_at,
                initiative_id=decision.initiative_id,
                actor_id=getattr(actor, "pk", actor),
                data={"decision": decision.pk, "summary": decision.audit_summary()},
            )
        )


def _evidence(initiative, outcomes: list[Outcome]) -> dict:
    metric = initiative.primary_metric
    return {
        "criteria": [outcome.as_json() for outcome in outcomes],
        "primary_metric": None
        if metric is None
        else {
            "name": metric.name,
            "unit": metric.unit,
            "direction": metric.direction,
            "ship_threshold": None if metric.ship_threshold is None else str(metric.ship_threshold),
            "baseline": None if metric.baseline is None else str(metric.baseline),
            "aggregation": metric.aggregation,
            "comparison_window_days": metric.comparison_window_days,
        },
        "recorded_at": clock.now().isoformat(),
    }


def import_history(*, initiative, decisions: list[dict]) -> None:
    """Record decisions taken before Gantry held the initiative, oldest first.

    For loading an existing portfolio (and the demo): each dict holds transition, user,
    rationale, decided_at and optionally stop_reason. The stages must chain from the
    initiative's current stage along the machine's transitions; the evidence notes that the
    criteria were not evaluated by Gantry. The stage is then set with one UPDATE, since the
    transitions' live criteria do not apply to the past.
    """
    stage = initiative.stage
    rows = []
    previous = None
    for item in decisions:
        name = Transition(item["transition"]).value
        if not (item.get("rationale") or "").strip():
            raise DecisionError(f"{name} needs a rationale.")
        if name == Transition.STOP and item.get("stop_reason") not in StopReason.values:
            raise DecisionError("A stop needs a reason category.")
        if (previous and item["decided_at"] < previous) or item["decided_at"] > clock.now():
            raise DecisionError(f"{name} must be dated after the one before it, and not ahead.")
        previous = item["decided_at"]
        options = [t for t in initiative.get_all_stage_transitions() if t.name == name]
        step = next((t for t in options if t.source == stage), None)
        if step is None:
            raise DecisionError(f"{name} cannot follow stage {stage}.")
        rows.append(
            GateDecision(
                initiative=initiative,
                transition=name,
                from_stage=stage,
                to_stage=step.target,
                decided_by=item["user"],
                decided_at=item["decided_at"],
                rationale=item["rationale"],
                stop_reason=item.get("stop_reason", "") if name == Transition.STOP else "",
                evidence={"imported": True, "note": "Decided before Gantry held this initiative."},
            )
        )
        stage = step.target
    if not rows:
        return
    last = rows[-1]
    with transaction.atomic():
        lock_initiative(initiative.pk)
        for row in rows:
            row.save()
            seal(row, actor=row.decided_by, announce=False)
        type(initiative).objects.filter(pk=initiative.pk).update(
            stage=stage, stage_entered_at=last.decided_at, stop_reason=last.stop_reason
        )
    initiative.refresh_from_db()
