"""The stage machine through gates.services.decide: allowed, refused, recorded."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from gates import services
from gates.criteria import Result, registry
from gates.models import GateDecision
from gates.services import DecisionError, GateRefused, StaleInitiative
from gates.stages import STOPPABLE, Stage, StopReason
from gates.stages import Transition as T
from portfolio.models import Initiative
from tests.factories import InitiativeFactory
from tests.helpers import advance, criteria_passing

pytestmark = pytest.mark.django_db

# (transition, a stage it leaves, the stage it reaches)
MOVES = [
    (T.APPROVE_FRAME, Stage.FRAME, Stage.THIN_SLICE),
    (T.SUBMIT_FOR_REVIEW, Stage.THIN_SLICE, Stage.READINESS_REVIEW),
    (T.PASS_REVIEW, Stage.READINESS_REVIEW, Stage.NARROW_LAUNCH),
    (T.FAIL_REVIEW, Stage.READINESS_REVIEW, Stage.THIN_SLICE),
    (T.WIDEN, Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH),
    (T.ROLL_BACK, Stage.NARROW_LAUNCH, Stage.THIN_SLICE),
    (T.ROLL_BACK, Stage.WIDE_LAUNCH, Stage.NARROW_LAUNCH),
    (T.STOP, Stage.FRAME, Stage.STOPPED),
    (T.STOP, Stage.THIN_SLICE, Stage.STOPPED),
    (T.STOP, Stage.READINESS_REVIEW, Stage.STOPPED),
    (T.STOP, Stage.NARROW_LAUNCH, Stage.STOPPED),
    (T.STOP, Stage.WIDE_LAUNCH, Stage.STOPPED),
    (T.REOPEN, Stage.STOPPED, Stage.FRAME),
]
MOVE_IDS = [f"{t.value}-from-{s.value}" for t, s, _ in MOVES]

# Every (stage, transition) pair the machine does not offer.
IMPOSSIBLE = [
    (stage, transition)
    for stage in Stage
    for transition in T
    if transition != T.REFRAME  # not a stage change: see test_decide_refuses_a_reframe
    and not any(t == transition and s == stage for t, s, _ in MOVES)
]


@pytest.fixture
def initiative():
    return InitiativeFactory(framed=True)


def at(initiative, stage, user):
    """The initiative moved to `stage`, with its stage clock set back 30 days."""
    advance(initiative, stage, user=user)
    Initiative.objects.filter(pk=initiative.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=30)
    )
    initiative.refresh_from_db()
    return initiative


def decide(initiative, transition, user, **kwargs):
    kwargs.setdefault("rationale", "Decided for the test.")
    if transition == T.STOP:
        kwargs.setdefault("stop_reason", StopReason.SUPERSEDED)
    return services.decide(initiative=initiative, transition=transition, user=user, **kwargs)


@pytest.fixture
def blocked():
    """Every criterion passes except one added blocker on the transition under test."""

    @contextmanager
    def block(transition):
        with registry.override(lambda initiative: Result(True, "passes (test)")):
            registry.register(transition, key="blocker", label="Test blocker")(
                lambda initiative: Result(False, "Blocked by the test.")
            )
            yield

    return block


# Allowed ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("transition", "source", "target"), MOVES, ids=MOVE_IDS)
def test_transition_is_allowed_when_its_criteria_pass(
    initiative, manager, transition, source, target
):
    at(initiative, source, manager)
    with criteria_passing():
        decide(initiative, transition, manager)
    assert initiative.stage == target
    initiative.refresh_from_db()
    assert initiative.stage == target


@pytest.mark.parametrize(("transition", "source", "target"), MOVES, ids=MOVE_IDS)
def test_transition_records_a_decision_with_stages_user_rationale_and_evidence(
    initiative, manager, transition, source, target
):
    at(initiative, source, manager)
    before = GateDecision.objects.count()
    with criteria_passing():
        decision = decide(
            initiative, transition, manager, rationale="  The numbers say so, plainly.  "
        )
    assert GateDecision.objects.count() == before + 1
    stored = GateDecision.objects.get(pk=decision.pk)
    assert stored.initiative == initiative
    assert stored.transition == transition
    assert (stored.from_stage, stored.to_stage) == (source, target)
    assert stored.decided_by == manager
    assert stored.rationale == "The numbers say so, plainly."
    assert stored.decided_at == initiative.stage_entered_at
    criteria = stored.evidence["criteria"]
    assert [c["key"] for c in criteria] == [c.key for c in registry.criteria_for(transition)]
    assert all(c["passed"] for c in criteria)
    assert stored.evidence["primary_metric"]["unit"] == "%"
    assert stored.evidence["primary_metric"]["ship_threshold"].startswith("85")


@pytest.mark.parametrize(("transition", "source", "target"), MOVES, ids=MOVE_IDS)
def test_transition_moves_the_stage_clock(initiative, manager, transition, source, target):
    at(initiative, source, manager)
    entered = initiative.stage_entered_at
    assert initiative.days_in_stage == 30
    with criteria_passing():
        decide(initiative, transition, manager)
    initiative.refresh_from_db()
    assert initiative.stage_entered_at > entered
    assert timezone.now() - initiative.stage_entered_at < timedelta(minutes=1)
    assert initiative.days_in_stage == 0


def test_approve_frame_with_the_real_criteria_passes_for_a_framed_initiative(initiative, executive):
    decision = decide(initiative, T.APPROVE_FRAME, executive)
    assert initiative.stage == Stage.THIN_SLICE
    recorded = {c["key"]: c["passed"] for c in decision.evidence["criteria"]}
    assert recorded == {
        "decision_defined": True,
        "primary_metric_defined": True,
        "ship_threshold_set": True,
        "business_owner_named": True,
        "baseline_recorded": True,
    }
    assert decision.evidence["primary_metric"]["name"] == "First-contact resolution"


def test_approve_frame_passes_without_a_baseline_and_records_the_advisory(manager):
    initiative = InitiativeFactory(framed=True, primary__baseline=None)
    decision = decide(initiative, T.APPROVE_FRAME, manager)
    assert initiative.stage == Stage.THIN_SLICE
    baseline = next(c for c in decision.evidence["criteria"] if c["key"] == "baseline_recorded")
    assert baseline["passed"] is False
    assert baseline["advisory"] is True
    assert decision.evidence["primary_metric"]["baseline"] is None


def test_walk_from_frame_to_wide_launch_records_one_decision_per_gate(initiative, manager):
    advance(initiative, Stage.WIDE_LAUNCH, user=manager)
    path = list(
        initiative.decisions.order_by("decided_at", "id").values_list("from_stage", "to_stage")
    )
    assert path == [
        (Stage.FRAME, Stage.THIN_SLICE),
        (Stage.THIN_SLICE, Stage.READINESS_REVIEW),
        (Stage.READINESS_REVIEW, Stage.NARROW_LAUNCH),
        (Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH),
    ]


# Refused ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("transition", "source", "target"), MOVES, ids=MOVE_IDS)
def test_transition_is_refused_naming_the_failing_criterion(
    initiative, manager, blocked, transition, source, target
):
    at(initiative, source, manager)
    entered = initiative.stage_entered_at
    before = GateDecision.objects.count()
    with blocked(transition), pytest.raises(GateRefused) as refused:
        decide(initiative, transition, manager)
    assert [o.key for o in refused.value.failing] == ["blocker"]
    assert "Test blocker: Blocked by the test." in str(refused.value)
    assert "refused" in str(refused.value)
    assert initiative.stage == source
    initiative.refresh_from_db()
    assert initiative.stage == source
    assert initiative.stage_entered_at == entered
    assert GateDecision.objects.count() == before


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"business_owner": None}, ["business_owner_named"]),
        ({"decision_changed": "  "}, ["decision_defined"]),
        ({"primary": None}, ["primary_metric_defined", "ship_threshold_set"]),
        ({"primary__unit": ""}, ["primary_metric_defined"]),
        ({"primary__ship_threshold": None}, ["ship_threshold_set"]),
    ],
    ids=["no-business-owner", "no-decision", "no-metric", "no-unit", "no-threshold"],
)
def test_frame_gate_refuses_when_framing_is_incomplete(manager, change, failing):
    initiative = InitiativeFactory(framed=True, **change)
    with pytest.raises(GateRefused) as refused:
        decide(initiative, T.APPROVE_FRAME, manager)
    assert [o.key for o in refused.value.failing] == failing
    assert initiative.stage == Stage.FRAME
    assert not GateDecision.objects.exists()


def test_frame_gate_refuses_without_business_owner(manager):
    initiative = InitiativeFactory(framed=True, business_owner=None)
    with pytest.raises(GateRefused, match="Named business owner: No business owner is named"):
        decide(initiative, T.APPROVE_FRAME, manager)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME


def test_frame_gate_lists_every_missing_part_of_an_empty_initiative(manager):
    initiative = InitiativeFactory()
    with pytest.raises(GateRefused) as refused:
        decide(initiative, T.APPROVE_FRAME, manager)
    assert [o.key for o in refused.value.failing] == [
        "decision_defined",
        "primary_metric_defined",
        "ship_threshold_set",
        "business_owner_named",
    ]


def test_submit_for_review_refuses_without_logging_or_security_model(initiative, manager):
    at(initiative, Stage.THIN_SLICE, manager)
    with pytest.raises(GateRefused) as refused:
        decide(initiative, T.SUBMIT_FOR_REVIEW, manager)
    keys = {o.key for o in refused.value.failing}
    assert {"logging_attested", "security_model"} <= keys


def test_pass_review_refuses_without_operational_owner_or_narrow_audience(initiative, manager):
    at(initiative, Stage.READINESS_REVIEW, manager)
    with pytest.raises(GateRefused) as refused:
        decide(initiative, T.PASS_REVIEW, manager)
    keys = {o.key for o in refused.value.failing}
    assert {"operational_owner_named", "narrow_audience_defined"} <= keys


def test_widen_refuses_before_the_comparison_window_has_elapsed(initiative, manager):
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    with pytest.raises(GateRefused) as refused:
        decide(initiative, T.WIDEN, manager)
    assert "window_elapsed" in {o.key for o in refused.value.failing}


# Rationale, reasons, impossible moves and stale pages ---------------------------------------
@pytest.mark.parametrize("rationale", ["", "   ", "\n\t", None])
@pytest.mark.parametrize(
    ("transition", "source", "target"), MOVES[:7] + MOVES[-1:], ids=MOVE_IDS[:7] + MOVE_IDS[-1:]
)
def test_decision_requires_a_rationale_and_changes_nothing_without_one(
    initiative, manager, rationale, transition, source, target
):
    at(initiative, source, manager)
    entered = initiative.stage_entered_at
    before = GateDecision.objects.count()
    with criteria_passing(), pytest.raises(ValidationError) as invalid:
        decide(initiative, transition, manager, rationale=rationale)
    assert "rationale" in invalid.value.message_dict
    assert initiative.stage == source
    initiative.refresh_from_db()
    assert (initiative.stage, initiative.stage_entered_at) == (source, entered)
    assert GateDecision.objects.count() == before


@pytest.mark.parametrize("reason", ["", "bored", "OTHER", None])
def test_stop_requires_a_valid_reason_category(initiative, manager, reason):
    with pytest.raises(ValidationError) as invalid:
        decide(initiative, T.STOP, manager, stop_reason=reason)
    assert "stop_reason" in invalid.value.message_dict
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME
    assert initiative.stop_reason == ""
    assert not GateDecision.objects.exists()


@pytest.mark.parametrize("reason", StopReason.values)
def test_stop_stores_its_reason_on_the_initiative_and_the_decision(initiative, manager, reason):
    decision = decide(initiative, T.STOP, manager, stop_reason=reason)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.STOPPED
    assert initiative.stop_reason == reason
    assert GateDecision.objects.get(pk=decision.pk).stop_reason == reason


@pytest.mark.parametrize(("transition", "source", "target"), MOVES[:6], ids=MOVE_IDS[:6])
def test_a_stop_reason_is_not_recorded_on_other_transitions(
    initiative, manager, transition, source, target
):
    at(initiative, source, manager)
    with criteria_passing():
        decision = decide(initiative, transition, manager, stop_reason=StopReason.OTHER)
    initiative.refresh_from_db()
    assert initiative.stop_reason == ""
    assert decision.stop_reason == ""


def test_reopen_clears_the_stop_reason(initiative, manager):
    decide(initiative, T.STOP, manager, stop_reason=StopReason.DATA_NOT_AVAILABLE)
    decision = decide(initiative, T.REOPEN, manager, rationale="The data arrived.")
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME
    assert initiative.stop_reason == ""
    assert decision.stop_reason == ""
    assert (decision.from_stage, decision.to_stage) == (Stage.STOPPED, Stage.FRAME)


@pytest.mark.parametrize("source", STOPPABLE)
def test_stop_is_possible_from_every_stage_before_wide_launch(initiative, manager, source):
    at(initiative, source, manager)
    decide(initiative, T.STOP, manager)
    assert initiative.stage == Stage.STOPPED


@pytest.mark.parametrize(
    ("stage", "transition"), IMPOSSIBLE, ids=[f"{t.value}-from-{s.value}" for s, t in IMPOSSIBLE]
)
def test_transition_not_offered_from_the_current_stage_raises_decision_error(
    initiative, manager, stage, transition
):
    at(initiative, stage, manager)
    before = GateDecision.objects.count()
    with criteria_passing(), pytest.raises(DecisionError, match="is not possible from") as error:
        decide(initiative, transition, manager)
    assert type(error.value) is DecisionError
    initiative.refresh_from_db()
    assert initiative.stage == stage
    assert GateDecision.objects.count() == before


def test_unknown_transition_name_is_rejected(initiative, manager):
    with pytest.raises(ValueError):
        decide(initiative, "teleport", manager)
    assert initiative.stage == Stage.FRAME


@pytest.mark.parametrize("expected", [Stage.THIN_SLICE, Stage.STOPPED, "", "nonsense"], ids=repr)
def test_expected_stage_mismatch_raises_stale_initiative(initiative, manager, expected):
    with pytest.raises(StaleInitiative, match="changed") as stale:
        decide(initiative, T.APPROVE_FRAME, manager, expected_stage=expected)
    assert "Reload" in str(stale.value)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME
    assert not GateDecision.objects.exists()


def test_matching_expected_stage_is_accepted(initiative, manager):
    decide(initiative, T.APPROVE_FRAME, manager, expected_stage=Stage.FRAME)
    assert initiative.stage == Stage.THIN_SLICE


# Protected field ----------------------------------------------------------------------------
@pytest.mark.parametrize("stage", list(Stage))
def test_stage_cannot_be_assigned_directly(initiative, stage):
    with pytest.raises(AttributeError):
        initiative.stage = stage
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME


def test_stage_cannot_be_assigned_on_a_freshly_loaded_initiative(initiative):
    loaded = Initiative.objects.get(pk=initiative.pk)
    with pytest.raises(AttributeError):
        loaded.stage = Stage.WIDE_LAUNCH
    assert loaded.stage == Stage.FRAME


def test_decide_refuses_a_reframe(initiative, manager):
    # A reframe changes no stage; it has its own service (portfolio.services.reframe).
    with pytest.raises(DecisionError, match="reframe page"):
        decide(initiative, T.REFRAME, manager)
    assert not GateDecision.objects.filter(transition=T.REFRAME).exists()
