"""Helpers to bring an initiative to a stage through the real service."""

from contextlib import contextmanager

from gates import services
from gates.criteria import Result, registry
from gates.stages import LAUNCHED, Stage
from gates.stages import Transition as T

# The forward path: which transition leaves each stage.
_ROUTE = {
    Stage.FRAME: T.APPROVE_FRAME,
    Stage.THIN_SLICE: T.SUBMIT_FOR_REVIEW,
    Stage.READINESS_REVIEW: T.PASS_REVIEW,
    Stage.NARROW_LAUNCH: T.WIDEN,
}


@contextmanager
def criteria_passing():
    """Every criterion passes: for reaching later stages whose parts are not built yet."""
    with registry.override(lambda initiative: Result(True, "passes (test)")):
        yield


def advance(initiative, to_stage, *, user, upkeep=True):
    """Walk `initiative` forward to `to_stage` through gates.services.decide. A launch gets
    an approved upkeep budget for today as well (as a healthy launch has), unless
    upkeep=False: without one it is flagged for having no upkeep budget."""
    if upkeep and to_stage in LAUNCHED:
        from tests.factories import upkeep_line

        advance(initiative, to_stage, user=user, upkeep=False)
        if not initiative.budget_lines.exists():
            upkeep_line(initiative)
        return initiative
    with criteria_passing():
        while initiative.stage != to_stage:
            if to_stage == Stage.STOPPED:
                services.decide(
                    initiative=initiative,
                    transition=T.STOP,
                    user=user,
                    rationale="Stopped for the test.",
                    stop_reason="other",
                )
                break
            services.decide(
                initiative=initiative,
                transition=_ROUTE[initiative.stage],
                user=user,
                rationale="Moved on for the test.",
            )
    return initiative
