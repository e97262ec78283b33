"""Feed pages: creating a feed shows its token once; rotating replaces it; who may do either.

Both POSTs redirect to a token page that shows the token once (handed over in the session):
reloading it shows it no more, and no page re-posts on reload.
"""

import hashlib

import pytest
from django.core.exceptions import PermissionDenied

from metrics import services
from metrics.models import DataFeed, FeedKind
from portfolio.roles import Role
from tests.factories import DataFeedFactory, InitiativeFactory, UserFactory
from tests.metrics.helpers import API, item

pytestmark = pytest.mark.django_db


@pytest.fixture
def initiative(db):
    """A framed initiative with all three owners named."""
    return InitiativeFactory(framed=True, operational_owner=UserFactory(role=Role.OWNER))


@pytest.fixture
def outsider(owner):
    """An owner, but of another initiative."""
    InitiativeFactory(framed=True, business_owner=owner)
    return owner


def new_url(initiative) -> str:
    return f"/initiatives/{initiative.slug}/feeds/new/"


def rotate_url(feed) -> str:
    return f"/initiatives/{feed.initiative.slug}/feeds/{feed.pk}/rotate/"


def feed_data(**overrides) -> dict:
    data = {"name": "Claims events", "kind": FeedKind.LIVE, "owner": "", "freshness_hours": "24"}
    data.update(overrides)
    return data


def token_url(feed) -> str:
    return f"/initiatives/{feed.initiative.slug}/feeds/{feed.pk}/token/"


def created(client, initiative, data):
    """POST the new-feed form and follow to the token page; that page's response."""
    response = client.post(new_url(initiative), data, follow=True)
    assert response.status_code == 200, response.content
    return response


def rotated(client, feed, **data):
    response = client.post(rotate_url(feed), data, follow=True)
    assert response.status_code == 200, response.content
    return response


def deliver(client, feed, token, metric):
    return client.post(
        API.format(feed.pk),
        data=[item(metric)],
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


# Creating a feed ---------------------------------------------------------------------------------
def test_the_new_feed_form_is_offered_to_a_manager(client, manager, initiative):
    client.force_login(manager)
    response = client.get(new_url(initiative))
    assert response.status_code == 200
    assert "Create feed and token" in response.content.decode()


def test_creating_a_feed_shows_its_token_once_and_stores_only_its_hash(client, manager, initiative):
    owner = initiative.delivery_lead
    client.force_login(manager)

    response = client.post(new_url(initiative), feed_data(owner=owner.pk, freshness_hours="6"))

    feed = DataFeed.objects.get(initiative=initiative)
    assert response.status_code == 302
    assert response["Location"] == token_url(feed)
    page = client.get(token_url(feed))
    assert page.status_code == 200
    assert page["Cache-Control"].startswith("max-age=0") and "no-store" in page["Cache-Control"]
    token = page.context["token"]
    assert token.startswith("gf_") and len(token) > 40
    body = page.content.decode()
    assert f'<pre class="token" id="token">{token}</pre>' in body
    assert "Gantry keeps only its hash and will not show it again" in body
    assert (feed.name, feed.kind, feed.owner, feed.freshness_hours) == (
        "Claims events",
        FeedKind.LIVE,
        owner,
        6,
    )
    assert f"/api/v1/feeds/{feed.pk}/observations" in body
    row = DataFeed.objects.filter(pk=feed.pk).values().get()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token in str(value) for value in row.values())


def test_reloading_the_token_page_does_not_show_the_token_again(client, manager, initiative):
    client.force_login(manager)
    token = created(client, initiative, feed_data()).context["token"]
    feed = DataFeed.objects.get(initiative=initiative)

    again = client.get(token_url(feed))

    assert again.status_code == 410
    body = again.content.decode()
    assert token not in body
    assert "The token was shown once and is no longer available" in body
    assert not any(token in str(value) for value in client.session.values())


def test_afterwards_the_initiative_page_shows_only_the_token_hint(client, manager, initiative):
    client.force_login(manager)
    token = created(client, initiative, feed_data()).context["token"]

    page = client.get(initiative.get_absolute_url()).content.decode()

    assert token not in page
    assert f"<code>{token[:10]}…</code>" in page
    assert "Claims events" in page


def test_the_token_from_the_page_opens_the_api(client, manager, initiative):
    client.force_login(manager)
    token = created(client, initiative, feed_data()).context["token"]
    feed = DataFeed.objects.get(initiative=initiative)
    client.logout()
    assert deliver(client, feed, token, initiative.primary_metric).status_code == 201


def test_a_one_off_extract_is_created_like_a_live_feed(client, manager, initiative):
    client.force_login(manager)
    response = client.post(new_url(initiative), feed_data(kind=FeedKind.ONE_OFF_EXTRACT))
    assert response.status_code == 302
    assert DataFeed.objects.get().kind == FeedKind.ONE_OFF_EXTRACT


@pytest.mark.parametrize(
    "name", ["Claims events", "claims events", "  CLAIMS EVENTS  "], ids=["same", "lower", "upper"]
)
def test_a_duplicate_feed_name_is_a_field_error(client, manager, initiative, name):
    client.force_login(manager)
    client.post(new_url(initiative), feed_data())

    response = client.post(new_url(initiative), feed_data(name=name))

    assert response.status_code == 400
    assert response.context["form"].errors["name"] == [
        "This initiative already has a feed of that name."
    ]
    assert "This initiative already has a feed of that name." in response.content.decode()
    assert DataFeed.objects.count() == 1


def test_another_initiative_may_use_the_same_feed_name(client, manager, initiative):
    client.force_login(manager)
    client.post(new_url(initiative), feed_data())
    other = InitiativeFactory()
    assert client.post(new_url(other), feed_data()).status_code == 302
    assert DataFeed.objects.count() == 2


BAD_FEEDS = {
    "no-name": ({"name": ""}, "name"),
    "blank-name": ({"name": "   "}, "name"),
    "unknown-kind": ({"kind": "spreadsheet"}, "kind"),
    "zero-hours": ({"freshness_hours": "0"}, "freshness_hours"),
    "negative-hours": ({"freshness_hours": "-5"}, "freshness_hours"),
    "over-ninety-days": ({"freshness_hours": str(24 * 90 + 1)}, "freshness_hours"),
    "hours-not-a-number": ({"freshness_hours": "daily"}, "freshness_hours"),
    "unknown-owner": ({"owner": "987654"}, "owner"),
}


@pytest.mark.parametrize(("changes", "field"), BAD_FEEDS.values(), ids=BAD_FEEDS.keys())
def test_a_bad_feed_form_names_the_field_and_creates_nothing(
    client, manager, initiative, changes, field
):
    client.force_login(manager)
    response = client.post(new_url(initiative), feed_data(**changes))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not DataFeed.objects.exists()


# Rotating the token ------------------------------------------------------------------------------
def test_rotating_shows_a_new_token_once_and_the_old_one_stops_working(
    client, manager, initiative, live
):
    feed, old_token = live
    client.force_login(manager)

    response = client.post(rotate_url(feed))

    assert response.status_code == 302
    assert response["Location"] == token_url(feed)
    page = client.get(token_url(feed))
    new_token = page.context["token"]
    assert new_token != old_token
    body = page.content.decode()
    assert new_token in body
    assert "The previous token no longer works." in body
    assert client.get(token_url(feed)).status_code == 410
    feed.refresh_from_db()
    assert feed.token_hash == hashlib.sha256(new_token.encode()).hexdigest()
    assert feed.token_hint == new_token[:10]
    client.logout()
    assert deliver(client, feed, old_token, initiative.primary_metric).status_code == 401
    assert deliver(client, feed, new_token, initiative.primary_metric).status_code == 201


def test_rotating_asks_for_confirmation_first_and_changes_nothing_on_get(client, manager, live):
    feed, token = live
    client.force_login(manager)

    response = client.get(rotate_url(feed))

    assert response.status_code == 200
    body = response.content.decode()
    assert "Rotate the token of Resolution events? The old token stops working at once." in body
    assert '<form method="post"' in body and "Rotate token</button>" in body
    assert DataFeed.objects.get(pk=feed.pk).token_hash == hashlib.sha256(token.encode()).hexdigest()


def test_rotating_records_who_and_why_in_the_feed_s_history(client, manager, live):
    feed = live[0]
    client.force_login(manager)
    rotated(client, feed, reason="The old token was pasted in a ticket.")
    event = feed.events.get(action="rotated")
    assert (event.by, event.reason) == (manager, "The old token was pasted in a ticket.")


def test_a_feed_of_another_initiative_cannot_be_rotated_through_this_one(
    client, manager, initiative, live
):
    feed = live[0]
    other = InitiativeFactory()
    client.force_login(manager)
    response = client.post(f"/initiatives/{other.slug}/feeds/{feed.pk}/rotate/")
    assert response.status_code == 404
    assert DataFeed.objects.get(pk=feed.pk).token_hash == feed.token_hash


# Who may manage feeds ----------------------------------------------------------------------------
MANAGERS = ["manager", "business_owner", "delivery_lead", "operational_owner"]
OTHERS = ["executive", "viewer", "outsider"]


def user(request, initiative, who):
    if who in ("business_owner", "delivery_lead", "operational_owner"):
        return getattr(initiative, who)
    return request.getfixturevalue(who)


@pytest.mark.parametrize("who", MANAGERS)
def test_the_programme_manager_and_this_initiative_s_owners_create_feeds_and_rotate_tokens(
    client, request, initiative, live, who
):
    feed = live[0]
    client.force_login(user(request, initiative, who))

    assert client.get(new_url(initiative)).status_code == 200
    assert client.post(new_url(initiative), feed_data(name=f"By {who}")).status_code == 302
    assert client.get(rotate_url(feed)).status_code == 200
    assert client.post(rotate_url(feed)).status_code == 302
    assert DataFeed.objects.filter(initiative=initiative).count() == 2
    page = client.get(initiative.get_absolute_url()).content.decode()
    assert "Add feed" in page and "Rotate token" in page


@pytest.mark.parametrize("who", OTHERS)
def test_others_get_403_and_nothing_changes(client, request, initiative, live, who):
    feed = live[0]
    hash_before = feed.token_hash
    client.force_login(user(request, initiative, who))

    assert client.get(new_url(initiative)).status_code == 403
    assert client.post(new_url(initiative), feed_data(name="Sneaky")).status_code == 403
    assert client.get(rotate_url(feed)).status_code == 403
    assert client.post(rotate_url(feed)).status_code == 403
    assert client.get(token_url(feed)).status_code == 403

    assert DataFeed.objects.count() == 1
    assert DataFeed.objects.get(pk=feed.pk).token_hash == hash_before
    page = client.get(initiative.get_absolute_url()).content.decode()
    assert "Add feed" not in page and "Rotate token" not in page
    assert feed.token_hint not in page


def test_anonymous_visitors_are_sent_to_the_login_page(client, initiative, live):
    feed = live[0]
    for response in (
        client.get(new_url(initiative)),
        client.post(new_url(initiative), feed_data(name="Sneaky")),
        client.post(rotate_url(feed)),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    assert DataFeed.objects.count() == 1


@pytest.mark.parametrize("who", OTHERS)
def test_the_services_refuse_others_too(request, initiative, live, who):
    someone = user(request, initiative, who)
    with pytest.raises(PermissionDenied):
        services.create_feed(
            initiative=initiative,
            user=someone,
            name="Sneaky",
            kind=FeedKind.LIVE,
            owner=None,
            freshness_hours=24,
        )
    with pytest.raises(PermissionDenied):
        services.rotate_token(feed=live[0], user=someone)
    assert DataFeed.objects.count() == 1


def test_a_factory_feed_is_opened_by_the_token_it_was_given(client, initiative, metric):
    feed = DataFeedFactory(initiative=initiative, token="gf_known-test-token")
    assert feed.token_hash == hashlib.sha256(b"gf_known-test-token").hexdigest()
    assert deliver(client, feed, "gf_known-test-token", metric).status_code == 201


def test_the_token_page_s_sample_uses_now_and_a_value_in_the_metric_s_unit(
    client, manager, initiative
):
    import html
    import json
    import re

    from django.utils import timezone

    client.force_login(manager)
    body = html.unescape(created(client, initiative, feed_data()).content.decode())
    batch = json.loads(re.search(r"-d '(\[.*?\])'", body).group(1))
    (sample,) = batch
    assert sample["metric"] == initiative.primary_metric.slug
    assert sample["value"] == float(initiative.primary_metric.ship_threshold)  # 85 (%)
    assert sample["observed_at"].startswith(timezone.now().strftime("%Y-%m-%dT"))
    # Copy buttons, hidden until the local script shows them; the page works without it.
    assert 'data-copy="token" hidden' in body and 'data-copy="sample" hidden' in body
    assert "/static/js/copy.js" in body
