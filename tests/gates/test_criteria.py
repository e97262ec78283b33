"""Gate criteria: each one passes and fails with a sentence; the registry drives the machine."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import checks
from django.core.checks.registry import registry as django_checks
from django.utils import timezone
from django_fsm import TransitionNotAllowed, can_proceed

from gantry.checks import EXPECTED_CRITERIA, gate_criteria_registered
from gates import services
from gates.criteria import Criterion, Registry, Result, gate_open, registry
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


@pytest.fixture
def complete(framed):
    """An initiative with every attested and named part of every gate filled in."""
    framed.logging_evidence = "https://logs.example.com/claims-triage"
    framed.security_model = "Adjusters see their own claims; the model sees no names."
    framed.operational_owner = UserFactory()
    framed.narrow_audience = "The Leeds claims team"
    framed.stage_entered_at = timezone.now() - timedelta(days=365)
    return framed


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


# The order criteria are shown and evaluated in ---------------------------------------------
# The gates, metrics and readiness each register part of a gate; `order` interleaves them.
ORDER = {
    T.APPROVE_FRAME: [
        "decision_defined",
        "primary_metric_defined",
        "ship_threshold_set",
        "business_owner_named",
        "baseline_recorded",
    ],
    T.SUBMIT_FOR_REVIEW: ["live_feed", "fresh_data", "logging_attested", "security_model"],
    T.PASS_REVIEW: ["checklist_complete", "operational_owner_named", "narrow_audience_defined"],
    T.FAIL_REVIEW: [],
    T.WIDEN: [
        "window_elapsed",
        "pilot_meets_threshold",
        "pilot_beats_baseline",
        "no_open_work_items",
    ],
    T.ROLL_BACK: ["numbers_no_longer_hold"],
    T.STOP: [],
    T.REOPEN: [],
    T.REFRAME: [],
}


def test_every_transition_lists_its_criteria_in_the_order_pages_show_them():
    assert set(ORDER) == set(T)
    assert {t: [c.key for c in registry.criteria_for(t)] for t in T} == ORDER


def test_the_evaluation_follows_the_same_order(framed):
    for transition, keys in ORDER.items():
        assert [o.key for o in registry.evaluate(framed, transition)] == keys


def test_every_registered_criterion_has_an_order_of_its_own():
    for transition in T:
        orders = [c.order for c in registry.criteria_for(transition)]
        assert None not in orders, transition
        assert len(set(orders)) == len(orders), transition


def test_the_system_check_expects_exactly_the_registered_criteria():
    assert {t: list(keys) for t, keys in EXPECTED_CRITERIA.items()} == {
        t: keys for t, keys in ORDER.items() if keys
    }


def test_criteria_are_listed_by_order_not_by_registration():
    local = Registry()
    local.register(T.STOP, key="c", label="C", order=30)(lambda i: Result(True, "c"))
    local.register(T.STOP, key="a", label="A", order=10)(lambda i: Result(True, "a"))
    local.register(T.STOP, key="b", label="B", order=20)(lambda i: Result(True, "b"))
    assert [c.key for c in local.criteria_for(T.STOP)] == ["a", "b", "c"]
    assert [o.key for o in local.evaluate(object(), T.STOP)] == ["a", "b", "c"]


def test_equal_orders_keep_the_registration_sequence():
    local = Registry()
    for key in ("x", "y", "z"):
        local.register(T.STOP, key=key, label=key, order=10)(lambda i: Result(True, ""))
    local.register(T.STOP, key="w", label="W", order=5)(lambda i: Result(True, ""))
    assert [c.key for c in local.criteria_for(T.STOP)] == ["w", "x", "y", "z"]


def test_criteria_without_an_order_follow_the_ordered_ones_in_registration_order():
    local = Registry()
    local.register(T.STOP, key="late", label="Late")(lambda i: Result(True, ""))
    local.register(T.STOP, key="ordered", label="Ordered", order=1000)(lambda i: Result(True, ""))
    local.register(T.STOP, key="later", label="Later")(lambda i: Result(True, ""))
    assert [c.key for c in local.criteria_for(T.STOP)] == ["ordered", "late", "later"]


def test_a_replacement_without_an_order_keeps_the_earlier_place():
    local = Registry()
    local.register(T.STOP, key="a", label="A", order=10)(lambda i: Result(True, ""))
    local.register(T.STOP, key="b", label="B", order=20)(lambda i: Result(True, ""))
    local.register(T.STOP, key="a", label="A again")(lambda i: Result(False, "replaced"))
    assert [(c.key, c.label, c.order) for c in local.criteria_for(T.STOP)] == [
        ("a", "A again", 10),
        ("b", "B", 20),
    ]


def test_a_replacement_with_an_order_moves_to_it():
    local = Registry()
    local.register(T.STOP, key="a", label="A", order=10)(lambda i: Result(True, ""))
    local.register(T.STOP, key="b", label="B", order=20)(lambda i: Result(True, ""))
    local.register(T.STOP, key="a", label="A moved", order=30)(lambda i: Result(True, ""))
    assert [(c.key, c.order) for c in local.criteria_for(T.STOP)] == [("b", 20), ("a", 30)]


def test_replacing_a_real_criterion_keeps_the_order_of_its_gate(isolated_registry):
    registry.register(T.WIDEN, key="pilot_meets_threshold", label="Replaced")(
        lambda i: Result(True, "")
    )
    assert [c.key for c in registry.criteria_for(T.WIDEN)] == ORDER[T.WIDEN]


def test_override_keeps_the_order(complete):
    with registry.override(lambda initiative: Result(True, "passes (test)")):
        assert [c.key for c in registry.criteria_for(T.WIDEN)] == ORDER[T.WIDEN]
        registry.register(T.WIDEN, key="between", label="Between", order=15)(
            lambda initiative: Result(True, "")
        )
        keys = [o.key for o in registry.evaluate(complete, T.WIDEN)]
        assert keys == ["window_elapsed", "between", *ORDER[T.WIDEN][1:]]
    assert [c.key for c in registry.criteria_for(T.WIDEN)] == ORDER[T.WIDEN]


# The system check that every criterion a gate relies on is registered ----------------------
def registry_without(transition, missing: str) -> Registry:
    """A copy of the real registry with one criterion left out, as if its app were missing."""
    local = Registry()
    for t in T:
        for c in registry.criteria_for(t):
            if (t, c.key) != (transition, missing):
                local.register(t, key=c.key, label=c.label, advisory=c.advisory, order=c.order)(
                    c.check
                )
    return local


def test_the_system_check_passes_on_the_real_registry():
    assert gate_criteria_registered(None) == []


def test_the_system_check_is_registered_with_django():
    assert gate_criteria_registered in django_checks.get_checks()
    assert not [m for m in checks.run_checks() if m.id == "gantry.E001"]


@pytest.mark.parametrize(
    ("transition", "key"),
    [
        (T.SUBMIT_FOR_REVIEW, "live_feed"),
        (T.SUBMIT_FOR_REVIEW, "fresh_data"),
        (T.PASS_REVIEW, "checklist_complete"),
        (T.WIDEN, "pilot_meets_threshold"),
        (T.WIDEN, "pilot_beats_baseline"),
        (T.WIDEN, "no_open_work_items"),
        (T.APPROVE_FRAME, "business_owner_named"),
        (T.ROLL_BACK, "numbers_no_longer_hold"),
    ],
)
def test_the_system_check_names_a_missing_criterion_and_its_transition(transition, key):
    [error] = gate_criteria_registered(None, registry=registry_without(transition, key))
    assert isinstance(error, checks.Error)
    assert error.id == "gantry.E001"
    assert f"'{key}'" in error.msg
    assert f"'{transition.value}'" in error.msg


def test_the_system_check_reports_every_missing_criterion():
    errors = gate_criteria_registered(None, registry=Registry())
    assert len(errors) == sum(len(keys) for keys in ORDER.values())
    assert {e.id for e in errors} == {"gantry.E001"}


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
