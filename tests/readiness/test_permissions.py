"""Who may do what in a readiness review (DESIGN.md, "Roles and permissions").

Only an item's assignee checks or unchecks it, whatever their role; viewers change nothing.
Assigning items and passing or failing the review belong to a programme manager with no stake
in the initiative: not one of its owners, not the holder of an item of its open review
(segregation of duties). At the service a forbidden action raises PermissionDenied; through
the page it answers 403; either way nothing changes.
"""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError

from gates.stages import Stage
from gates.stages import Transition as T
from portfolio.models import Initiative
from portfolio.permissions import may_decide_review
from portfolio.roles import Role
from readiness import services
from readiness.models import ReviewItem, ReviewOutcome
from tests.factories import InitiativeFactory, UserFactory
from tests.readiness.helpers import (
    ASSIGNMENT,
    EVIDENCE,
    check,
    decide,
    decide_url,
    fresh,
    item_url,
    items_of,
    open_review,
    snapshot,
    submit_for_review,
)

pytestmark = pytest.mark.django_db

# The data pipeline item is the delivery lead's (ASSIGNMENT).
NOT_THE_ASSIGNEE = [
    "business_owner",
    "operational_owner",
    "other_owner",
    "executive",
    "pm",
    "pm2",
    "viewer",
]


def check_data(item, text=EVIDENCE) -> dict:
    return {f"c{item.pk}-evidence_text": text, f"c{item.pk}-version": item.version}


def assign_data(item, assignee) -> dict:
    return {
        f"a{item.pk}-assignee": "" if assignee is None else assignee.pk,
        f"a{item.pk}-version": item.version,
    }


def decision_data(transition) -> dict:
    return {
        f"{transition}-rationale": "Decided on the review page.",
        f"{transition}-expected_stage": Stage.READINESS_REVIEW,
    }


# Checking and unchecking: the assignee only -------------------------------------------------
@pytest.mark.parametrize("role", ["business_owner", "executive", "pm2"])
def test_the_assignee_checks_and_unchecks_their_item_whatever_their_role(items, cast, role):
    user = getattr(cast, role)
    item = items["data_pipeline"]
    services.assign(item=item, assignee=user, user=cast.pm)
    check(item, user)
    assert fresh(item).checked
    services.uncheck(item=item, user=user)
    assert not fresh(item).checked


@pytest.mark.parametrize("role", NOT_THE_ASSIGNEE)
def test_service_refuses_checking_someone_elses_item_and_changes_nothing(items, cast, role):
    item = items["data_pipeline"]
    before = snapshot(item)
    with pytest.raises(PermissionDenied):
        check(item, getattr(cast, role))
    assert snapshot(item) == before


@pytest.mark.parametrize("role", NOT_THE_ASSIGNEE)
def test_service_refuses_unchecking_someone_elses_item_and_changes_nothing(items, cast, role):
    item = check(items["data_pipeline"], cast.delivery_lead)
    before = snapshot(item)
    with pytest.raises(PermissionDenied):
        services.uncheck(item=item, user=getattr(cast, role))
    assert snapshot(item) == before


@pytest.mark.parametrize("role", NOT_THE_ASSIGNEE)
def test_check_form_answers_403_to_anyone_but_the_assignee_and_changes_nothing(
    client, items, cast, role
):
    item = items["data_pipeline"]
    before = snapshot(item)
    client.force_login(getattr(cast, role))
    response = client.post(item_url(item, "check"), check_data(item))
    assert response.status_code == 403
    assert snapshot(item) == before


@pytest.mark.parametrize("role", NOT_THE_ASSIGNEE)
def test_uncheck_form_answers_403_to_anyone_but_the_assignee_and_changes_nothing(
    client, items, cast, role
):
    item = check(items["data_pipeline"], cast.delivery_lead)
    before = snapshot(item)
    client.force_login(getattr(cast, role))
    response = client.post(item_url(item, "uncheck"), {"version": fresh(item).version})
    assert response.status_code == 403
    assert snapshot(item) == before


def test_an_unassigned_item_cannot_be_checked_by_anyone(review, cast):
    item = items_of(review)["data_pipeline"]
    for user in vars(cast).values():
        with pytest.raises(PermissionDenied):
            check(item, user)
    assert not fresh(item).checked


def test_anonymous_users_cannot_check_and_are_sent_to_log_in(client, items):
    item = items["data_pipeline"]
    before = snapshot(item)
    with pytest.raises(PermissionDenied):
        check(item, AnonymousUser())
    for action, data in (("check", check_data(item)), ("uncheck", {"version": item.version})):
        response = client.post(item_url(item, action), data)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert snapshot(item) == before


def test_the_owner_of_one_initiative_cannot_touch_the_items_of_another(client, items, cast):
    # The other owner holds every item of their own initiative's review...
    theirs = InitiativeFactory(
        framed=True, title="Fraud triage", operational_owner=cast.other_owner
    )
    their_review = submit_for_review(theirs, user=cast.pm)
    for item in items_of(their_review).values():
        services.assign(item=item, assignee=cast.other_owner, user=cast.pm)
    check(items_of(their_review)["data_pipeline"], cast.other_owner)

    # ...but not the items of this one, at the service, through its URL, or through theirs.
    item = items["data_pipeline"]
    before = snapshot(item)
    with pytest.raises(PermissionDenied):
        check(item, cast.other_owner)
    client.force_login(cast.other_owner)
    assert client.post(item_url(item, "check"), check_data(item)).status_code == 403
    their_url = f"/initiatives/{theirs.slug}/reviews/{their_review.pk}/items/{item.pk}/check/"
    assert client.post(their_url, check_data(item)).status_code == 404
    assert snapshot(item) == before


def test_viewers_cannot_be_given_items(client, items, cast):
    item = items["data_pipeline"]
    before = snapshot(item)
    with pytest.raises(ValidationError):
        services.assign(item=item, assignee=cast.viewer, user=cast.pm)
    client.force_login(cast.pm)
    response = client.post(item_url(item, "assign"), assign_data(item, cast.viewer))
    assert response.status_code == 400
    assert snapshot(item) == before


def test_a_viewer_who_holds_an_item_still_cannot_check_it(client, items, cast):
    # Given to them before their role became viewer.
    item = items["data_pipeline"]
    ReviewItem.objects.filter(pk=item.pk).update(assignee=cast.viewer)
    item = fresh(item)
    before = snapshot(item)
    with pytest.raises(PermissionDenied):
        check(item, cast.viewer)
    client.force_login(cast.viewer)
    assert client.post(item_url(item, "check"), check_data(item)).status_code == 403
    assert snapshot(item) == before


# Assigning and deciding: a programme manager with no stake ----------------------------------
STAKES = {
    "pm_business_owner": "business_owner",
    "pm_delivery_lead": "delivery_lead",
    "pm_operational_owner": "operational_owner",
}
MAY_NOT_DECIDE = [
    *STAKES,
    "pm_assignee",
    "executive",
    "business_owner",
    "delivery_lead",
    "operational_owner",
    "other_owner",
    "viewer",
]


@pytest.fixture
def ready(cast):
    """Build a review whose every item is checked, for a given person's stake in it.

    `ready(role)` returns (initiative, review items by key, the person). A `pm_<owner>` is a
    programme manager who is that owner of the initiative; `pm_assignee` is a programme
    manager who holds (and checked) the monitoring item of its open review.
    """

    def build(role):
        owners = {
            "business_owner": cast.business_owner,
            "delivery_lead": cast.delivery_lead,
            "operational_owner": cast.operational_owner,
        }
        person = getattr(cast, role, None)
        if role in STAKES or role == "pm_assignee":
            person = UserFactory(username=role, role=Role.PROGRAMME_MANAGER)
        if role in STAKES:
            owners[STAKES[role]] = person
        initiative = InitiativeFactory(framed=True, narrow_audience="Motor claims", **owners)
        review = submit_for_review(initiative, user=cast.pm2)
        for key, item in items_of(review).items():
            holder = owners[ASSIGNMENT[key]]
            if role == "pm_assignee" and key == "monitoring_alerting":
                holder = person
            services.assign(item=item, assignee=holder, user=cast.pm2)
            check(fresh(item), holder)
        return Initiative.objects.get(pk=initiative.pk), items_of(review), person

    return build


@pytest.mark.parametrize("role", MAY_NOT_DECIDE)
def test_service_refuses_assigning_to_anyone_without_a_stakeless_pm_role(ready, cast, role):
    initiative, items, person = ready(role)
    item = items["security_access"]
    before = snapshot(item)
    assert not may_decide_review(initiative, person)
    with pytest.raises(PermissionDenied):
        services.assign(item=item, assignee=cast.pm2, user=person)
    assert snapshot(item) == before


@pytest.mark.parametrize("transition", [T.PASS_REVIEW, T.FAIL_REVIEW])
@pytest.mark.parametrize("role", MAY_NOT_DECIDE)
def test_service_refuses_deciding_to_anyone_without_a_stakeless_pm_role(ready, role, transition):
    initiative, _, person = ready(role)
    with pytest.raises(PermissionDenied):
        decide(initiative, transition, person)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.READINESS_REVIEW
    assert open_review(initiative).decision is None
    assert not initiative.decisions.filter(transition=transition).exists()


@pytest.mark.parametrize("role", MAY_NOT_DECIDE)
def test_assign_form_answers_403_without_a_stakeless_pm_role(client, ready, cast, role):
    _, items, person = ready(role)
    item = items["security_access"]
    before = snapshot(item)
    client.force_login(person)
    response = client.post(item_url(item, "assign"), assign_data(item, cast.pm2))
    assert response.status_code == 403
    assert snapshot(item) == before


@pytest.mark.parametrize("transition", [T.PASS_REVIEW, T.FAIL_REVIEW])
@pytest.mark.parametrize("role", MAY_NOT_DECIDE)
def test_decision_form_answers_403_without_a_stakeless_pm_role(client, ready, role, transition):
    initiative, _, person = ready(role)
    review = open_review(initiative)
    client.force_login(person)
    response = client.post(decide_url(review, transition), decision_data(transition))
    assert response.status_code == 403
    initiative.refresh_from_db()
    assert initiative.stage == Stage.READINESS_REVIEW
    review.refresh_from_db()
    assert review.outcome == ReviewOutcome.OPEN


@pytest.mark.parametrize("role", [*STAKES, "pm_assignee"])
def test_another_programme_manager_assigns_and_passes_where_a_stakeholder_may_not(
    client, ready, cast, role
):
    initiative, items, _ = ready(role)
    item = items["security_access"]
    client.force_login(cast.pm)

    response = client.post(item_url(item, "assign"), assign_data(item, cast.delivery_lead))
    assert response.status_code == 302
    assert response["Location"] == f"{open_review(initiative).get_absolute_url()}#item-{item.pk}"
    assert fresh(item).assignee == cast.delivery_lead

    review = open_review(initiative)
    response = client.post(decide_url(review, T.PASS_REVIEW), decision_data(T.PASS_REVIEW))
    assert response.status_code == 302
    initiative.refresh_from_db()
    assert initiative.stage == Stage.NARROW_LAUNCH
    review.refresh_from_db()
    assert (review.outcome, review.decided_by) == (ReviewOutcome.PASSED, cast.pm)


def test_a_stakeless_programme_manager_fails_a_review_through_the_service(ready, cast):
    initiative, _, _ = ready("pm_assignee")
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.THIN_SLICE


def test_a_programme_manager_who_takes_an_item_loses_the_right_to_decide(items, cast):
    initiative = Initiative.objects.get(pk=items["data_pipeline"].review.initiative_id)
    assert may_decide_review(initiative, cast.pm2)
    services.assign(item=items["data_pipeline"], assignee=cast.pm2, user=cast.pm2)
    assert not may_decide_review(initiative, cast.pm2)
    with pytest.raises(PermissionDenied):
        services.assign(item=fresh(items["security_access"]), assignee=None, user=cast.pm2)
    with pytest.raises(PermissionDenied):
        decide(initiative, T.FAIL_REVIEW, cast.pm2)


def test_items_held_in_a_failed_review_do_not_bar_deciding_the_next(items, cast):
    initiative = Initiative.objects.get(pk=items["data_pipeline"].review.initiative_id)
    services.assign(item=items["data_pipeline"], assignee=cast.pm2, user=cast.pm)
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    submit_for_review(initiative, user=cast.pm)
    assert may_decide_review(initiative, cast.pm2)


def test_inactive_and_anonymous_users_may_not_assign(items, cast):
    inactive = UserFactory(username="gone-pm", role=Role.PROGRAMME_MANAGER, is_active=False)
    item = items["data_pipeline"]
    for user in (inactive, AnonymousUser()):
        with pytest.raises(PermissionDenied):
            services.assign(item=item, assignee=cast.pm2, user=user)
    assert fresh(item).assignee == cast.delivery_lead
