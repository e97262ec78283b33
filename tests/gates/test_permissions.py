"""DESIGN.md's permission table, at the service and through HTTP: forbidden changes nothing."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from gates import services
from gates.models import GateDecision
from gates.stages import Stage, StopReason
from gates.stages import Transition as T
from metrics.models import Metric
from portfolio import permissions
from portfolio.models import Initiative
from portfolio.roles import Role
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance, criteria_passing

pytestmark = pytest.mark.django_db

ROLES = [
    "executive",
    "programme_manager",
    "business_owner",
    "delivery_lead",
    "operational_owner",
    "owner_of_another",
    "viewer",
]

# DESIGN.md, "Roles and permissions"; roll_back goes with widen.
ALLOWED = {
    T.APPROVE_FRAME: {"executive", "programme_manager"},
    T.SUBMIT_FOR_REVIEW: {"programme_manager", "business_owner", "delivery_lead"},
    T.PASS_REVIEW: {"programme_manager"},
    T.FAIL_REVIEW: {"programme_manager"},
    T.WIDEN: {"executive", "programme_manager"},
    T.ROLL_BACK: {"executive", "programme_manager"},
    T.STOP: {"executive", "programme_manager"},
    T.REOPEN: {"executive", "programme_manager"},
}

# (transition, the stage it leaves, the stage it reaches)
MOVES = [
    (T.APPROVE_FRAME, Stage.FRAME, Stage.THIN_SLICE),
    (T.SUBMIT_FOR_REVIEW, Stage.THIN_SLICE, Stage.READINESS_REVIEW),
    (T.PASS_REVIEW, Stage.READINESS_REVIEW, Stage.NARROW_LAUNCH),
    (T.FAIL_REVIEW, Stage.READINESS_REVIEW, Stage.THIN_SLICE),
    (T.WIDEN, Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH),
    (T.ROLL_BACK, Stage.NARROW_LAUNCH, Stage.THIN_SLICE),
    (T.STOP, Stage.THIN_SLICE, Stage.STOPPED),
    (T.REOPEN, Stage.STOPPED, Stage.FRAME),
]
SOURCE = {t: s for t, s, _ in MOVES}
TARGET = {t: target for t, _, target in MOVES}

PERMITTED = [(t, role) for t, _, _ in MOVES for role in ROLES if role in ALLOWED[t]]
FORBIDDEN = [(t, role) for t, _, _ in MOVES for role in ROLES if role not in ALLOWED[t]]


def _ids(cases):
    return [f"{role}-{t.value}" for t, role in cases]


@pytest.fixture
def cast():
    """One person per role, an initiative they relate to, and a neutral PM to move it."""
    people = {
        "executive": UserFactory(username="exec", role=Role.EXECUTIVE),
        "programme_manager": UserFactory(username="pm", role=Role.PROGRAMME_MANAGER),
        "business_owner": UserFactory(username="bo", role=Role.OWNER),
        "delivery_lead": UserFactory(username="dl", role=Role.OWNER),
        "operational_owner": UserFactory(username="oo", role=Role.OWNER),
        "owner_of_another": UserFactory(username="other", role=Role.OWNER),
        "viewer": UserFactory(username="viewer", role=Role.VIEWER),
    }
    initiative = InitiativeFactory(
        framed=True,
        business_owner=people["business_owner"],
        delivery_lead=people["delivery_lead"],
        operational_owner=people["operational_owner"],
    )
    other = people["owner_of_another"]
    InitiativeFactory(
        framed=True, business_owner=other, delivery_lead=other, operational_owner=other
    )
    driver = UserFactory(username="driver", role=Role.PROGRAMME_MANAGER)
    return SimpleNamespace(people=people, initiative=initiative, driver=driver)


def at_source(cast, transition):
    return advance(cast.initiative, SOURCE[transition], user=cast.driver)


def decide(initiative, transition, user):
    return services.decide(
        initiative=initiative,
        transition=transition,
        user=user,
        rationale="Decided for the permission test.",
        stop_reason=StopReason.OTHER if transition == T.STOP else "",
    )


def post_decision(client, initiative, transition, **extra):
    data = {
        f"{transition}-rationale": "Decided over HTTP.",
        f"{transition}-expected_stage": initiative.stage,
    }
    if transition == T.STOP:
        data["stop-stop_reason"] = StopReason.OTHER
    data.update(extra)
    return client.post(f"/initiatives/{initiative.slug}/decide/{transition}/", data)


# The service --------------------------------------------------------------------------------
@pytest.mark.parametrize(("transition", "role"), PERMITTED, ids=_ids(PERMITTED))
def test_service_lets_a_permitted_role_take_the_transition(cast, transition, role):
    initiative = at_source(cast, transition)
    user = cast.people[role]
    with criteria_passing():
        decision = decide(initiative, transition, user)
    initiative.refresh_from_db()
    assert initiative.stage == TARGET[transition]
    assert decision.decided_by == user


@pytest.mark.parametrize(("transition", "role"), FORBIDDEN, ids=_ids(FORBIDDEN))
def test_service_refuses_a_forbidden_role_and_changes_nothing(cast, transition, role):
    initiative = at_source(cast, transition)
    before = GateDecision.objects.count()
    with criteria_passing(), pytest.raises(PermissionDenied):
        decide(initiative, transition, cast.people[role])
    assert initiative.stage == SOURCE[transition]
    initiative.refresh_from_db()
    assert initiative.stage == SOURCE[transition]
    assert GateDecision.objects.count() == before


@pytest.mark.parametrize(("transition", "role"), FORBIDDEN, ids=_ids(FORBIDDEN))
def test_service_checks_permission_before_rationale_stage_and_criteria(cast, transition, role):
    # The initiative sits in frame with real criteria; the rationale is empty and the page
    # was stale. A person who may not take the transition is still told just that.
    initiative = cast.initiative
    initiative.business_owner = None
    user = cast.people[role]
    for kwargs in (
        {"rationale": ""},
        {"rationale": "Fine.", "expected_stage": Stage.WIDE_LAUNCH},
        {"rationale": "Fine."},
    ):
        with pytest.raises(PermissionDenied):
            services.decide(initiative=initiative, transition=transition, user=user, **kwargs)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME
    assert not GateDecision.objects.exists()


@pytest.mark.parametrize("transition", [t for t, _, _ in MOVES])
def test_service_refuses_anonymous_and_inactive_users(cast, transition):
    initiative = at_source(cast, transition)
    inactive = UserFactory(username="gone", role=Role.PROGRAMME_MANAGER, is_active=False)
    before = GateDecision.objects.count()
    for user in (AnonymousUser(), inactive, None):
        with criteria_passing(), pytest.raises(PermissionDenied):
            decide(initiative, transition, user)
    initiative.refresh_from_db()
    assert initiative.stage == SOURCE[transition]
    assert GateDecision.objects.count() == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("stage", list(Stage))
def test_user_transitions_offer_exactly_what_the_table_allows_from_the_stage(cast, role, stage):
    initiative = advance(cast.initiative, stage, user=cast.driver)
    offered = set(services.user_transitions(initiative, cast.people[role]))
    expected = {t.value for t, source, _ in MOVES if role in ALLOWED[t] and source == stage}
    if stage != Stage.STOPPED and role in ALLOWED[T.STOP]:
        expected.add(T.STOP.value)  # stop leaves every stage; from wide launch it retires
    if stage == Stage.WIDE_LAUNCH and role in ALLOWED[T.ROLL_BACK]:
        expected.add(T.ROLL_BACK.value)  # back to the narrow audience
    assert offered == expected


# Segregation of duties ----------------------------------------------------------------------
OWNER_FIELDS = ["business_owner", "delivery_lead", "operational_owner"]


@pytest.mark.parametrize("field", OWNER_FIELDS)
@pytest.mark.parametrize("transition", [T.PASS_REVIEW, T.FAIL_REVIEW])
def test_programme_manager_who_owns_the_initiative_may_not_decide_its_review(
    cast, field, transition
):
    pm_owner = UserFactory(username="pm-owner", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True, **{field: pm_owner})
    advance(initiative, Stage.READINESS_REVIEW, user=cast.driver)
    assert not permissions.may_decide_review(initiative, pm_owner)
    with criteria_passing(), pytest.raises(PermissionDenied):
        decide(initiative, transition, pm_owner)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.READINESS_REVIEW
    assert initiative.decisions.filter(transition=transition).count() == 0


@pytest.mark.parametrize("field", OWNER_FIELDS)
@pytest.mark.parametrize("transition", [T.PASS_REVIEW, T.FAIL_REVIEW])
def test_programme_manager_who_owns_the_initiative_gets_403_deciding_its_review(
    client, cast, field, transition
):
    pm_owner = UserFactory(username="pm-owner", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True, **{field: pm_owner})
    advance(initiative, Stage.READINESS_REVIEW, user=cast.driver)
    client.force_login(pm_owner)
    with criteria_passing():
        response = post_decision(client, initiative, transition)
    assert response.status_code == 403
    initiative.refresh_from_db()
    assert initiative.stage == Stage.READINESS_REVIEW
    assert initiative.decisions.filter(transition=transition).count() == 0


@pytest.mark.parametrize("transition", [T.APPROVE_FRAME, T.SUBMIT_FOR_REVIEW, T.STOP])
def test_programme_manager_who_owns_the_initiative_keeps_the_other_rights(cast, transition):
    pm_owner = UserFactory(username="pm-owner", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True, business_owner=pm_owner)
    advance(initiative, SOURCE[transition], user=cast.driver)
    with criteria_passing():
        decide(initiative, transition, pm_owner)
    assert initiative.stage == TARGET[transition]


def test_another_programme_manager_may_decide_the_review_of_an_owned_initiative(cast):
    pm_owner = UserFactory(username="pm-owner", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True, business_owner=pm_owner)
    advance(initiative, Stage.READINESS_REVIEW, user=cast.driver)
    with criteria_passing():
        decide(initiative, T.PASS_REVIEW, cast.people["programme_manager"])
    assert initiative.stage == Stage.NARROW_LAUNCH


# Through HTTP -------------------------------------------------------------------------------
@pytest.mark.parametrize(("transition", "role"), PERMITTED, ids=_ids(PERMITTED))
def test_view_lets_a_permitted_role_take_the_transition(client, cast, transition, role):
    initiative = at_source(cast, transition)
    user = cast.people[role]
    client.force_login(user)
    with criteria_passing():
        response = post_decision(client, initiative, transition)
    assert response.status_code == 302
    assert response["Location"] == initiative.get_absolute_url()
    initiative.refresh_from_db()
    assert initiative.stage == TARGET[transition]
    decision = initiative.decisions.first()
    assert (decision.transition, decision.decided_by) == (transition, user)
    assert decision.rationale == "Decided over HTTP."


@pytest.mark.parametrize(("transition", "role"), FORBIDDEN, ids=_ids(FORBIDDEN))
def test_view_answers_403_to_a_forbidden_role_and_changes_nothing(client, cast, transition, role):
    initiative = at_source(cast, transition)
    before = GateDecision.objects.count()
    client.force_login(cast.people[role])
    with criteria_passing():
        response = post_decision(client, initiative, transition)
    assert response.status_code == 403
    initiative.refresh_from_db()
    assert initiative.stage == SOURCE[transition]
    assert GateDecision.objects.count() == before


@pytest.mark.parametrize(("transition", "role"), FORBIDDEN, ids=_ids(FORBIDDEN))
def test_view_answers_403_to_a_forbidden_role_even_with_an_invalid_form(
    client, cast, transition, role
):
    initiative = at_source(cast, transition)
    client.force_login(cast.people[role])
    response = post_decision(client, initiative, transition, **{f"{transition}-rationale": ""})
    assert response.status_code == 403
    initiative.refresh_from_db()
    assert initiative.stage == SOURCE[transition]


@pytest.mark.parametrize("role", ["viewer", "owner_of_another"])
@pytest.mark.parametrize("transition", [T.WIDEN, T.PASS_REVIEW, T.REOPEN])
def test_view_answers_403_to_a_role_that_may_never_take_the_transition_from_any_stage(
    client, cast, role, transition
):
    # The initiative is in frame, where none of these transitions is offered: a person who
    # may never take them is still told "forbidden", not "not possible from here".
    initiative = cast.initiative
    client.force_login(cast.people[role])
    response = post_decision(client, initiative, transition)
    assert response.status_code == 403
    initiative.refresh_from_db()
    assert initiative.stage == Stage.FRAME
    assert not GateDecision.objects.exists()


def test_view_answers_404_to_an_unknown_transition(client, cast):
    client.force_login(cast.people["programme_manager"])
    response = post_decision(client, cast.initiative, "teleport")
    assert response.status_code == 404


def test_a_get_on_the_decision_url_decides_nothing_and_goes_to_the_initiative_page(client, cast):
    client.force_login(cast.people["programme_manager"])
    response = client.get(f"/initiatives/{cast.initiative.slug}/decide/approve_frame/")
    assert response.status_code == 302
    assert response["Location"] == f"/initiatives/{cast.initiative.slug}/"
    cast.initiative.refresh_from_db()
    assert cast.initiative.stage == Stage.FRAME
    assert not GateDecision.objects.exists()


# Framing forms ------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_only_a_programme_manager_may_open_the_new_initiative_form(client, cast, role):
    client.force_login(cast.people[role])
    response = client.get("/initiatives/new/")
    assert response.status_code == (200 if role == "programme_manager" else 403)


@pytest.mark.parametrize("role", ROLES)
def test_only_a_programme_manager_may_create_an_initiative(client, cast, role, framing_data):
    before = (Initiative.objects.count(), Metric.objects.count())
    client.force_login(cast.people[role])
    response = client.post("/initiatives/new/", framing_data(title="Brand new"))
    created = Initiative.objects.filter(title="Brand new").first()
    if role == "programme_manager":
        assert response.status_code == 302
        assert created is not None
        assert created.created_by == cast.people[role]
    else:
        assert response.status_code == 403
        assert created is None
        assert (Initiative.objects.count(), Metric.objects.count()) == before


EDITORS = {"programme_manager", "business_owner", "delivery_lead", "operational_owner"}


@pytest.mark.parametrize("role", ROLES)
def test_framing_edit_page_is_for_programme_managers_and_this_initiatives_owners(
    client, cast, role
):
    client.force_login(cast.people[role])
    response = client.get(f"/initiatives/{cast.initiative.slug}/edit/")
    assert response.status_code == (200 if role in EDITORS else 403)


@pytest.mark.parametrize("role", ROLES)
def test_framing_edit_saves_only_for_programme_managers_and_this_initiatives_owners(
    client, cast, role, framing_data
):
    initiative = cast.initiative
    client.force_login(cast.people[role])
    response = client.post(
        f"/initiatives/{initiative.slug}/edit/",
        framing_data(initiative, title="Renamed", **{"metric-unit": "percent"}),
    )
    initiative.refresh_from_db()
    metric = initiative.primary_metric
    if role in EDITORS:
        assert response.status_code == 302
        assert initiative.title == "Renamed"
        assert metric.unit == "percent"
    else:
        assert response.status_code == 403
        assert initiative.title != "Renamed"
        assert metric.unit == "%"


def test_save_framing_service_refuses_a_forbidden_user_itself(cast, framing_data):
    from metrics.forms import PrimaryMetricForm
    from portfolio.forms import InitiativeForm
    from portfolio.services import save_framing

    initiative = cast.initiative
    data = framing_data(initiative, title="Renamed")
    form = InitiativeForm(data, instance=initiative)
    metric_form = PrimaryMetricForm(data, instance=initiative.primary_metric, prefix="metric")
    assert form.is_valid() and metric_form.is_valid()
    with pytest.raises(PermissionDenied):
        save_framing(initiative_form=form, metric_form=metric_form, user=cast.people["viewer"])
    initiative.refresh_from_db()
    assert initiative.title != "Renamed"


# Login --------------------------------------------------------------------------------------
def _pages(slug):
    return [
        ("get", "/"),
        ("get", "/initiatives/"),
        ("get", "/initiatives/new/"),
        ("post", "/initiatives/new/"),
        ("get", f"/initiatives/{slug}/"),
        ("get", f"/initiatives/{slug}/edit/"),
        ("post", f"/initiatives/{slug}/edit/"),
        ("post", f"/initiatives/{slug}/decide/approve_frame/"),
        ("post", f"/initiatives/{slug}/decide/stop/"),
    ]


@pytest.mark.parametrize("index", range(len(_pages("x"))))
def test_anonymous_users_are_sent_to_the_login_page(client, cast, index):
    method, url = _pages(cast.initiative.slug)[index]
    data = (
        {
            "approve_frame-rationale": "Sneaky.",
            "approve_frame-expected_stage": "frame",
            "stop-rationale": "Sneaky.",
            "stop-expected_stage": "frame",
            "stop-stop_reason": "other",
            "title": "Sneaky",
        }
        if method == "post"
        else None
    )
    with criteria_passing():
        response = getattr(client, method)(url, data)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    cast.initiative.refresh_from_db()
    assert cast.initiative.stage == Stage.FRAME
    assert not GateDecision.objects.exists()
    assert not Initiative.objects.filter(title="Sneaky").exists()


def test_health_checks_need_no_login(client, db):
    assert client.get("/livez").status_code == 200
    assert client.get("/healthz").status_code in {200, 503}  # 503: no worker in this test


def test_login_page_needs_no_login(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
