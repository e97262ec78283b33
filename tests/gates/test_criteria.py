"""Gate criteria: each one passes and fails with a sentence; the registry drives the machine."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_fsm import TransitionNotAllowed, can_proceed

from gates import services
from gates.criteria import (
    NOT_AVAILABLE,
    Criterion,
    Registry,
    Result,
    gate_open,
    not_available,
    registry,
)
from gates.stages import Stage
from gates.stages import Transition as T
from metrics.models import Direction
from tests.factories import InitiativeFactory, MetricFactory, UserFactory
from tests.helpers import advance, criteria_passing

pytestmark = pytest.mark.django_db


def outcome(initiative, transition, key):
    """The outcome of one criterion, evaluated through the registry like the machine does."""
    outcomes = {o.key: o for o in registry.evaluate(initiative, transition)}
    return outcomes[key]


@pytest.fixture
def framed():
    """An initiative that meets every gate-1 criterion, baseline included."""
    return InitiativeFactory(framed=True)


@pytest.fixture
def isolated_registry():
    """The global registry, restored after the test whatever the test registers in it."""
    with registry.override():
        yield registry


# Gate 1: frame -> thin slice ---------------------------------------------------------------
GATE_ONE = [
    "decision_defined",
    "primary_metric_defined",
    "ship_threshold_set",
    "business_owner_named",
]


def test_gate_one_has_the_four_blocking_criteria_and_an_advisory_baseline():
    criteria = {c.key: c for c in registry.criteria_for(T.APPROVE_FRAME)}
    assert set(criteria) == {*GATE_ONE, "baseline_recorded"}
    assert [k for k, c in criteria.items() if c.advisory] == ["baseline_recorded"]


@pytest.mark.parametrize("key", [*GATE_ONE, "baseline_recorded"])
def test_gate_one_criterion_passes_on_a_framed_initiative(framed, key):
    result = outcome(framed, T.APPROVE_FRAME, key)
    assert result.passed
    assert not result.blocks
    assert result.reason


def test_gate_one_is_open_for_a_framed_initiative(framed):
    assert gate_open(T.APPROVE_FRAME)(framed) is True


def test_decision_criterion_fails_without_the_decision_text(framed):
    framed.decision_changed = ""
    result = outcome(framed, T.APPROVE_FRAME, "decision_defined")
    assert not result.passed
    assert result.blocks
    assert "decision or workflow" in result.reason


def test_decision_criterion_fails_on_whitespace_only(framed):
    framed.decision_changed = "   \n\t"
    assert not outcome(framed, T.APPROVE_FRAME, "decision_defined").passed


def test_decision_criterion_reason_says_it_is_written_down(framed):
    assert "written down" in outcome(framed, T.APPROVE_FRAME, "decision_defined").reason


def test_primary_metric_criterion_fails_without_any_metric():
    initiative = InitiativeFactory(decision_changed="Which claims come first.")
    result = outcome(initiative, T.APPROVE_FRAME, "primary_metric_defined")
    assert not result.passed
    assert result.reason == "No primary success metric is defined."


def test_primary_metric_criterion_ignores_a_metric_not_marked_primary():
    initiative = InitiativeFactory()
    MetricFactory(initiative=initiative, is_primary=False)
    assert not outcome(initiative, T.APPROVE_FRAME, "primary_metric_defined").passed


@pytest.mark.parametrize("unit", ["", "   "])
def test_primary_metric_criterion_fails_without_a_unit(unit):
    initiative = InitiativeFactory()
    MetricFactory(initiative=initiative, name="Handling time", unit=unit)
    result = outcome(initiative, T.APPROVE_FRAME, "primary_metric_defined")
    assert not result.passed
    assert "Handling time" in result.reason
    assert "no unit" in result.reason


def test_primary_metric_criterion_names_metric_unit_and_direction():
    initiative = InitiativeFactory()
    MetricFactory(
        initiative=initiative, name="Handling time", unit="minutes", direction=Direction.LOWER
    )
    result = outcome(initiative, T.APPROVE_FRAME, "primary_metric_defined")
    assert result.passed
    assert result.reason == "Primary metric: Handling time (minutes, lower is better)."


def test_ship_threshold_criterion_fails_without_a_threshold():
    initiative = InitiativeFactory()
    MetricFactory(initiative=initiative, ship_threshold=None)
    result = outcome(initiative, T.APPROVE_FRAME, "ship_threshold_set")
    assert not result.passed
    assert result.blocks


def test_ship_threshold_criterion_fails_without_a_primary_metric():
    assert not outcome(InitiativeFactory(), T.APPROVE_FRAME, "ship_threshold_set").passed


@pytest.mark.parametrize(
    ("direction", "threshold", "unit", "expected"),
    [
        (Direction.HIGHER, Decimal("85"), "%", "is at least 85 %."),
        (Direction.LOWER, Decimal("4.500000"), "minutes", "is at most 4.5 minutes."),
        (Direction.HIGHER, Decimal("100"), "claims per hour", "is at least 100 claims per hour."),
        (Direction.HIGHER, Decimal("0"), "EUR", "is at least 0 EUR."),
    ],
)
def test_ship_threshold_criterion_states_the_threshold_with_its_unit(
    direction, threshold, unit, expected
):
    initiative = InitiativeFactory()
    MetricFactory(
        initiative=initiative, name="M", direction=direction, ship_threshold=threshold, unit=unit
    )
    result = outcome(initiative, T.APPROVE_FRAME, "ship_threshold_set")
    assert result.passed
    assert result.reason == f"Ship when M {expected}"


def test_business_owner_criterion_fails_without_a_business_owner(framed):
    framed.business_owner = None
    result = outcome(framed, T.APPROVE_FRAME, "business_owner_named")
    assert not result.passed
    assert result.blocks
    assert result.reason == "No business owner is named."


def test_business_owner_criterion_names_the_owner(framed):
    framed.business_owner = UserFactory(first_name="Ada", last_name="Lovelace")
    assert outcome(framed, T.APPROVE_FRAME, "business_owner_named").reason == (
        "Business owner: Ada Lovelace."
    )


def test_business_owner_criterion_falls_back_to_the_username(framed):
    framed.business_owner = UserFactory(username="alovelace", first_name="", last_name="")
    assert "alovelace" in outcome(framed, T.APPROVE_FRAME, "business_owner_named").reason


def test_baseline_is_advisory_and_never_blocks_the_frame_gate():
    initiative = InitiativeFactory(framed=True, primary__baseline=None)
    result = outcome(initiative, T.APPROVE_FRAME, "baseline_recorded")
    assert not result.passed
    assert result.advisory
    assert not result.blocks
    assert "advisory" in result.reason
    assert gate_open(T.APPROVE_FRAME)(initiative) is True


def test_baseline_criterion_states_the_baseline_with_its_unit(framed):
    assert outcome(framed, T.APPROVE_FRAME, "baseline_recorded").reason == (
        "Existing process: 78 %."
    )


@pytest.mark.parametrize(
    ("change", "failing_key"),
    [
        ({"decision_changed": ""}, "decision_defined"),
        ({"business_owner": None}, "business_owner_named"),
        ({"primary": None}, "primary_metric_defined"),
        ({"primary__unit": ""}, "primary_metric_defined"),
        ({"primary__ship_threshold": None}, "ship_threshold_set"),
    ],
)
def test_frame_gate_is_closed_when_one_blocking_criterion_fails(change, failing_key):
    initiative = InitiativeFactory(framed=True, **change)
    failing = [o.key for o in registry.evaluate(initiative, T.APPROVE_FRAME) if o.blocks]
    assert failing_key in failing
    assert gate_open(T.APPROVE_FRAME)(initiative) is False


# Criteria Gantry cannot measure yet: they fail closed ---------------------------------------
# The foundation registers these through not_available(); later modules replace them under the
# same key with measured criteria. The tables below follow the registry, so a placeholder that
# has been replaced drops out of them instead of breaking them.
FOUNDATION_PLACEHOLDERS = [
    (T.SUBMIT_FOR_REVIEW, "live_feed"),
    (T.SUBMIT_FOR_REVIEW, "fresh_data"),
    (T.PASS_REVIEW, "checklist_complete"),
    (T.WIDEN, "pilot_meets_threshold"),
    (T.WIDEN, "pilot_beats_baseline"),
    (T.WIDEN, "no_open_work_items"),
]


def is_placeholder(criterion) -> bool:
    return criterion.check.__qualname__.startswith(f"{not_available.__name__}.")


def placeholders() -> list[tuple[str, str]]:
    """(transition, key) of every criterion that is still a not-available placeholder."""
    return [(t, c.key) for t in T for c in registry.criteria_for(t) if is_placeholder(c)]


@pytest.fixture
def complete(framed):
    """An initiative with every attested and named part of every gate filled in."""
    framed.logging_evidence = "https://logs.example.com/claims-triage"
    framed.security_model = "Adjusters see their own claims; the model sees no names."
    framed.operational_owner = UserFactory()
    framed.narrow_audience = "The Leeds claims team"
    framed.stage_entered_at = timezone.now() - timedelta(days=365)
    return framed


def test_every_foundation_placeholder_is_registered_or_replaced():
    registered = {(t, c.key) for t in T for c in registry.criteria_for(t)}
    assert set(FOUNDATION_PLACEHOLDERS) <= registered
    assert set(placeholders()) <= set(FOUNDATION_PLACEHOLDERS)


def test_not_available_builds_a_criterion_that_never_passes():
    check = not_available("Gantry does not measure this yet.")
    for initiative in (object(), None, InitiativeFactory(framed=True)):
        result = check(initiative)
        assert result.passed is False
        assert result.reason == "Not available yet: Gantry does not measure this yet."


@pytest.mark.parametrize("transition", [T.APPROVE_FRAME, T.SUBMIT_FOR_REVIEW, T.WIDEN])
def test_a_not_available_criterion_keeps_its_gate_closed(complete, transition):
    with registry.override():
        registry.register(transition, key="not_built", label="A part not built")(
            not_available("Gantry does not measure this yet.")
        )
        outcomes = {o.key: o for o in registry.evaluate(complete, transition)}
        assert outcomes["not_built"].blocks
        assert outcomes["not_built"].reason.startswith(NOT_AVAILABLE)
        assert gate_open(transition)(complete) is False
    assert "not_built" not in {c.key for c in registry.criteria_for(transition)}


def test_no_placeholder_is_left_in_the_registry():
    assert placeholders() == []


# Gate 2: thin slice -> readiness review ----------------------------------------------------
def test_logging_criterion_passes_with_an_evidence_link(framed):
    framed.logging_evidence = "https://logs.example.com/q"
    result = outcome(framed, T.SUBMIT_FOR_REVIEW, "logging_attested")
    assert result.passed
    assert "https://logs.example.com/q" in result.reason


def test_logging_criterion_fails_without_an_evidence_link(framed):
    framed.logging_evidence = ""
    result = outcome(framed, T.SUBMIT_FOR_REVIEW, "logging_attested")
    assert not result.passed
    assert result.blocks


def test_security_criterion_passes_with_a_sketch(framed):
    framed.security_model = "Only adjusters see claim text."
    assert outcome(framed, T.SUBMIT_FOR_REVIEW, "security_model").passed


@pytest.mark.parametrize("sketch", ["", "  \n "])
def test_security_criterion_fails_without_a_sketch(framed, sketch):
    framed.security_model = sketch
    result = outcome(framed, T.SUBMIT_FOR_REVIEW, "security_model")
    assert not result.passed
    assert result.blocks


# Gate 3: readiness review -> narrow launch -------------------------------------------------
def test_operational_owner_criterion_names_the_owner(framed):
    framed.operational_owner = UserFactory(first_name="Grace", last_name="Hopper")
    result = outcome(framed, T.PASS_REVIEW, "operational_owner_named")
    assert result.passed
    assert result.reason == "Operational owner: Grace Hopper."


def test_operational_owner_criterion_fails_without_one(framed):
    framed.operational_owner = None
    result = outcome(framed, T.PASS_REVIEW, "operational_owner_named")
    assert not result.passed
    assert result.blocks


def test_narrow_audience_criterion_passes_when_defined(framed):
    framed.narrow_audience = "  Claims team, Leeds "
    result = outcome(framed, T.PASS_REVIEW, "narrow_audience_defined")
    assert result.passed
    assert result.reason == "Narrow audience: Claims team, Leeds"


@pytest.mark.parametrize("audience", ["", "   "])
def test_narrow_audience_criterion_fails_when_not_defined(framed, audience):
    framed.narrow_audience = audience
    result = outcome(framed, T.PASS_REVIEW, "narrow_audience_defined")
    assert not result.passed
    assert result.blocks


# Gate 4: narrow launch -> wide launch ------------------------------------------------------
@pytest.mark.parametrize(
    ("window", "days_run", "passes"),
    [
        (14, 0, False),
        (14, 13, False),
        (14, 14, True),
        (14, 40, True),
        (1, 1, True),
        (30, 29, False),
    ],
)
def test_window_criterion_passes_only_once_the_comparison_window_has_elapsed(
    window, days_run, passes
):
    initiative = InitiativeFactory(framed=True, primary__comparison_window_days=window)
    initiative.stage_entered_at = timezone.now() - timedelta(days=days_run, minutes=1)
    result = outcome(initiative, T.WIDEN, "window_elapsed")
    assert result.passed is passes
    assert result.blocks is not passes
    assert str(window) in result.reason


def test_window_criterion_fails_without_a_primary_metric():
    initiative = InitiativeFactory()
    initiative.stage_entered_at = timezone.now() - timedelta(days=365)
    result = outcome(initiative, T.WIDEN, "window_elapsed")
    assert not result.passed
    assert "No primary metric" in result.reason


# The registry ------------------------------------------------------------------------------
def test_registering_under_an_existing_key_replaces_the_criterion():
    local = Registry()
    local.register(T.STOP, key="k", label="First")(lambda i: Result(False, "first"))
    local.register(T.STOP, key="k", label="Second")(lambda i: Result(True, "second"))
    criteria = local.criteria_for(T.STOP)
    assert [(c.key, c.label) for c in criteria] == [("k", "Second")]
    [result] = local.evaluate(object(), T.STOP)
    assert result.passed
    assert result.reason == "second"


def test_registering_a_new_key_adds_a_criterion_and_keeps_the_others():
    local = Registry()
    local.register(T.STOP, key="a", label="A")(lambda i: Result(True, "a"))
    local.register(T.STOP, key="b", label="B")(lambda i: Result(True, "b"))
    assert [c.key for c in local.criteria_for(T.STOP)] == ["a", "b"]


def test_register_returns_the_check_unchanged():
    def check(initiative):
        return Result(True, "ok")

    assert Registry().register(T.STOP, key="k", label="K")(check) is check


def test_replacing_a_global_criterion_changes_what_the_gate_says(isolated_registry, framed):
    registry.register(T.APPROVE_FRAME, key="business_owner_named", label="Owner, replaced")(
        lambda i: Result(False, "Replaced by the test.")
    )
    keys = [c.key for c in registry.criteria_for(T.APPROVE_FRAME)]
    assert keys.count("business_owner_named") == 1
    result = outcome(framed, T.APPROVE_FRAME, "business_owner_named")
    assert (result.label, result.passed) == ("Owner, replaced", False)
    assert gate_open(T.APPROVE_FRAME)(framed) is False


def test_new_criterion_is_enforced_by_the_machine_without_touching_models(
    isolated_registry, framed, manager
):
    assert can_proceed(framed.approve_frame)
    registry.register(T.APPROVE_FRAME, key="budget_approved", label="Budget approved")(
        lambda i: Result(False, "Finance has not approved a budget.")
    )

    assert not can_proceed(framed.approve_frame)
    with pytest.raises(TransitionNotAllowed):
        framed.approve_frame()
    with pytest.raises(services.GateRefused) as refused:
        services.decide(
            initiative=framed, transition=T.APPROVE_FRAME, user=manager, rationale="Go."
        )
    assert [o.key for o in refused.value.failing] == ["budget_approved"]
    assert "Finance has not approved a budget." in str(refused.value)
    framed.refresh_from_db()
    assert framed.stage == Stage.FRAME
    assert framed.decisions.count() == 0


def test_new_criterion_on_a_transition_without_criteria_is_enforced(
    isolated_registry, framed, manager
):
    assert registry.criteria_for(T.STOP) == []
    registry.register(T.STOP, key="sponsor_told", label="Sponsor told")(
        lambda i: Result(False, "The sponsor has not been told.")
    )
    with pytest.raises(services.GateRefused) as refused:
        services.decide(
            initiative=framed,
            transition=T.STOP,
            user=manager,
            rationale="Strategy changed.",
            stop_reason="strategy_changed",
        )
    assert [o.key for o in refused.value.failing] == ["sponsor_told"]
    framed.refresh_from_db()
    assert framed.stage == Stage.FRAME


def test_advisory_criterion_registered_later_does_not_block(isolated_registry, framed, manager):
    registry.register(T.APPROVE_FRAME, key="nice_to_have", label="Nice", advisory=True)(
        lambda i: Result(False, "Not done (advisory).")
    )
    decision = services.decide(
        initiative=framed, transition=T.APPROVE_FRAME, user=manager, rationale="Go."
    )
    assert framed.stage == Stage.THIN_SLICE
    recorded = {c["key"]: c for c in decision.evidence["criteria"]}
    assert recorded["nice_to_have"] == {
        "key": "nice_to_have",
        "label": "Nice",
        "passed": False,
        "reason": "Not done (advisory).",
        "advisory": True,
    }


def test_isolated_registry_fixture_restores_the_global_registry():
    # Runs after the tests above registered budget_approved, sponsor_told and nice_to_have.
    keys = {c.key for t in T for c in registry.criteria_for(t)}
    assert not keys & {"budget_approved", "sponsor_told", "nice_to_have"}
    assert isinstance(registry.criteria_for(T.APPROVE_FRAME)[0], Criterion)
    assert outcome(InitiativeFactory(), T.APPROVE_FRAME, "business_owner_named").label == (
        "Named business owner"
    )


def test_criteria_passing_helper_restores_the_real_criteria(manager):
    initiative = InitiativeFactory()
    with criteria_passing():
        advance(initiative, Stage.THIN_SLICE, user=manager)
    assert not outcome(initiative, T.SUBMIT_FOR_REVIEW, "live_feed").passed


def test_override_replaces_checks_keeps_the_named_ones_and_restores_everything(complete):
    real = {o.key: o.passed for o in registry.evaluate(complete, T.SUBMIT_FOR_REVIEW)}
    refusing = Result(False, "refused (test)")
    with registry.override(lambda initiative: refusing, keep=("security_model",)):
        registry.register(T.SUBMIT_FOR_REVIEW, key="extra", label="Extra")(
            lambda initiative: Result(True, "")
        )
        inside = {o.key: o for o in registry.evaluate(complete, T.SUBMIT_FOR_REVIEW)}
        assert inside["security_model"].passed == real["security_model"]
        assert inside["logging_attested"].reason == "refused (test)"
        assert "extra" in inside
    after = {o.key: o.passed for o in registry.evaluate(complete, T.SUBMIT_FOR_REVIEW)}
    assert after == real
