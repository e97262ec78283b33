"""The role bounds every power, and a stake counts from the moment the review opened.

Viewers never write: a viewer named on an item, a work item or an owner field still checks,
unchecks, completes, assigns and decides nothing. A programme manager who held a stake at
any time since the review opened (an owner, or given an item) may not assign or decide it
even once the stake is gone; a stake that ended before the review opened does not count.
An owner who loses their item loses the right to check it.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from gates.stages import Stage
from gates.stages import Transition as T
from portfolio.models import Initiative
from portfolio.permissions import may_decide_review
from portfolio.roles import Role
from readiness import services
from readiness.models import PreLaunchWorkItem, ReviewItem, WorkStatus
from tests.factories import UserFactory
from tests.readiness.helpers import (
    EVIDENCE,
    change_owner,
    check,
    decide,
    decide_url,
    fresh,
    item_url,
    open_review,
    review_url,
    snapshot,
)

DONE = "Fixed and verified in the runbook."  # the evidence work is closed with

pytestmark = pytest.mark.django_db


def check_data(item) -> dict:
    return {f"c{item.pk}-evidence_text": EVIDENCE, f"c{item.pk}-version": fresh(item).version}


def assign_data(item, assignee) -> dict:
    return {f"a{item.pk}-assignee": assignee.pk, f"a{item.pk}-version": fresh(item).version}


def decision_data(transition) -> dict:
    return {
        f"{transition}-rationale": "Decided on the review page.",
        f"{transition}-expected_stage": Stage.READINESS_REVIEW,
    }


def give(item, person) -> ReviewItem:
    """Hand the item to `person` behind the services' back (their role changed since)."""
    ReviewItem.objects.filter(pk=item.pk).update(assignee=person)
    return fresh(item)


# Viewers never write ------------------------------------------------------------------------
def test_a_viewer_holding_a_checked_item_cannot_uncheck_it(client, items, cast):
    item = give(check(items["data_pipeline"], cast.delivery_lead), cast.viewer)
    before = snapshot(item)
    with pytest.raises(PermissionDenied):
        services.uncheck(item=item, user=cast.viewer)
    client.force_login(cast.viewer)
    response = client.post(item_url(item, "uncheck"), {"version": item.version})
    assert response.status_code == 403
    assert snapshot(item) == before


def test_a_viewer_holding_an_item_sees_no_check_or_uncheck_form(client, items, cast):
    give(items["data_pipeline"], cast.viewer)
    give(check(items["security_access"], cast.business_owner), cast.viewer)
    client.force_login(cast.viewer)
    body = client.get(review_url(items["data_pipeline"].review)).content.decode()
    assert "/check/" not in body
    assert "/uncheck/" not in body


def test_a_person_with_no_role_holding_an_item_cannot_check_it(items, cast):
    nobody = UserFactory(username="r-norole", first_name="Nils", last_name="Berg")
    item = give(items["data_pipeline"], nobody)
    with pytest.raises(PermissionDenied):
        check(item, nobody)
    assert not fresh(item).checked


@pytest.mark.parametrize("who", ["viewer", "inactive", "no_role"])
def test_items_go_only_to_people_whose_role_lets_them_work(client, items, cast, who):
    person = {
        "viewer": cast.viewer,
        "inactive": UserFactory(username="r-left", role=Role.OWNER, is_active=False),
        "no_role": UserFactory(username="r-norole"),
    }[who]
    item = items["data_pipeline"]
    before = snapshot(item)
    with pytest.raises(ValidationError):
        services.assign(item=item, assignee=person, user=cast.pm)
    client.force_login(cast.pm)
    assert client.post(item_url(item, "assign"), assign_data(item, person)).status_code == 400
    assert snapshot(item) == before


@pytest.fixture
def viewer_owner(initiative, items, cast):
    """The viewer named business owner (as an old record or a mistake might leave it)."""
    Initiative.objects.filter(pk=initiative.pk).update(business_owner=cast.viewer)
    initiative.refresh_from_db()
    return initiative


def test_a_viewer_named_as_owner_cannot_assign(client, viewer_owner, items, cast):
    item = items["security_access"]
    before = snapshot(item)
    assert not may_decide_review(viewer_owner, cast.viewer)
    with pytest.raises(PermissionDenied):
        services.assign(item=item, assignee=cast.delivery_lead, user=cast.viewer)
    client.force_login(cast.viewer)
    response = client.post(item_url(item, "assign"), assign_data(item, cast.delivery_lead))
    assert response.status_code == 403
    assert snapshot(item) == before


@pytest.mark.parametrize("transition", [T.PASS_REVIEW, T.FAIL_REVIEW])
def test_a_viewer_named_as_owner_cannot_decide(client, viewer_owner, items, cast, transition):
    with pytest.raises(PermissionDenied):
        decide(viewer_owner, transition, cast.viewer)
    client.force_login(cast.viewer)
    review = open_review(viewer_owner)
    response = client.post(decide_url(review, transition), decision_data(transition))
    assert response.status_code == 403
    viewer_owner.refresh_from_db()
    assert viewer_owner.stage == Stage.READINESS_REVIEW


def test_a_viewer_named_as_owner_and_holding_an_item_cannot_check_it(
    client, viewer_owner, items, cast
):
    item = give(items["security_access"], cast.viewer)
    before = snapshot(item)
    with pytest.raises(PermissionDenied):
        check(item, cast.viewer)
    client.force_login(cast.viewer)
    assert client.post(item_url(item, "check"), check_data(item)).status_code == 403
    assert snapshot(item) == before


def test_a_viewer_named_as_owner_leaves_the_managers_free_to_decide(viewer_owner, cast):
    assert may_decide_review(viewer_owner, cast.pm)
    assert may_decide_review(viewer_owner, cast.pm2)


# Work items: the assignee (not as a viewer) or a programme manager --------------------------
@pytest.fixture
def work_item(initiative, items, cast):
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    return PreLaunchWorkItem.objects.get(review_item=items["data_pipeline"])


def test_a_viewer_assigned_a_work_item_cannot_complete_it(client, work_item, cast):
    PreLaunchWorkItem.objects.filter(pk=work_item.pk).update(assignee=cast.viewer)
    work_item.refresh_from_db()
    with pytest.raises(PermissionDenied):
        services.complete_work_item(work_item=work_item, user=cast.viewer, evidence_text=DONE)
    client.force_login(cast.viewer)
    assert client.post(f"/work-items/{work_item.pk}/done/").status_code == 403
    work_item.refresh_from_db()
    assert (work_item.status, work_item.done_by) == (WorkStatus.OPEN, None)
    assert not work_item.events.exists()


def test_a_programme_manager_completes_a_viewers_work_item(work_item, cast):
    PreLaunchWorkItem.objects.filter(pk=work_item.pk).update(assignee=cast.viewer)
    services.complete_work_item(work_item=work_item, user=cast.pm2, evidence_text=DONE)
    assert (work_item.status, work_item.done_by) == (WorkStatus.DONE, cast.pm2)


def test_an_inactive_assignee_cannot_complete_their_work_item(work_item, cast):
    type(cast.delivery_lead).objects.filter(pk=cast.delivery_lead.pk).update(is_active=False)
    cast.delivery_lead.refresh_from_db()
    with pytest.raises(PermissionDenied):
        services.complete_work_item(
            work_item=work_item, user=cast.delivery_lead, evidence_text=DONE
        )


# Stakes over time ---------------------------------------------------------------------------
@pytest.fixture
def former_owner_pm(cast, initiative, items):
    """A programme manager who was the delivery lead when the review opened and has since
    handed the role back to Grace Hopper, as recorded in the framing history."""
    person = UserFactory(
        username="r-was-owner", first_name="Omar", last_name="Farouk", role=Role.PROGRAMME_MANAGER
    )
    review = open_review(initiative)
    change_owner(initiative, "delivery_lead", person, by=cast.pm, at=review.opened_at)
    change_owner(initiative, "delivery_lead", cast.delivery_lead, by=cast.pm)
    assert not initiative.is_owned_by(person)
    return person


def test_a_manager_who_owned_the_initiative_during_the_review_may_not_assign(
    client, initiative, items, cast, former_owner_pm
):
    item = items["security_access"]
    before = snapshot(item)
    with pytest.raises(PermissionDenied):
        services.assign(item=item, assignee=cast.delivery_lead, user=former_owner_pm)
    client.force_login(former_owner_pm)
    response = client.post(item_url(item, "assign"), assign_data(item, cast.delivery_lead))
    assert response.status_code == 403
    assert snapshot(item) == before
    body = client.get(review_url(item.review)).content.decode()
    assert "/assign/" not in body
    assert "You have held a stake in this initiative since this review opened" in body


@pytest.mark.parametrize("transition", [T.PASS_REVIEW, T.FAIL_REVIEW])
def test_a_manager_who_owned_the_initiative_during_the_review_may_not_decide(
    client, initiative, complete, cast, former_owner_pm, transition
):
    with pytest.raises(PermissionDenied):
        decide(Initiative.objects.get(pk=initiative.pk), transition, former_owner_pm)
    client.force_login(former_owner_pm)
    response = client.post(
        decide_url(open_review(initiative), transition), decision_data(transition)
    )
    assert response.status_code == 403
    initiative.refresh_from_db()
    assert initiative.stage == Stage.READINESS_REVIEW
    # Someone without a stake still may.
    decide(initiative, transition, cast.pm)


def test_a_manager_who_owned_the_initiative_only_before_the_review_may_decide(
    initiative, complete, cast
):
    person = UserFactory(username="r-long-ago", role=Role.PROGRAMME_MANAGER)
    before = open_review(initiative).opened_at - timedelta(days=30)
    change_owner(initiative, "business_owner", person, by=cast.pm, at=before)
    change_owner(initiative, "business_owner", cast.business_owner, by=cast.pm, at=before)
    initiative = Initiative.objects.get(pk=initiative.pk)
    assert may_decide_review(initiative, person)
    decide(initiative, T.PASS_REVIEW, person)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.NARROW_LAUNCH


@pytest.mark.parametrize("action", ["assign", "decide"])
def test_a_manager_given_an_item_and_relieved_of_it_still_may_not_assign_or_decide(
    initiative, complete, cast, action
):
    services.assign(item=complete["security_access"], assignee=cast.pm2, user=cast.pm)
    services.assign(
        item=fresh(complete["security_access"]), assignee=cast.business_owner, user=cast.pm
    )
    initiative = Initiative.objects.get(pk=initiative.pk)
    with pytest.raises(PermissionDenied):
        if action == "assign":
            services.assign(
                item=fresh(complete["data_pipeline"]), assignee=cast.delivery_lead, user=cast.pm2
            )
        else:
            decide(initiative, T.PASS_REVIEW, cast.pm2)
    assert fresh(complete["data_pipeline"]).assignee == cast.delivery_lead


def test_an_owner_replaced_and_relieved_of_their_item_can_no_longer_check_it(
    client, initiative, items, cast
):
    change_owner(initiative, "delivery_lead", cast.other_owner, by=cast.pm)
    item = items["monitoring_alerting"]
    services.assign(item=item, assignee=cast.other_owner, user=cast.pm)
    before = snapshot(item)
    with pytest.raises(PermissionDenied):
        check(fresh(item), cast.delivery_lead)
    client.force_login(cast.delivery_lead)
    assert client.post(item_url(item, "check"), check_data(item)).status_code == 403
    assert snapshot(item) == before
    # The new holder checks it.
    check(fresh(item), cast.other_owner)
    assert fresh(item).checked


def test_an_owner_replaced_but_still_holding_their_item_checks_it(initiative, items, cast):
    # Holding the item is what lets a person check it; the owner field is not.
    change_owner(initiative, "delivery_lead", cast.other_owner, by=cast.pm)
    check(fresh(items["monitoring_alerting"]), cast.delivery_lead)
    assert fresh(items["monitoring_alerting"]).checked


def test_my_work_offers_no_mark_done_to_a_viewer_holding_work(client, work_item, cast):
    PreLaunchWorkItem.objects.filter(pk=work_item.pk).update(assignee=cast.viewer)
    client.force_login(cast.viewer)
    body = client.get("/my-work/").content.decode()
    assert work_item.title in body
    assert f"/work-items/{work_item.pk}/done/" not in body
    client.force_login(cast.delivery_lead)
    PreLaunchWorkItem.objects.filter(pk=work_item.pk).update(assignee=cast.delivery_lead)
    assert f"/work-items/{work_item.pk}/done/" in client.get("/my-work/").content.decode()


def test_open_work_items_cannot_be_edited_or_deleted_in_the_admin(admin_client, work_item):
    # Gate 4 waits for open work: the admin must not unblock it without a trace.
    url = f"/admin/readiness/prelaunchworkitem/{work_item.pk}/"
    assert admin_client.post(url + "delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(url + "change/", {"status": "done"}).status_code == 403
    work_item.refresh_from_db()
    assert work_item.status == WorkStatus.OPEN


def test_overdue_work_is_said_in_words_not_colour_alone(client, work_item, cast):
    PreLaunchWorkItem.objects.filter(pk=work_item.pk).update(
        due_date=timezone.localdate() - timedelta(days=9)
    )
    client.force_login(work_item.assignee)
    body = client.get("/my-work/").content.decode()
    assert "overdue by 1\xa0week, 2\xa0days" in body
