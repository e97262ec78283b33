"""Several items of a review given to one person in one form: every item or, on any
refusal, none; the same rules as assigning one item, read once under the same locks."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from portfolio.models import User
from readiness import services
from readiness.models import ItemAction, ReviewItemEvent
from tests.readiness.helpers import check, fresh, items_of, review_url, snapshot

pytestmark = pytest.mark.django_db


def url(review) -> str:
    return f"{review_url(review)}assign/"


def post_data(items, assignee, **extra) -> dict:
    data = {
        "many-items": [f"{item.pk}:{fresh(item).version}" for item in items],
        "many-assignee": "" if assignee is None else assignee.pk,
    }
    data.update({f"many-{key}": value for key, value in extra.items()})
    return data


def state(review) -> list[dict]:
    return [snapshot(item) for item in items_of(review).values()]


def test_one_post_assigns_every_chosen_item_with_an_event_each(client, review, cast):
    chosen = list(items_of(review).values())[:4]
    client.force_login(cast.pm)

    response = client.post(url(review), post_data(chosen, cast.delivery_lead))

    assert response.status_code == 302
    assert response["Location"] == f"{review_url(review)}#assign-many"
    assert [fresh(item).assignee for item in chosen] == [cast.delivery_lead] * 4
    events = ReviewItemEvent.objects.filter(item__in=chosen, action=ItemAction.ASSIGNED)
    assert events.count() == 4
    assert {e.user for e in events} == {cast.pm}
    body = client.get(response["Location"]).content.decode()
    assert "4 items assigned to Grace Hopper." in body


def test_the_review_page_offers_the_items_still_to_check(client, review, cast):
    first, *rest = items_of(review).values()
    check(services_assign(first, cast.delivery_lead, cast.pm), cast.delivery_lead)
    client.force_login(cast.pm)
    body = client.get(review_url(review)).content.decode()
    assert 'id="assign-many"' in body
    assert f'value="{first.pk}:' not in body  # checked: nothing to assign
    for item in rest:
        assert f'value="{item.pk}:{fresh(item).version}"' in body


def services_assign(item, assignee, user):
    services.assign(item=item, assignee=assignee, user=user)
    return fresh(item)


@pytest.mark.parametrize("who", ["executive", "business_owner", "viewer", "delivery_lead"])
def test_only_a_stakeless_programme_manager_assigns_several(client, review, cast, who):
    before = state(review)
    client.force_login(getattr(cast, who))
    response = client.post(url(review), post_data(items_of(review).values(), cast.pm2))
    assert response.status_code == 403
    assert state(review) == before
    # Nor is the form shown to them.
    assert 'id="assign-many"' not in client.get(review_url(review)).content.decode()


def test_an_item_changed_meanwhile_refuses_the_whole_assignment(client, review, cast):
    first, second, third = list(items_of(review).values())[:3]
    data = post_data([first, second, third], cast.delivery_lead)
    services.assign(item=second, assignee=cast.operational_owner, user=cast.pm2)  # meanwhile
    before = state(review)
    client.force_login(cast.pm)

    response = client.post(url(review), data)

    assert response.status_code == 409
    assert state(review) == before
    assert fresh(first).assignee is None


def test_choosing_nothing_or_nobody_names_the_field_and_changes_nothing(client, review, cast):
    before = state(review)
    client.force_login(cast.pm)
    response = client.post(url(review), post_data([], cast.delivery_lead))
    assert response.status_code == 400
    assert "Choose at least one item to assign." in response.content.decode()
    response = client.post(url(review), post_data(items_of(review).values(), None))
    assert response.status_code == 400
    assert "Choose the person to give the items to." in response.content.decode()
    assert state(review) == before


def test_a_person_who_cannot_hold_items_is_refused_by_name(client, review, cast):
    before = state(review)
    client.force_login(cast.pm)
    response = client.post(url(review), post_data(items_of(review).values(), cast.viewer))
    assert response.status_code == 400
    assert state(review) == before


def test_the_service_refuses_a_viewer_and_an_item_of_another_review(review, initiative, cast):
    items = list(items_of(review).values())
    with pytest.raises(ValidationError, match="viewer"):
        services.assign_many(
            review=review,
            versions={i.pk: i.version for i in items},
            assignee=cast.viewer,
            user=cast.pm,
        )
    with pytest.raises(ValidationError, match="not part of this review"):
        services.assign_many(
            review=review,
            versions={items[0].pk: items[0].version, 10**9: 1},
            assignee=cast.delivery_lead,
            user=cast.pm,
        )
    with pytest.raises(PermissionDenied):
        services.assign_many(
            review=review,
            versions={items[0].pk: items[0].version},
            assignee=cast.delivery_lead,
            user=cast.executive,
        )
    assert all(fresh(item).assignee is None for item in items)


def test_leaving_nobody_to_decide_asks_to_confirm_then_assigns_all(client, review, cast):
    User.objects.filter(pk=cast.pm2.pk).update(is_active=False)  # pm is the only manager left
    chosen = list(items_of(review).values())[:2]
    before = state(review)
    client.force_login(cast.pm)

    response = client.post(url(review), post_data(chosen, cast.pm))

    assert response.status_code == 400
    body = response.content.decode()
    assert "After this, nobody may decide this review" in body
    assert 'name="many-confirm" value="1"' in body
    assert state(review) == before

    response = client.post(url(review), post_data(chosen, cast.pm, confirm="1"))
    assert response.status_code == 302
    assert [fresh(item).assignee for item in chosen] == [cast.pm, cast.pm]


def test_items_already_held_by_the_assignee_are_left_as_they_are(review, cast):
    first, second = list(items_of(review).values())[:2]
    first = services_assign(first, cast.delivery_lead, cast.pm)
    services.assign_many(
        review=review,
        versions={first.pk: first.version, second.pk: fresh(second).version},
        assignee=cast.delivery_lead,
        user=cast.pm,
    )
    assert fresh(first).version == first.version  # untouched
    assert ReviewItemEvent.objects.filter(item=first).count() == 1
    assert fresh(second).assignee == cast.delivery_lead


def test_a_get_of_the_action_goes_back_to_the_form(client, review, cast):
    client.force_login(cast.pm)
    response = client.get(url(review))
    assert response.status_code == 302
    assert response["Location"] == f"{review_url(review)}#assign-many"
