"""The role bounds every power, whatever field names a person; stakes are judged over time.

Rows the permission matrix lacked: a viewer named as owner, an executive named as owner,
an owner after losing the stake, and a programme manager who stepped out of ownership to
decide a review.
"""

import pytest
from django.core.exceptions import PermissionDenied

from gates import services
from gates.stages import Stage, StopReason
from gates.stages import Transition as T
from portfolio import permissions
from portfolio import services as portfolio_services
from portfolio.roles import Role
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance, criteria_passing

pytestmark = pytest.mark.django_db

EVERY = [t for t in T if t != T.REFRAME]


def _decide(initiative, transition, user):
    return services.decide(
        initiative=initiative,
        transition=transition,
        user=user,
        rationale="Tried.",
        stop_reason=StopReason.OTHER if transition == T.STOP else "",
    )


@pytest.fixture
def viewer_owned(viewer):
    """An initiative whose every owner field names a viewer (named before a role change)."""
    return InitiativeFactory(
        framed=True, business_owner=viewer, delivery_lead=viewer, operational_owner=viewer
    )


@pytest.mark.parametrize("transition", EVERY, ids=[t.value for t in EVERY])
def test_a_viewer_named_as_owner_may_take_no_transition(viewer_owned, viewer, transition):
    assert not services.may_take(viewer_owned, transition, viewer)


def test_a_viewer_named_as_owner_cannot_submit_even_in_thin_slice(viewer_owned, viewer, manager):
    advance(viewer_owned, Stage.THIN_SLICE, user=manager)
    with criteria_passing(), pytest.raises(PermissionDenied):
        _decide(viewer_owned, T.SUBMIT_FOR_REVIEW, viewer)
    viewer_owned.refresh_from_db()
    assert viewer_owned.stage == Stage.THIN_SLICE


@pytest.mark.parametrize(
    "helper",
    [
        permissions.may_edit_framing,
        permissions.may_manage_feeds,
        permissions.may_submit_for_review,
        permissions.may_propose_reframe,
        permissions.may_change_owners,
        permissions.may_reframe,
        permissions.may_decide_review,
    ],
    ids=lambda f: f.__name__,
)
def test_no_permission_helper_lets_a_viewer_named_as_owner_write(viewer_owned, viewer, helper):
    assert not helper(viewer_owned, viewer)


@pytest.mark.parametrize(
    "path", ["edit/", "feeds/new/", "upload/", "propose/", "reframe/"], ids=lambda p: p
)
def test_a_viewer_named_as_owner_gets_403_on_every_write_page(client, viewer_owned, viewer, path):
    client.force_login(viewer)
    assert client.get(f"/initiatives/{viewer_owned.slug}/{path}").status_code == 403
    assert client.post(f"/initiatives/{viewer_owned.slug}/{path}", {}).status_code == 403


def test_an_executive_named_as_owner_gains_no_owner_power(executive, manager):
    initiative = InitiativeFactory(framed=True, delivery_lead=executive)
    advance(initiative, Stage.THIN_SLICE, user=manager)
    assert not permissions.may_submit_for_review(initiative, executive)
    assert not permissions.may_edit_framing(initiative, executive)
    assert not permissions.may_manage_feeds(initiative, executive)
    # ...and keeps the executive's own powers.
    assert permissions.executive_or_manager(initiative, executive)


def test_an_owner_after_losing_the_stake_loses_the_owners_powers(client, manager, framing_data):
    initiative = InitiativeFactory(framed=True)
    former = initiative.business_owner
    advance(initiative, Stage.THIN_SLICE, user=manager)
    assert permissions.may_submit_for_review(initiative, former)
    successor = UserFactory(role=Role.OWNER)
    client.force_login(manager)
    data = framing_data(initiative, business_owner=successor.pk, reason="Moved teams.")
    assert client.post(f"/initiatives/{initiative.slug}/edit/", data).status_code == 302
    initiative.refresh_from_db()

    assert not permissions.may_submit_for_review(initiative, former)
    assert not permissions.may_edit_framing(initiative, former)
    client.force_login(former)
    assert client.get(f"/initiatives/{initiative.slug}/edit/").status_code == 403
    with criteria_passing(), pytest.raises(PermissionDenied):
        _decide(initiative, T.SUBMIT_FOR_REVIEW, former)


# Segregation of duties over time ----------------------------------------------------------
@pytest.fixture
def in_review(manager):
    pm_owner = UserFactory(username="pm-owner", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True, business_owner=pm_owner)
    advance(initiative, Stage.READINESS_REVIEW, user=manager)
    return initiative, pm_owner


def _set_owner(initiative, field, person, *, by):
    """A programme manager changes one owner field through the framing service."""
    from metrics.forms import PrimaryMetricForm
    from portfolio.forms import InitiativeForm

    data = {}
    for name in portfolio_services.INITIATIVE_FIELDS:
        value = (
            getattr(initiative, f"{name}_id", None)
            if name in ("business_unit", *portfolio_services.PEOPLE_FIELDS)
            else getattr(initiative, name)
        )
        data[name] = "" if value is None else value
    data[field] = person.pk if person else ""
    form = InitiativeForm(data, instance=initiative)
    metric = initiative.primary_metric
    metric_form = PrimaryMetricForm(
        {f"metric-{f}": str(getattr(metric, f)) for f in portfolio_services.METRIC_FIELDS},
        instance=metric,
        prefix="metric",
        frozen=True,
    )
    assert form.is_valid() and metric_form.is_valid(), (form.errors, metric_form.errors)
    portfolio_services.save_framing(
        initiative_form=form, metric_form=metric_form, user=by, reason="Ownership change."
    )
    initiative.refresh_from_db()


def test_a_manager_who_steps_out_of_ownership_still_may_not_decide_the_review(in_review):
    initiative, pm_owner = in_review
    assert not permissions.may_decide_review(initiative, pm_owner)
    # He removes himself as business owner (recorded), intending to decide and step back in.
    _set_owner(initiative, "business_owner", None, by=pm_owner)
    assert initiative.business_owner is None
    assert not permissions.may_decide_review(initiative, pm_owner)
    with criteria_passing(), pytest.raises(PermissionDenied):
        _decide(initiative, T.PASS_REVIEW, pm_owner)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.READINESS_REVIEW
    # The step out is on the record.
    assert initiative.framing_changes.filter(
        field="business_owner", old_value=str(pm_owner.pk), new_value=""
    ).exists()


def test_a_manager_named_owner_during_the_review_is_out_for_that_review(in_review, manager):
    initiative, _ = in_review
    other_pm = UserFactory(username="pm-two", role=Role.PROGRAMME_MANAGER)
    assert permissions.may_decide_review(initiative, other_pm)
    _set_owner(initiative, "delivery_lead", other_pm, by=manager)
    _set_owner(initiative, "delivery_lead", None, by=manager)
    assert not permissions.may_decide_review(initiative, other_pm)


def test_a_stake_held_before_the_review_opened_does_not_count(manager):
    pm = UserFactory(username="pm-earlier", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True, delivery_lead=pm)
    advance(initiative, Stage.THIN_SLICE, user=manager)
    _set_owner(initiative, "delivery_lead", None, by=manager)
    advance(initiative, Stage.READINESS_REVIEW, user=manager)
    assert permissions.may_decide_review(initiative, pm)


@pytest.mark.parametrize("action", ["rotate", "pause", "retire", "resume"])
def test_a_viewer_named_as_owner_cannot_touch_a_feed_or_its_token(
    client, viewer_owned, viewer, action
):
    from tests.factories import DataFeedFactory

    feed = DataFeedFactory(initiative=viewer_owned, owner=viewer)
    before = (feed.token_hash, feed.status)
    client.force_login(viewer)
    url = f"/initiatives/{viewer_owned.slug}/feeds/{feed.pk}/{action}/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"reason": "Mine now."}).status_code == 403
    feed.refresh_from_db()
    assert (feed.token_hash, feed.status) == before
    assert not feed.events.exists()
