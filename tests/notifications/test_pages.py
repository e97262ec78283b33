"""The notifications page, preferences and the unsubscribe link: each person sees and
changes only their own, every role has the pages, and the signed link works without login."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from django.utils import timezone

from notifications import mail, preferences
from notifications.models import Kind, Notification, Preference
from notifications.queries import PAGE_SIZE
from portfolio.roles import Role
from tests.factories import InitiativeFactory, UserFactory

ROLES = ["executive", "manager", "owner", "viewer"]
INBOX = reverse("notifications")
PREFERENCES = reverse("notification-preferences")
READ = reverse("notifications-read")


def note(user, title="Something happened", *, minutes_ago=0, read=False, **fields) -> Notification:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return Notification.objects.create(
        recipient=user,
        kind=fields.pop("kind", Kind.DECISION),
        key=fields.pop("key", f"test:{title}:{minutes_ago}"),
        title=title,
        created_at=at,
        read_at=at if read else None,
        **fields,
    )


def unread_ids(user) -> set[int]:
    return set(
        Notification.objects.filter(recipient=user, read_at__isnull=True).values_list(
            "pk", flat=True
        )
    )


@pytest.fixture
def other(db):
    return UserFactory(username="someone-else", role=Role.OWNER)


# The inbox ---------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_its_own_notifications_and_settings(client, request, role):
    person = request.getfixturevalue(role)
    note(person, "Yours to see")
    client.force_login(person)

    inbox = client.get(INBOX)
    settings_page = client.get(PREFERENCES)

    assert inbox.status_code == 200
    assert "Yours to see" in inbox.content.decode()
    assert settings_page.status_code == 200


@pytest.mark.parametrize("url", [INBOX, PREFERENCES, READ])
def test_anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == redirect_to_login(url).url


def test_the_inbox_lists_only_the_persons_own_rows(client, owner, other):
    note(owner, "Mine")
    note(other, "Not for you")
    client.force_login(owner)

    body = client.get(INBOX).content.decode()

    assert "Mine" in body
    assert "Not for you" not in body


def test_the_inbox_is_newest_first_and_marks_the_unread(client, owner):
    note(owner, "Older and read", minutes_ago=30, read=True)
    fresh = note(owner, "Newest", minutes_ago=1)
    client.force_login(owner)

    body = client.get(INBOX).content.decode()

    assert body.index("Newest") < body.index("Older and read")
    assert body.count('class="note unread"') == 1
    assert f'id="note-{fresh.pk}"' in body
    assert "Unread: </span>" in body


def test_the_unread_filter_hides_what_was_read(client, owner):
    note(owner, "Still to read", minutes_ago=1)
    note(owner, "Already read", minutes_ago=2, read=True)
    client.force_login(owner)

    body = client.get(INBOX, {"show": "unread"}).content.decode()

    assert "Still to read" in body
    assert "Already read" not in body


def test_the_inbox_names_the_initiative_with_a_link(client, owner):
    initiative = InitiativeFactory(title="Claims triage")
    note(owner, "Gate decided", initiative=initiative)
    client.force_login(owner)

    body = client.get(INBOX).content.decode()

    assert f'<a href="{initiative.get_absolute_url()}">Claims triage</a>' in body


def test_the_inbox_pages_by_fifty(client, owner):
    for n in range(PAGE_SIZE + 3):
        note(owner, f"Note number {n:03d}", minutes_ago=n)
    client.force_login(owner)

    first = client.get(INBOX).content.decode()
    second = client.get(INBOX, {"page": 2}).content.decode()

    assert first.count('class="note unread"') == PAGE_SIZE
    assert "Note number 000" in first and "Note number 052" not in first
    assert second.count('class="note unread"') == 3
    assert "Note number 052" in second
    assert "Page 2 of 2" in second


def test_the_inbox_reads_a_constant_number_of_rows(client, owner, django_assert_max_num_queries):
    initiatives = [InitiativeFactory() for _ in range(5)]
    for n in range(40):
        note(owner, f"Note {n}", minutes_ago=n, initiative=initiatives[n % 5])
    client.force_login(owner)
    client.get(INBOX)  # warm per-process caches
    with django_assert_max_num_queries(12):
        client.get(INBOX)


# Opening and marking read --------------------------------------------------------------------
def test_opening_a_notification_marks_it_read_and_goes_where_it_points(client, owner):
    row = note(owner, "Look at this", url="/my-work/")
    client.force_login(owner)

    response = client.get(reverse("notification-open", args=[row.pk]))

    assert response.status_code == 302
    assert response["Location"] == "/my-work/"
    row.refresh_from_db()
    assert row.read_at is not None


def test_opening_another_persons_notification_is_not_found_and_changes_nothing(
    client, owner, other
):
    theirs = note(other, "Theirs", url="/my-work/")
    client.force_login(owner)

    response = client.get(reverse("notification-open", args=[theirs.pk]))

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_a_notification_pointing_off_site_opens_the_inbox_instead(client, owner):
    row = note(owner, "Odd link", url="https://evil.example/")
    client.force_login(owner)
    assert client.get(reverse("notification-open", args=[row.pk]))["Location"] == INBOX


def test_mark_read_marks_the_chosen_rows_only(client, owner):
    first, second = note(owner, "First", minutes_ago=1), note(owner, "Second", minutes_ago=2)
    client.force_login(owner)

    response = client.post(READ, {"ids": [first.pk], "next": f"{INBOX}?show=unread"})

    assert response.status_code == 302
    assert response["Location"] == f"{INBOX}?show=unread"
    assert unread_ids(owner) == {second.pk}


def test_mark_read_with_another_persons_ids_changes_nothing(client, owner, other):
    theirs = note(other, "Theirs")
    mine = note(owner, "Mine")
    client.force_login(owner)

    client.post(READ, {"ids": [theirs.pk]})
    client.post(READ, {"all": "1"})

    assert unread_ids(other) == {theirs.pk}
    assert unread_ids(owner) == set()
    mine.refresh_from_db()
    assert mine.read_at is not None


def test_mark_all_read_leaves_nothing_unread_and_the_nav_count_goes(client, owner):
    for n in range(3):
        note(owner, f"Note {n}", minutes_ago=n)
    client.force_login(owner)
    assert 'aria-label="3 unread"' in client.get(INBOX).content.decode()

    response = client.post(READ, {"all": "1"}, follow=True)

    assert unread_ids(owner) == set()
    body = response.content.decode()
    assert "3 notifications marked read." in body
    assert re.search(r'aria-label="\d+ unread"', body) is None


def test_mark_read_goes_back_only_to_the_notifications_page(client, owner):
    note(owner, "Mine")
    client.force_login(owner)
    for target in ["https://evil.example/notifications/", "/initiatives/"]:
        assert client.post(READ, {"all": "1", "next": target})["Location"] == INBOX


# Preferences ----------------------------------------------------------------------------------
def _preferences(**overrides) -> dict:
    data = {f"email_{kind}": "on" for kind in Kind.values if kind != Kind.DIGEST}
    data["time_zone"] = ""
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_preferences_turn_email_off_per_kind_and_set_the_time_zone(client, owner):
    client.force_login(owner)

    response = client.post(
        PREFERENCES,
        _preferences(email_decision=None, email_digest="on", time_zone="Asia/Tokyo"),
    )

    assert response.status_code == 302
    assert response["Location"] == PREFERENCES
    chosen = preferences.choices_of(owner)
    assert chosen[Kind.DECISION] is False
    assert chosen[Kind.DIGEST] is True
    assert chosen[Kind.FLAG_RAISED] is True
    owner.refresh_from_db()
    assert owner.time_zone == "Asia/Tokyo"


def test_the_preferences_page_says_in_app_is_always_on_and_shows_choices(client, owner):
    preferences.choose(owner, Kind.VERDICT, False)
    client.force_login(owner)

    body = client.get(PREFERENCES).content.decode()

    assert "In the app: always." in body
    assert 'name="email_verdict"' in body
    assert 'name="email_verdict" id="id_email_verdict" checked' not in body
    assert 'name="email_decision" id="id_email_decision" checked' in body


def test_an_unknown_time_zone_is_refused_with_the_error_summary(client, owner):
    client.force_login(owner)

    response = client.post(PREFERENCES, _preferences(time_zone="Mars/Olympus_Mons"))

    assert response.status_code == 400
    body = response.content.decode()
    assert 'class="error-summary"' in body
    assert 'href="#id_time_zone"' in body
    owner.refresh_from_db()
    assert owner.time_zone == ""
    assert not Preference.objects.filter(user=owner).exists()


def test_preferences_change_only_the_persons_own(client, owner, other):
    client.force_login(owner)
    client.post(PREFERENCES, _preferences(email_decision=None, time_zone="Europe/Paris"))
    assert not Preference.objects.filter(user=other).exists()
    other.refresh_from_db()
    assert other.time_zone == ""


# Unsubscribe ----------------------------------------------------------------------------------
def _unsubscribe(user, kind=Kind.DECISION) -> str:
    return reverse("notification-unsubscribe", args=[mail.unsubscribe_token(user.pk, kind)])


def test_the_unsubscribe_link_asks_to_confirm_without_login_and_changes_nothing(client, owner):
    response = client.get(_unsubscribe(owner))

    assert response.status_code == 200
    assert "Stop these emails?" in response.content.decode()
    assert preferences.choices_of(owner)[Kind.DECISION] is True


def test_confirming_turns_that_kinds_email_off_and_says_so(client, owner):
    url = _unsubscribe(owner)

    response = client.post(url, {"confirm": "1"})

    assert response.status_code == 302
    assert response["Location"] == f"{url}?done=1"
    chosen = preferences.choices_of(owner)
    assert chosen[Kind.DECISION] is False
    assert chosen[Kind.FLAG_RAISED] is True
    assert "Unsubscribed" in client.get(response["Location"]).content.decode()


def test_one_click_unsubscribe_works_without_cookies_or_csrf(owner):
    from django.test import Client

    mail_client = Client(enforce_csrf_checks=True)

    response = mail_client.post(
        _unsubscribe(owner, Kind.FLAG_RAISED),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert preferences.choices_of(owner)[Kind.FLAG_RAISED] is False


def test_a_tampered_unsubscribe_token_is_not_found_and_changes_nothing(client, owner, other):
    token = mail.unsubscribe_token(owner.pk, Kind.DECISION)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    for method in (client.get, client.post):
        response = method(reverse("notification-unsubscribe", args=[forged]), {"confirm": "1"})
        assert response.status_code == 404
    assert not Preference.objects.exists()
