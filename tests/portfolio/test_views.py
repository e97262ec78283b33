"""Portfolio pages: what the list and the initiative page show, and what they cost in queries."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates.models import GateDecision
from gates.stages import Stage, StopReason
from gates.stages import Transition as T
from metrics.models import Metric
from portfolio.models import Initiative
from portfolio.roles import Role
from tests.factories import (
    BusinessUnitFactory,
    GateDecisionFactory,
    InitiativeFactory,
    MetricFactory,
    UserFactory,
)
from tests.helpers import advance, criteria_passing

pytestmark = pytest.mark.django_db


def page(initiative) -> str:
    return f"/initiatives/{initiative.slug}/"


def decide_url(initiative, transition) -> str:
    return f"/initiatives/{initiative.slug}/decide/{transition}/"


def offered(response) -> list[str]:
    return [action["transition"].value for action in response.context["actions"]]


def set_stage_clock(initiative, days: int) -> None:
    Initiative.objects.filter(pk=initiative.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=days, hours=1)
    )
    initiative.refresh_from_db()


# The initiative list ------------------------------------------------------------------------
def test_list_shows_title_stage_unit_owners_and_days_in_stage(client, viewer, manager):
    unit = BusinessUnitFactory(name="Claims operations")
    owner = UserFactory(first_name="Ada", last_name="Lovelace", role=Role.OWNER)
    lead = UserFactory(first_name="Grace", last_name="Hopper", role=Role.OWNER)
    initiative = InitiativeFactory(
        framed=True,
        title="Claims triage assistant",
        business_unit=unit,
        business_owner=owner,
        delivery_lead=lead,
    )
    advance(initiative, Stage.THIN_SLICE, user=manager)
    set_stage_clock(initiative, 17)
    client.force_login(viewer)

    response = client.get("/initiatives/")

    assert response.status_code == 200
    body = response.content.decode()
    row = re.search(
        r"<tr>\s*<td><a href=\"/initiatives/claims-triage-assistant/\".*?</tr>", body, re.S
    )
    assert row, body
    row = row.group(0)
    assert "Claims triage assistant" in row
    assert "Thin slice" in row
    assert "Claims operations" in row
    assert "Ada Lovelace" in row
    assert "Grace Hopper" in row
    assert re.search(r">\s*17\s*<", row)


def test_list_flags_an_initiative_without_business_owner(client, viewer):
    InitiativeFactory(title="Orphan pilot")
    client.force_login(viewer)
    body = client.get("/initiatives/").content.decode()
    assert "Orphan pilot" in body
    assert "nobody named" in body


def test_list_filters_by_stage_and_business_unit(client, viewer, manager):
    north, south = BusinessUnitFactory(slug="north"), BusinessUnitFactory(slug="south")
    framed_north = InitiativeFactory(framed=True, title="Alpha north", business_unit=north)
    InitiativeFactory(framed=True, title="Beta south", business_unit=south)
    moved = InitiativeFactory(framed=True, title="Gamma north", business_unit=north)
    advance(moved, Stage.THIN_SLICE, user=manager)
    client.force_login(viewer)

    by_stage = client.get("/initiatives/", {"stage": Stage.THIN_SLICE})
    assert [i.title for i in by_stage.context["page"]] == ["Gamma north"]

    by_unit = client.get("/initiatives/", {"unit": "north"})
    assert [i.title for i in by_unit.context["page"]] == [framed_north.title, "Gamma north"]

    both = client.get("/initiatives/", {"unit": "north", "stage": Stage.FRAME})
    assert [i.title for i in both.context["page"]] == ["Alpha north"]


def test_list_ignores_an_unknown_stage_filter(client, viewer):
    InitiativeFactory(title="Alpha")
    client.force_login(viewer)
    response = client.get("/initiatives/", {"stage": "<script>"})
    assert response.status_code == 200
    assert [i.title for i in response.context["page"]] == ["Alpha"]
    assert "<script>" not in response.content.decode()


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        (Role.PROGRAMME_MANAGER, True),
        (Role.EXECUTIVE, False),
        (Role.OWNER, False),
        (Role.VIEWER, False),
    ],
)
def test_list_offers_new_initiative_only_to_programme_managers(client, role, shown):
    client.force_login(UserFactory(role=role))
    body = client.get("/initiatives/").content.decode()
    assert ('href="/initiatives/new/"' in body) is shown


# The initiative page ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stage", "states"),
    [
        (Stage.FRAME, ["current", "ahead", "ahead", "ahead", "ahead"]),
        (Stage.THIN_SLICE, ["done", "current", "ahead", "ahead", "ahead"]),
        (Stage.READINESS_REVIEW, ["done", "done", "current", "ahead", "ahead"]),
        (Stage.NARROW_LAUNCH, ["done", "done", "done", "current", "ahead"]),
        (Stage.WIDE_LAUNCH, ["done", "done", "done", "done", "current"]),
    ],
)
def test_page_shows_the_stepper_at_the_current_stage(client, viewer, manager, stage, states):
    initiative = advance(InitiativeFactory(framed=True), stage, user=manager)
    client.force_login(viewer)
    response = client.get(page(initiative))
    assert response.status_code == 200
    assert [step["state"] for step in response.context["stepper"]] == states
    body = response.content.decode()
    assert body.count('aria-current="step"') == 1
    current = re.search(
        r'step-current"[^>]*aria-current="step".*?step-label">(?:<a [^>]*>)?([^<]+)<', body, re.S
    )
    assert current.group(1) == stage.label


def test_stepper_of_a_stopped_initiative_shows_where_it_stopped(client, viewer, manager):
    initiative = advance(InitiativeFactory(framed=True), Stage.READINESS_REVIEW, user=manager)
    advance(initiative, Stage.STOPPED, user=manager)
    client.force_login(viewer)
    response = client.get(page(initiative))
    assert [s["state"] for s in response.context["stepper"]] == [
        "done",
        "done",
        "stopped",
        "ahead",
        "ahead",
    ]
    body = response.content.decode()
    assert "Stopped in readiness review" in body
    assert body.count('aria-current="step"') == 1
    assert "stopped: other" in body


def test_page_shows_the_next_gates_criteria_with_reasons(client, viewer):
    initiative = InitiativeFactory(decision_changed="Which claims come first.")
    client.force_login(viewer)
    response = client.get(page(initiative))
    body = response.content.decode()
    assert response.context["next_gate"] == T.APPROVE_FRAME
    assert "Next gate: Approve framing" in body
    for text in (
        "Decision or workflow it changes",
        "The decision or workflow it changes is written down.",
        "Named business owner",
        "No business owner is named.",
        "Primary success metric",
        "No primary success metric is defined.",
        "Baseline of the existing process",
        "advisory, not met",
    ):
        assert text in body
    states = {o.key: o.passed for o in response.context["next_outcomes"]}
    assert states["decision_defined"] is True
    assert states["business_owner_named"] is False


@pytest.mark.parametrize(
    ("stage", "gate", "reason"),
    [
        (Stage.THIN_SLICE, "Submit for readiness review", "No evidence link shows that logging"),
        (Stage.READINESS_REVIEW, "Pass readiness review", "No operational owner is named."),
        (Stage.NARROW_LAUNCH, "Widen launch", "The narrow launch has run 0 of 14 days."),
    ],
)
def test_page_shows_the_criteria_of_the_gate_out_of_each_stage(
    client, viewer, manager, stage, gate, reason
):
    initiative = advance(InitiativeFactory(framed=True), stage, user=manager)
    client.force_login(viewer)
    body = client.get(page(initiative)).content.decode()
    assert f"Next gate: {gate}" in body
    assert reason in body


@pytest.mark.parametrize("stage", [Stage.WIDE_LAUNCH, Stage.STOPPED])
def test_page_has_no_next_gate_at_the_end_of_the_road(client, viewer, manager, stage):
    initiative = advance(InitiativeFactory(framed=True), stage, user=manager)
    client.force_login(viewer)
    response = client.get(page(initiative))
    assert response.context["next_gate"] is None
    assert "Next gate:" not in response.content.decode()


@pytest.fixture
def owned(manager):
    """A framed initiative with a business owner who is an owner-role user."""
    owner = UserFactory(username="the-owner", role=Role.OWNER)
    return InitiativeFactory(framed=True, business_owner=owner), owner


@pytest.mark.parametrize(
    ("who", "stage", "expected"),
    [
        ("executive", Stage.FRAME, [T.APPROVE_FRAME, T.STOP]),
        ("manager", Stage.FRAME, [T.APPROVE_FRAME, T.STOP]),
        ("owner", Stage.FRAME, []),
        ("viewer", Stage.FRAME, []),
        ("executive", Stage.THIN_SLICE, [T.STOP]),
        ("manager", Stage.THIN_SLICE, [T.SUBMIT_FOR_REVIEW, T.STOP]),
        ("owner", Stage.THIN_SLICE, [T.SUBMIT_FOR_REVIEW]),
        ("manager", Stage.READINESS_REVIEW, [T.PASS_REVIEW, T.FAIL_REVIEW, T.STOP]),
        ("executive", Stage.READINESS_REVIEW, [T.STOP]),
        ("owner", Stage.READINESS_REVIEW, []),
        ("executive", Stage.NARROW_LAUNCH, [T.WIDEN, T.ROLL_BACK, T.STOP]),
        ("viewer", Stage.NARROW_LAUNCH, []),
        ("manager", Stage.WIDE_LAUNCH, [T.ROLL_BACK, T.STOP]),
        ("owner", Stage.WIDE_LAUNCH, []),
        ("executive", Stage.STOPPED, [T.REOPEN]),
        ("owner", Stage.STOPPED, []),
    ],
)
def test_page_offers_only_the_transitions_this_user_may_take(
    client, executive, manager, viewer, owned, who, stage, expected
):
    initiative, owner = owned
    advance(initiative, stage, user=manager)
    user = {"executive": executive, "manager": manager, "owner": owner, "viewer": viewer}[who]
    client.force_login(user)
    with criteria_passing():
        response = client.get(page(initiative))
    assert sorted(offered(response)) == sorted(t.value for t in expected)
    body = response.content.decode()
    for transition in T:
        assert (decide_url(initiative, transition) in body) is (transition in expected)


def test_page_offers_the_forward_gate_first(client, manager):
    initiative = advance(InitiativeFactory(framed=True), Stage.READINESS_REVIEW, user=manager)
    client.force_login(manager)
    assert offered(client.get(page(initiative)))[0] == T.PASS_REVIEW


def test_page_shows_a_blocked_transition_with_its_failing_criteria_and_no_form(client, manager):
    initiative = InitiativeFactory(framed=True, business_owner=None)
    client.force_login(manager)
    response = client.get(page(initiative))
    approve = next(a for a in response.context["actions"] if a["transition"] == T.APPROVE_FRAME)
    assert approve["blocked"] is True
    body = response.content.decode()
    assert decide_url(initiative, T.APPROVE_FRAME) not in body
    assert decide_url(initiative, T.STOP) in body
    assert "The gate refuses this until these are met" in body


def test_decision_forms_carry_the_stage_the_user_saw(client, manager):
    initiative = InitiativeFactory(framed=True)
    client.force_login(manager)
    body = client.get(page(initiative)).content.decode()
    assert re.search(r'name="approve_frame-expected_stage" value="frame"', body)
    assert 'name="stop-stop_reason"' in body


def test_page_shows_the_decision_history(client, viewer, manager):
    decider = UserFactory(first_name="Mary", last_name="Jackson", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True)
    client.force_login(decider)
    client.post(
        decide_url(initiative, T.APPROVE_FRAME),
        {
            "approve_frame-rationale": "Framing is <b>solid</b>.",
            "approve_frame-expected_stage": Stage.FRAME,
        },
    )
    client.force_login(viewer)
    response = client.get(page(initiative))
    body = response.content.decode()
    assert list(response.context["decisions"]) == list(initiative.decisions.all())
    assert "Approve framing" in body
    assert "Mary Jackson" in body
    assert "Framing is &lt;b&gt;solid&lt;/b&gt;." in body
    assert "<b>solid</b>" not in body


def test_page_answers_404_for_an_unknown_initiative(client, viewer):
    client.force_login(viewer)
    assert client.get("/initiatives/no-such-thing/").status_code == 404


# Deciding through the page ------------------------------------------------------------------
def test_decision_redirects_to_the_page_with_a_confirmation(client, manager):
    initiative = InitiativeFactory(framed=True)
    client.force_login(manager)
    response = client.post(
        decide_url(initiative, T.APPROVE_FRAME),
        {"approve_frame-rationale": "Ready.", "approve_frame-expected_stage": Stage.FRAME},
        follow=True,
    )
    assert response.redirect_chain == [(page(initiative), 302)]
    assert "Approve framing recorded" in response.content.decode()
    initiative.refresh_from_db()
    assert initiative.stage == Stage.THIN_SLICE


@pytest.mark.parametrize(
    ("transition", "data", "field"),
    [
        (T.APPROVE_FRAME, {"approve_frame-rationale": ""}, "rationale"),
        (T.APPROVE_FRAME, {"approve_frame-rationale": "   \n  "}, "rationale"),
        (T.APPROVE_FRAME, {"approve_frame-rationale": "x" * 5001}, "rationale"),
        (T.APPROVE_FRAME, {"approve_frame-expected_stage": ""}, "expected_stage"),
        (T.STOP, {"stop-stop_reason": ""}, "stop_reason"),
        (T.STOP, {"stop-stop_reason": "bored"}, "stop_reason"),
        (T.STOP, {"stop-rationale": ""}, "rationale"),
    ],
    ids=[
        "empty-rationale",
        "blank-rationale",
        "long-rationale",
        "no-expected-stage",
        "no-stop-reason",
        "unknown-stop-reason",
        "stop-without-rationale",
    ],
)
def test_invalid_decision_form_answers_400_with_the_field_error_and_changes_nothing(
    client, manager, transition, data, field
):
    initiative = InitiativeFactory(framed=True)
    client.force_login(manager)
    posted = {
        f"{transition}-rationale": "A fine rationale.",
        f"{transition}-expected_stage": Stage.FRAME,
    }
    if transition == T.STOP:
        posted["stop-stop_reason"] = StopReason.SUPERSEDED
    posted.update(data)

    response = client.post(decide_url(initiative, transition), posted)

    assert response.status_code == 400
    action = next(a for a in response.context["actions"] if a["transition"] == transition)
    assert field in action["form"].errors
    assert action["open"] is True
    if field != "expected_stage":
        assert 'class="errors" role="alert"' in response.content.decode()
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME
    assert initiative.stop_reason == ""
    assert not GateDecision.objects.exists()


def test_refused_gate_shows_the_failing_criteria_and_changes_nothing(client, manager):
    initiative = InitiativeFactory(framed=True, business_owner=None, primary__ship_threshold=None)
    client.force_login(manager)
    response = client.post(
        decide_url(initiative, T.APPROVE_FRAME),
        {"approve_frame-rationale": "Let it pass.", "approve_frame-expected_stage": "frame"},
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "Approve framing is refused" in body
    assert "Named business owner: No business owner is named." in body
    assert "Ship threshold: No ship threshold is set on a primary metric." in body
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME
    assert not GateDecision.objects.exists()


def test_transition_not_possible_from_the_stage_answers_422_and_changes_nothing(client, manager):
    initiative = InitiativeFactory(framed=True)
    client.force_login(manager)
    response = client.post(
        decide_url(initiative, T.WIDEN),
        {"widen-rationale": "Skip ahead.", "widen-expected_stage": "frame"},
    )
    assert response.status_code == 422
    assert "is not possible from Frame" in response.content.decode()
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME
    assert not GateDecision.objects.exists()


# Query counts -------------------------------------------------------------------------------
def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def _initiatives(n: int) -> None:
    for _ in range(n):
        InitiativeFactory(
            framed=True,
            sponsor=UserFactory(),
            operational_owner=UserFactory(),
            business_unit=BusinessUnitFactory(),
        )


def test_initiative_list_queries_do_not_grow_with_the_number_of_initiatives(
    client, viewer, django_assert_num_queries
):
    _initiatives(3)
    client.force_login(viewer)
    client.get("/initiatives/")  # warm caches that are per process, not per page
    with_three = _queries(client, "/initiatives/")

    _initiatives(27)
    assert Initiative.objects.count() == 30
    with django_assert_num_queries(with_three):
        response = client.get("/initiatives/")
    assert len(response.context["page"]) == 30


def _history(initiative, n: int) -> None:
    for _ in range(n):
        GateDecisionFactory(
            initiative=initiative,
            decided_by=UserFactory(),
            transition=T.STOP,
            from_stage=Stage.FRAME,
            to_stage=Stage.STOPPED,
        )
        MetricFactory(initiative=initiative, is_primary=False)


@pytest.mark.parametrize("who", ["manager", "viewer"])
def test_initiative_page_queries_do_not_grow_with_decisions_and_metrics(
    client, manager, viewer, django_assert_num_queries, who
):
    initiative = InitiativeFactory(framed=True, operational_owner=UserFactory())
    _history(initiative, 3)
    client.force_login({"manager": manager, "viewer": viewer}[who])
    client.get(page(initiative))
    with_three = _queries(client, page(initiative))

    _history(initiative, 27)
    assert initiative.decisions.count() == 30
    assert Metric.objects.filter(initiative=initiative).count() == 31
    with django_assert_num_queries(with_three):
        response = client.get(page(initiative))
    assert len(response.context["decisions"]) == 30


def test_initiative_page_queries_do_not_depend_on_other_initiatives(
    client, manager, django_assert_num_queries
):
    initiative = InitiativeFactory(framed=True)
    client.force_login(manager)
    client.get(page(initiative))
    alone = _queries(client, page(initiative))
    _initiatives(10)
    with django_assert_num_queries(alone):
        client.get(page(initiative))


def test_home_page_queries_do_not_grow_with_the_portfolio(
    client, manager, django_assert_num_queries
):
    owner = UserFactory(role=Role.OWNER)
    for _ in range(3):
        advance(
            InitiativeFactory(framed=True, business_owner=owner), Stage.THIN_SLICE, user=manager
        )
    client.force_login(owner)
    client.get("/")
    cache.clear()  # the figures computed, not read from the dashboard's cache
    with_three = _queries(client, "/")
    for _ in range(27):
        advance(
            InitiativeFactory(framed=True, business_owner=owner), Stage.THIN_SLICE, user=manager
        )
    cache.clear()
    with django_assert_num_queries(with_three):
        response = client.get("/")
    assert response.context["total"] == 30
