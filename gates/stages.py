"""The stages of an initiative and the transitions between them (DESIGN.md's state machine)."""

from django.db import models


class Stage(models.TextChoices):
    FRAME = "frame", "Frame"
    THIN_SLICE = "thin_slice", "Thin slice"
    READINESS_REVIEW = "readiness_review", "Readiness review"
    NARROW_LAUNCH = "narrow_launch", "Narrow launch"
    WIDE_LAUNCH = "wide_launch", "Wide launch"
    STOPPED = "stopped", "Stopped"


# The path an initiative walks when all goes well; the stepper draws these.
PATH = [
    Stage.FRAME,
    Stage.THIN_SLICE,
    Stage.READINESS_REVIEW,
    Stage.NARROW_LAUNCH,
    Stage.WIDE_LAUNCH,
]


class Transition(models.TextChoices):
    APPROVE_FRAME = "approve_frame", "Approve framing"
    SUBMIT_FOR_REVIEW = "submit_for_review", "Submit for readiness review"
    PASS_REVIEW = "pass_review", "Pass readiness review"
    FAIL_REVIEW = "fail_review", "Fail readiness review"
    WIDEN = "widen", "Widen launch"
    # From narrow launch back to thin slice; from wide launch back to narrow launch.
    ROLL_BACK = "roll_back", "Roll back"
    STOP = "stop", "Stop initiative"
    REOPEN = "reopen", "Reopen"
    # Not a stage change: a new success definition after gate 1, recorded like a decision.
    REFRAME = "reframe", "Reframe success definition"


# The forward gate out of each stage: its criteria are what the initiative page shows.
NEXT_GATE = {
    Stage.FRAME: Transition.APPROVE_FRAME,
    Stage.THIN_SLICE: Transition.SUBMIT_FOR_REVIEW,
    Stage.READINESS_REVIEW: Transition.PASS_REVIEW,
    Stage.NARROW_LAUNCH: Transition.WIDEN,
}

# Launched: the system runs for real users, narrowly or widely.
LAUNCHED = (Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH)

# Every stage but stopped; stopping from wide launch retires the running system.
STOPPABLE = [
    Stage.FRAME,
    Stage.THIN_SLICE,
    Stage.READINESS_REVIEW,
    Stage.NARROW_LAUNCH,
    Stage.WIDE_LAUNCH,
]


class StopReason(models.TextChoices):
    THRESHOLD_NOT_MET = "threshold_not_met", "Threshold not met"
    NO_BUSINESS_OWNER = "no_business_owner", "No business owner"
    DATA_NOT_AVAILABLE = "data_not_available", "Data not available"
    RUNNING_COST_TOO_HIGH = "running_cost_too_high", "Running cost too high"
    SUPERSEDED = "superseded", "Superseded"
    STRATEGY_CHANGED = "strategy_changed", "Strategy changed"
    OTHER = "other", "Other"
