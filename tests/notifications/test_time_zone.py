"""Times are shown in the signed-in person's time zone; blank or unknown, the organisation's."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Kind, Notification

# 23:30 UTC: the next day in Tokyo (UTC+9), the same evening in New York (UTC-5).
MOMENT = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)


@pytest.fixture
def noted(owner):
    Notification.objects.create(
        recipient=owner, kind=Kind.DECISION, key="tz:1", title="Gate decided", created_at=MOMENT
    )
    return owner


def _inbox(client, person) -> str:
    client.force_login(person)
    return client.get(reverse("notifications")).content.decode()


def test_the_page_shows_times_in_the_persons_zone(client, noted):
    noted.time_zone = "Asia/Tokyo"
    noted.save(update_fields=["time_zone"])

    body = _inbox(client, noted)

    assert "5 Dec 2026, 08:30 JST" in body
    assert "Times in Asia/Tokyo" in body


def test_another_person_sees_the_same_row_in_their_own_zone(client, noted):
    noted.time_zone = "America/New_York"
    noted.save(update_fields=["time_zone"])

    assert "4 Dec 2026, 18:30 EST" in _inbox(client, noted)


@pytest.mark.parametrize("stored", ["", "Nowhere/Atlantis"])
def test_a_blank_or_unknown_zone_falls_back_to_the_organisations(client, noted, settings, stored):
    settings.TIME_ZONE = "Europe/Paris"
    noted.time_zone = stored
    noted.save(update_fields=["time_zone"])

    body = _inbox(client, noted)

    assert "5 Dec 2026, 00:30 CET" in body
    assert "Times in Europe/Paris" in body


def test_the_zone_is_given_back_after_the_request(client, noted):
    noted.time_zone = "Asia/Tokyo"
    noted.save(update_fields=["time_zone"])
    before = timezone.get_current_timezone_name()

    _inbox(client, noted)

    assert timezone.get_current_timezone_name() == before != "Asia/Tokyo"


def test_a_saved_preference_changes_the_zone_of_the_next_page(client, noted):
    client.force_login(noted)
    client.post(
        reverse("notification-preferences"),
        {f"email_{kind}": "on" for kind in Kind.values} | {"time_zone": "Asia/Kolkata"},
    )

    assert "5 Dec 2026, 05:00 IST" in client.get(reverse("notifications")).content.decode()
