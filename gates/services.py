"""The only way an initiative changes stage: `decide`, which also records the decision."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from gates import effects
from gates.criteria import Outcome, blocking, registry
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
    def __init__(self, transition: str, failing: list[Outcome]) -> None:
        self.failing = failing
        names = "; ".join(f"{o.label}: {o.reason}" for o in failing)
        label = Transition(transition).label
        super().__init__(f"{label} is refused. Not yet met — {names}")


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

    Raises PermissionDenied when the user may not take it, StaleInitiative when the stage is
    no longer the one the user saw (or another decision wins a race), GateRefused with the
    failing criteria, and ValidationError for a missing rationale or stop reason.
    """
    transition = Transition(transition).value
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
    if transition not in available_transitions(initiative):
        raise DecisionError(
            f"{Transition(transition).label} is not possible from {initiative.get_stage_display()}."
        )
    method = getattr(initiative, transition)

    outcomes = registry.evaluate(initiative, transition)
    failing = blocking(outcomes)
    if failing:
        raise GateRefused(transition, failing)

    from_stage = initiative.stage
    try:
        with transaction.atomic():
            if transition == Transition.STOP:
                method(reason=stop_reason)
            else:
                method()
            # ConcurrentTransitionMixin turns this into UPDATE ... WHERE stage = from_stage:
            # of two simultaneous decisions, the second updates no row and rolls back.
            initiative.save(
                update_fields=["stage", "stage_entered_at", "stop_reason", "updated_at"]
            )
            decision = GateDecision.objects.create(
                initiative=initiative,
                transition=transition,
                from_stage=from_stage,
                to_stage=initiative.stage,
                decided_by=user,
                decided_at=initiative.stage_entered_at,
                rationale=rationale,
                stop_reason=stop_reason if transition == Transition.STOP else "",
                evidence=_evidence(initiative, outcomes),
            )
            effects.run(initiative, decision)
    except (ConcurrentTransition, TransitionNotAllowed) as exc:
        initiative.refresh_from_db()
        raise StaleInitiative() from exc
    log.info(
        "gate decision %s on initiative %s by %s: %s -> %s",
        transition,
        initiative.pk,
        user.pk,
        from_stage,
        initiative.stage,
    )
    return decision


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
        },
        "recorded_at": timezone.now().isoformat(),
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
        if (previous and item["decided_at"] < previous) or item["decided_at"] > timezone.now():
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
        GateDecision.objects.bulk_create(rows)
        type(initiative).objects.filter(pk=initiative.pk).update(
            stage=stage, stage_entered_at=last.decided_at, stop_reason=last.stop_reason
        )
    initiative.refresh_from_db()
