"""No review gets stuck: who may decide it, assignments that would leave nobody, unassigning.

Segregation of duties is judged over time: a programme manager who owned the initiative,
was named in an owner field or was given an item at any time since the review opened may
not decide it, even after the stake is gone. So assigning an item to a programme manager
takes away their right to decide for good; Gantry says who is left, refuses to leave
nobody unless the person assigning confirms it, and the review page always says who may
decide and, when nobody may, what to do.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gates.stages import Stage
from gates.stages import Transition as T
from portfolio.models import Initiative, User
from portfolio.permissions import may_decide_review
from portfolio.roles import Role
from readiness import queries, services
from readiness.models import ItemAction, ReviewItemEvent
from tests.factories import UserFactory
from tests.readiness.helpers import (
    change_owner,
    check,
    decide,
    decide_url,
    fresh,
    item_url,
    items_of,
    open_review,
    review_url,
    snapshot,
    submit_for_review,
)

pytestmark = pytest.mark.django_db

NOBODY = "Nobody may decide this review."
ADMINISTRATOR = "an administrator adds a programme manager with no stake in this initiative"


def names_of(people) -> list[str]:
    return [str(p) for p in people]


def assign_data(item, assignee, **extra) -> dict:
    data = {
        f"a{item.pk}-assignee": "" if assignee is None else assignee.pk,
        f"a{item.pk}-version": fresh(item).version,
    }
    data.update({f"a{item.pk}-{k}": v for k, v in extra.items()})
    return data


def deciders_block(body: str) -> str:
    start = body.index('id="deciders"')
    return body[start : body.index("</div>", start)]


@pytest.fixture
def sole_pm(items, cast):
    """`pm` is the only programme manager: `pm2` has left (inactive)."""
    User.objects.filter(pk=cast.pm2.pk).update(is_active=False)
    return items


# eligible_deciders --------------------------------------------------------------------------
def test_both_stakeless_programme_managers_may_decide_a_fresh_review(items, initiative, cast):
    assert names_of(queries.eligible_deciders(initiative)) == ["Priya Menon", "Tomas Novak"]


def _stake(kind: str, initiative, items, cast):
    """Give `pm2` the stake `kind` in the open review (or, for the last three, none)."""
    review = open_review(initiative)
    if kind == "owner_now":
        change_owner(initiative, "business_owner", cast.pm2, by=cast.pm)
    elif kind == "assignee_now":
        services.assign(item=items["data_pipeline"], assignee=cast.pm2, user=cast.pm)
    elif kind == "assigned_then_unassigned":
        services.assign(item=items["data_pipeline"], assignee=cast.pm2, user=cast.pm)
        services.unassign(item=fresh(items["data_pipeline"]), user=cast.pm)
    elif kind == "owner_since_opening_then_replaced":
        change_owner(initiative, "delivery_lead", cast.pm2, by=cast.pm)
        change_owner(initiative, "delivery_lead", cast.delivery_lead, by=cast.pm)
    elif kind == "named_as_previous_owner_since_opening":
        # Recorded as the old value of a change made during the review.
        change_owner(initiative, "operational_owner", cast.pm2, by=cast.pm, at=review.opened_at)
        change_owner(initiative, "operational_owner", cast.operational_owner, by=cast.pm)
    elif kind == "owner_before_the_review_opened":
        before = review.opened_at - timedelta(days=3)
        change_owner(initiative, "business_owner", cast.pm2, by=cast.pm, at=before)
        change_owner(initiative, "business_owner", cast.business_owner, by=cast.pm, at=before)
    elif kind == "held_an_item_of_a_failed_review":
        pass  # see test_items_held_in_a_failed_review_do_not_bar_deciding_the_next
    elif kind == "sponsor":
        change_owner(initiative, "sponsor", cast.pm2, by=cast.pm)


STAKES = [
    "owner_now",
    "assignee_now",
    "assigned_then_unassigned",
    "owner_since_opening_then_replaced",
    "named_as_previous_owner_since_opening",
]
NO_STAKES = ["owner_before_the_review_opened", "sponsor"]


@pytest.mark.parametrize("kind", STAKES + NO_STAKES)
def test_eligible_deciders_agree_with_may_decide_review(items, initiative, cast, kind):
    _stake(kind, initiative, items, cast)
    initiative = Initiative.objects.get(pk=initiative.pk)
    inactive = UserFactory(username="r-gone", role=Role.PROGRAMME_MANAGER, is_active=False)
    everyone = [*vars(cast).values(), inactive]

    eligible = queries.eligible_deciders(initiative)

    assert {p.pk for p in eligible} == {p.pk for p in everyone if may_decide_review(initiative, p)}
    assert (cast.pm2 in eligible) == (kind in NO_STAKES)
    assert cast.pm in eligible


def test_eligible_deciders_takes_the_same_queries_for_one_manager_or_many(items, initiative, cast):
    def count() -> int:
        fresh_initiative = Initiative.objects.get(pk=initiative.pk)
        with CaptureQueriesContext(connection) as captured:
            queries.eligible_deciders(fresh_initiative)
        return len(captured.captured_queries)

    few = count()
    for n in range(8):
        person = UserFactory(username=f"r-more-pm-{n}", role=Role.PROGRAMME_MANAGER)
        if n % 3 == 0:
            services.assign(item=fresh(items["security_access"]), assignee=person, user=cast.pm)
        elif n % 3 == 1:
            change_owner(initiative, "business_owner", person, by=cast.pm)
    assert len(queries.eligible_deciders(initiative)) == 2 + 2
    assert count() == few == 2
    review = open_review(initiative)
    with CaptureQueriesContext(connection) as captured:
        queries.eligible_deciders(initiative, review=review)
    assert len(captured.captured_queries) == 1


# Assigning: the warning and the confirmation ------------------------------------------------
def test_assigning_someone_who_could_not_decide_anyway_warns_of_nothing(items, cast):
    warning = services.assign(
        item=items["data_pipeline"], assignee=cast.business_owner, user=cast.pm
    )
    assert warning is None


def test_assigning_a_programme_manager_who_may_decide_says_who_remains(items, initiative, cast):
    warning = services.assign(item=items["data_pipeline"], assignee=cast.pm2, user=cast.pm)
    assert "Tomas Novak would hold a stake in this review and could no longer decide it" in warning
    assert "After this, only Priya Menon may decide this review." in warning
    assert fresh(items["data_pipeline"]).assignee == cast.pm2
    assert names_of(queries.eligible_deciders(initiative)) == ["Priya Menon"]


def test_the_warning_names_every_manager_who_remains(items, cast):
    UserFactory(username="r-pm3", first_name="Li", last_name="Wei", role=Role.PROGRAMME_MANAGER)
    warning = services.assign(item=items["data_pipeline"], assignee=cast.pm, user=cast.pm)
    assert "After this, Li Wei and Tomas Novak may decide this review." in warning


def test_the_only_manager_assigning_himself_is_refused_until_he_confirms(sole_pm, initiative, cast):
    item = sole_pm["monitoring_alerting"]
    before = snapshot(item)

    with pytest.raises(services.NobodyLeftToDecide) as exc:
        services.assign(item=item, assignee=cast.pm, user=cast.pm)
    message = " ".join(exc.value.messages)
    assert "After this, nobody may decide this review" in message
    assert "Priya Menon would hold a stake" in message
    assert "an administrator would have to add one" in message
    assert snapshot(item) == before

    warning = services.assign(item=fresh(item), assignee=cast.pm, user=cast.pm, confirm=True)
    assert "After this, nobody may decide this review" in warning
    assert fresh(item).assignee == cast.pm
    assert queries.eligible_deciders(initiative) == []
    assert not may_decide_review(Initiative.objects.get(pk=initiative.pk), cast.pm)


def test_assigning_the_last_managers_colleague_is_refused_the_same_way(items, initiative, cast):
    # pm2 already holds an item; giving pm one as well would leave nobody.
    services.assign(item=items["data_pipeline"], assignee=cast.pm2, user=cast.pm)
    with pytest.raises(services.NobodyLeftToDecide):
        services.assign(item=fresh(items["security_access"]), assignee=cast.pm, user=cast.pm)
    assert fresh(items["security_access"]).assignee == cast.business_owner


def test_after_confirming_his_own_assignment_the_manager_assigns_nothing_more(sole_pm, cast):
    # He holds a stake now: the review waits for a programme manager who holds none.
    item = sole_pm["monitoring_alerting"]
    services.assign(item=item, assignee=cast.pm, user=cast.pm, confirm=True)
    with pytest.raises(PermissionDenied):
        services.assign(item=fresh(item), assignee=cast.delivery_lead, user=cast.pm)


def test_the_page_asks_to_confirm_an_assignment_that_leaves_nobody_to_decide(
    client, sole_pm, initiative, cast
):
    item = sole_pm["monitoring_alerting"]
    before = snapshot(item)
    client.force_login(cast.pm)

    response = client.post(item_url(item, "assign"), assign_data(item, cast.pm))

    assert response.status_code == 400
    body = response.content.decode()
    assert "After this, nobody may decide this review" in body
    assert f'name="a{item.pk}-confirm" value="1"' in body
    assert "Assign anyway" in body
    assert f'name="a{item.pk}-assignee" value="{cast.pm.pk}"' in body
    assert snapshot(item) == before

    response = client.post(item_url(item, "assign"), assign_data(item, cast.pm, confirm="1"))

    assert response.status_code == 302
    assert response["Location"] == f"{review_url(item.review)}#item-{item.pk}"
    assert fresh(item).assignee == cast.pm
    body = client.get(response["Location"]).content.decode()
    assert "After this, nobody may decide this review" in body  # the warning, once more
    assert NOBODY in body
    assert "/assign/" not in body and "/decide/" not in body


def test_the_page_assigns_with_a_warning_when_someone_remains(client, items, cast):
    item = items["data_pipeline"]
    client.force_login(cast.pm)
    response = client.post(item_url(item, "assign"), assign_data(item, cast.pm2), follow=True)
    body = response.content.decode()
    assert "“Data pipeline reliability” assigned to Tomas Novak." in body
    assert "After this, only Priya Menon may decide this review." in body
    assert 'class="msg msg-warning"' in body


# Unassigning and reassigning ----------------------------------------------------------------
def test_unassigning_records_who_held_the_item_and_frees_it(items, cast):
    item = items["failure_fallback"]
    note = services.unassign(item=item, user=cast.pm)
    assert note is None
    row = fresh(item)
    assert row.assignee is None
    event = row.events.order_by("-id").first()
    assert (event.action, event.user, event.previous_assignee, event.assignee) == (
        ItemAction.UNASSIGNED,
        cast.pm,
        cast.operational_owner,
        None,
    )
    services.assign(item=row, assignee=cast.delivery_lead, user=cast.pm)
    assert fresh(item).assignee == cast.delivery_lead


def test_unassigning_a_manager_says_the_stake_remains(items, initiative, cast):
    services.assign(item=items["data_pipeline"], assignee=cast.pm2, user=cast.pm)
    note = services.unassign(item=fresh(items["data_pipeline"]), user=cast.pm)
    assert note == (
        "Tomas Novak held this item while the review was open, so still may not decide it."
    )
    assert not may_decide_review(Initiative.objects.get(pk=initiative.pk), cast.pm2)
    assert names_of(queries.eligible_deciders(initiative)) == ["Priya Menon"]


def test_an_item_nobody_holds_cannot_be_unassigned(review, cast):
    item = items_of(review)["data_pipeline"]
    with pytest.raises(ValidationError, match="not assigned"):
        services.unassign(item=item, user=cast.pm)
    assert not ReviewItemEvent.objects.filter(item=item).exists()


@pytest.mark.parametrize("who", ["pm_with_item", "delivery_lead", "executive", "viewer"])
def test_only_a_stakeless_manager_unassigns(items, cast, who):
    if who == "pm_with_item":
        services.assign(item=items["security_access"], assignee=cast.pm2, user=cast.pm)
        user = cast.pm2
    else:
        user = getattr(cast, who)
    item = fresh(items["data_pipeline"])
    before = snapshot(item)
    with pytest.raises(PermissionDenied):
        services.unassign(item=item, user=user)
    assert snapshot(item) == before


def test_the_former_assignee_can_no_longer_check_the_item(items, cast):
    item = items["data_pipeline"]
    services.unassign(item=item, user=cast.pm)
    with pytest.raises(PermissionDenied):
        check(fresh(item), cast.delivery_lead)


def test_the_page_unassigns_and_shows_it_plainly_in_the_history(client, items, cast):
    item = items["failure_fallback"]
    client.force_login(cast.pm)
    body = client.get(review_url(item.review)).content.decode()
    assert "Unassign Olu Adeyemi" in body

    response = client.post(item_url(item, "assign"), assign_data(item, None))
    assert response.status_code == 302
    assert fresh(item).assignee is None
    response = client.post(item_url(item, "assign"), assign_data(item, cast.delivery_lead))
    assert response.status_code == 302
    services.assign(item=fresh(item), assignee=cast.business_owner, user=cast.pm)

    body = client.get(review_url(item.review)).content.decode()
    start = body.index(f'id="item-{item.pk}"')
    history = body[start : body.index("</details>", body.index("History (", start))]
    assert "Assigned by Priya Menon to Olu Adeyemi" in history
    assert "Unassigned from Olu Adeyemi by Priya Menon" in history
    assert "Assigned by Priya Menon to Grace Hopper" in history
    assert "Reassigned by Priya Menon from Grace Hopper to Ada Lovelace" in history


def test_unassigning_an_unassigned_item_from_the_page_answers_400(client, review, cast):
    item = items_of(review)["data_pipeline"]
    client.force_login(cast.pm)
    response = client.post(item_url(item, "assign"), assign_data(item, None))
    assert response.status_code == 400
    assert "not assigned" in response.content.decode()


# The review page says who may decide --------------------------------------------------------
@pytest.mark.parametrize("who", ["viewer", "delivery_lead", "pm", "executive"])
def test_the_review_page_names_who_may_decide(client, items, cast, who):
    client.force_login(getattr(cast, who))
    body = client.get(review_url(items["data_pipeline"].review)).content.decode()
    block = deciders_block(body)
    assert "May decide it now: <strong>Priya Menon and Tomas Novak</strong>." in block


def test_the_review_page_drops_a_manager_once_given_an_item(client, items, cast):
    services.assign(item=items["data_pipeline"], assignee=cast.pm2, user=cast.pm)
    client.force_login(cast.pm2)
    body = client.get(review_url(items["data_pipeline"].review)).content.decode()
    block = deciders_block(body)
    assert "May decide it now: <strong>Priya Menon</strong>." in block
    assert "You have held a stake in this initiative since this review opened" in block


@pytest.mark.parametrize("who", ["viewer", "pm", "delivery_lead"])
def test_the_review_page_says_when_nobody_may_decide_and_what_to_do(client, sole_pm, cast, who):
    services.assign(
        item=sole_pm["monitoring_alerting"], assignee=cast.pm, user=cast.pm, confirm=True
    )
    client.force_login(getattr(cast, who))
    body = client.get(review_url(sole_pm["data_pipeline"].review)).content.decode()
    block = deciders_block(body)
    assert NOBODY in block
    assert ADMINISTRATOR in block
    assert "May decide it now" not in block


def test_a_new_stakeless_manager_unsticks_the_review(client, sole_pm, initiative, cast):
    services.assign(
        item=sole_pm["monitoring_alerting"], assignee=cast.pm, user=cast.pm, confirm=True
    )
    rescuer = UserFactory(
        username="r-rescue", first_name="Noor", last_name="Haddad", role=Role.PROGRAMME_MANAGER
    )
    assert names_of(queries.eligible_deciders(initiative)) == ["Noor Haddad"]
    client.force_login(rescuer)
    response = client.post(
        item_url(sole_pm["monitoring_alerting"], "assign"),
        assign_data(sole_pm["monitoring_alerting"], cast.delivery_lead),
    )
    assert response.status_code == 302
    response = client.post(
        decide_url(open_review(initiative), T.FAIL_REVIEW),
        {
            "fail_review-rationale": "Nothing is checked yet.",
            "fail_review-expected_stage": Stage.READINESS_REVIEW,
        },
    )
    assert response.status_code == 302
    initiative.refresh_from_db()
    assert initiative.stage == Stage.THIN_SLICE


def test_a_decided_review_does_not_say_who_may_decide(client, initiative, items, cast):
    review = items["data_pipeline"].review
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    client.force_login(cast.viewer)
    body = client.get(review_url(review)).content.decode()
    assert 'id="deciders"' not in body
    assert 'id="ownership-changes"' not in body


# Ownership changes during the review --------------------------------------------------------
def test_the_review_page_shows_owner_changes_since_it_opened_with_names(
    client, initiative, items, cast
):
    review = open_review(initiative)
    change_owner(
        initiative,
        "business_owner",
        cast.other_owner,
        by=cast.pm2,
        at=review.opened_at - timedelta(hours=1),
        reason="Before the review.",
    )
    change_owner(
        initiative, "delivery_lead", cast.pm2, by=cast.pm, reason="Tomas takes over delivery."
    )
    change_owner(initiative, "operational_owner", None, by=cast.pm)
    # Not an owner field: the sponsor holds no stake and is not listed.
    change_owner(initiative, "sponsor", cast.executive, by=cast.pm)
    client.force_login(cast.viewer)

    body = client.get(review_url(review)).content.decode()

    start = body.index('id="ownership-changes"')
    section = body[start : body.index("</section>", start)]
    assert "Delivery lead: Grace Hopper → Tomas Novak, changed by Priya Menon" in section
    assert "(“Tomas takes over delivery.”)" in section
    assert "Operational owner: Olu Adeyemi → nobody, changed by Priya Menon" in section
    assert "Before the review." not in section
    assert "Sponsor" not in section
    assert section.index("Delivery lead") < section.index("Operational owner")
    # Tomas was named during the review: he may no longer decide it.
    assert "May decide it now: <strong>Priya Menon</strong>." in deciders_block(body)


def test_the_review_page_says_when_no_owner_changed(client, items, cast):
    client.force_login(cast.viewer)
    body = client.get(review_url(items["data_pipeline"].review)).content.decode()
    assert "No owner has changed since the review opened." in body


def _page_queries(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("who", ["pm", "viewer"])
def test_review_page_queries_do_not_grow_with_owner_changes_or_managers(
    client, initiative, items, cast, who
):
    change_owner(initiative, "delivery_lead", cast.other_owner, by=cast.pm)
    url = review_url(open_review(initiative))
    client.force_login(getattr(cast, who))
    few = _page_queries(client, url)

    people = [cast.delivery_lead, cast.business_owner, cast.other_owner, cast.operational_owner]
    for n in range(6):
        change_owner(initiative, "delivery_lead", people[n % len(people)], by=cast.pm2)
        UserFactory(username=f"r-extra-pm-{n}", role=Role.PROGRAMME_MANAGER)
    assert _page_queries(client, url) == few


def test_an_old_review_page_of_a_resubmitted_initiative_needs_no_deciders(
    client, initiative, items, cast
):
    first = items["data_pipeline"].review
    decide(initiative, T.FAIL_REVIEW, cast.pm)
    submit_for_review(initiative, user=cast.pm)
    client.force_login(cast.viewer)
    body = client.get(review_url(first)).content.decode()
    assert 'id="deciders"' not in body
