"""Snoozing a flag's reminders: who may, what a snooze must say, and where it is shown."""

from datetime import timedelta
from html import escape

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from notifications import snooze
from notifications.models import FlagSnooze
from tests.factories import InitiativeFactory, PurgatoryFlagFactory, UserFactory

OWNER_FIELDS = ["business_owner", "operational_owner", "delivery_lead", "sponsor"]


def today():
    return timezone.localdate()


@pytest.fixture
def flag(db):
    return PurgatoryFlagFactory(initiative=InitiativeFactory(), reason="Stuck in thin slice.")


def _post(client, flag, **overrides):
    data = {"until": (today() + timedelta(days=14)).isoformat(), "reason": "Waiting on legal."}
    data.update(overrides)
    return client.post(reverse("flag-snooze", args=[flag.pk]), data)


def _name(flag, field: str, person) -> None:
    setattr(flag.initiative, field, person)
    flag.initiative.save(update_fields=[field])


# Who may -------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["executive", "manager"])
def test_executives_and_programme_managers_snooze_any_flag(client, request, flag, role):
    person = request.getfixturevalue(role)
    client.force_login(person)

    response = _post(client, flag)

    assert response.status_code == 302
    assert response["Location"] == f"{flag.initiative.get_absolute_url()}#flag-{flag.pk}"
    row = FlagSnooze.objects.get(flag=flag)
    assert (row.by, row.reason, row.until) == (person, "Waiting on legal.", today() + timedelta(14))


@pytest.mark.parametrize("field", OWNER_FIELDS)
def test_an_owner_named_on_the_initiative_snoozes_its_flag(client, owner, flag, field):
    _name(flag, field, owner)
    client.force_login(owner)

    assert _post(client, flag).status_code == 302
    assert FlagSnooze.objects.filter(flag=flag, by=owner).count() == 1


def test_an_owner_of_another_initiative_may_not(client, owner, flag):
    InitiativeFactory(business_owner=owner)
    client.force_login(owner)

    assert _post(client, flag).status_code == 403
    assert not FlagSnooze.objects.exists()


@pytest.mark.parametrize("field", [None, *OWNER_FIELDS])
def test_a_viewer_may_not_even_when_named_in_an_owner_field(client, viewer, flag, field):
    # The role bounds every power: naming a viewer gives them nothing to write.
    if field:
        _name(flag, field, viewer)
    client.force_login(viewer)

    assert _post(client, flag).status_code == 403
    assert not FlagSnooze.objects.exists()
    with pytest.raises(PermissionDenied):
        snooze.snooze(flag, user=viewer, until=today() + timedelta(days=3), reason="Because.")
    assert not FlagSnooze.objects.exists()


def test_a_person_without_a_role_may_not(client, flag):
    nobody = UserFactory(username="no-role")
    _name(flag, "business_owner", nobody)
    client.force_login(nobody)
    assert _post(client, flag).status_code == 403
    assert not FlagSnooze.objects.exists()


def test_a_get_goes_to_the_initiative_page_and_writes_nothing(client, manager, flag):
    client.force_login(manager)
    response = client.get(reverse("flag-snooze", args=[flag.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"{flag.initiative.get_absolute_url()}#flags"
    assert not FlagSnooze.objects.exists()


def test_an_unknown_flag_is_not_found(client, manager):
    client.force_login(manager)
    assert client.post(reverse("flag-snooze", args=[999999]), {}).status_code == 404


# What a snooze must say ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"until": lambda: today() - timedelta(days=1)}, "The date must be after today."),
        ({"until": lambda: today()}, "The date must be after today."),
        ({"until": lambda: today() + timedelta(days=91)}, "at most 90 days"),
        ({"until": lambda: ""}, "Give the date the reminders start again."),
        ({"until": lambda: "next week"}, "Give the date as YYYY-MM-DD."),
        ({"reason": lambda: ""}, "Say why the reminders can wait."),
        ({"reason": lambda: "   "}, "Say why the reminders can wait."),
        ({"reason": lambda: "x" * 301}, "300 characters"),
    ],
    ids=["past", "today", "beyond-90-days", "no-date", "not-a-date", "no-reason", "blank", "long"],
)
def test_bad_input_is_refused_visibly_and_nothing_is_written(
    client, manager, flag, overrides, message
):
    client.force_login(manager)
    values = {key: make() for key, make in overrides.items()}
    values = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in values.items()}

    response = _post(client, flag, **values)

    assert response.status_code == 302
    assert not FlagSnooze.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "was not snoozed" in page
    assert message in page


def test_ninety_days_ahead_is_the_longest_snooze(client, manager, flag):
    client.force_login(manager)
    _post(client, flag, until=(today() + timedelta(days=90)).isoformat())
    assert FlagSnooze.objects.get(flag=flag).until == today() + timedelta(days=90)


def test_a_cleared_flag_cannot_be_snoozed(client, manager, flag):
    flag.cleared_at = timezone.now()
    flag.save(update_fields=["cleared_at"])
    client.force_login(manager)

    response = _post(client, flag)

    assert not FlagSnooze.objects.exists()
    assert "has been cleared" in client.get(response["Location"]).content.decode()


def test_the_service_refuses_bad_input_by_field(manager, flag):
    with pytest.raises(ValidationError) as caught:
        snooze.snooze(flag, user=manager, until=today(), reason="")
    assert set(caught.value.message_dict) == {"until", "reason"}
    assert not FlagSnooze.objects.exists()


# The snooze in force ---------------------------------------------------------------------------
def test_the_newest_snooze_is_in_force_until_its_date_has_passed(manager, executive, flag):
    snooze.snooze(flag, user=manager, until=today() + timedelta(days=30), reason="First.")
    newest = snooze.snooze(
        flag, user=executive, until=today() + timedelta(days=3), reason="Sooner."
    )

    assert snooze.active_snooze(flag) == newest
    assert snooze.active_snooze(flag, on=today() + timedelta(days=3)) == newest
    assert snooze.active_snooze(flag, on=today() + timedelta(days=4)) is None
    assert FlagSnooze.objects.filter(flag=flag).count() == 2  # the first stays as history


def test_snoozes_for_reads_many_flags_in_one_query(manager, django_assert_num_queries):
    flags = [PurgatoryFlagFactory() for _ in range(6)]
    for f in flags[:4]:
        snooze.snooze(f, user=manager, until=today() + timedelta(days=5), reason="Later.")

    with django_assert_num_queries(1):
        found = snooze.snoozes_for([f.pk for f in flags])

    assert set(found) == {f.pk for f in flags[:4]}
    assert all(row.by.pk == manager.pk for row in found.values())


# On the initiative page ------------------------------------------------------------------------
def test_the_initiative_page_shows_the_snooze_on_its_flag(client, viewer, manager, flag):
    until = today() + timedelta(days=10)
    snooze.snooze(flag, user=manager, until=until, reason="Budget review on the 15th.")
    client.force_login(viewer)

    body = client.get(flag.initiative.get_absolute_url()).content.decode()

    assert "Stuck in thin slice." in body
    assert f"Reminders snoozed until {until:%-d %b %Y}" in body
    assert f"by {escape(str(manager))}" in body
    assert "Budget review on the 15th." in body


def test_only_people_who_may_snooze_get_the_form(client, viewer, manager, flag):
    action = reverse("flag-snooze", args=[flag.pk])
    client.force_login(viewer)
    assert action not in client.get(flag.initiative.get_absolute_url()).content.decode()
    client.force_login(manager)
    assert action in client.get(flag.initiative.get_absolute_url()).content.decode()


def test_a_snooze_that_has_run_out_is_not_shown(client, manager, flag):
    from gates import clock

    snooze.snooze(flag, user=manager, until=today() + timedelta(days=2), reason="Soon.")
    client.force_login(manager)

    with clock.at(timezone.now() + timedelta(days=3)):
        body = client.get(flag.initiative.get_absolute_url()).content.decode()

    assert "Reminders snoozed" not in body
    assert "Snooze reminders…" in body


def test_a_successful_snooze_says_so_on_the_page(client, owner, flag):
    _name(flag, "delivery_lead", owner)
    client.force_login(owner)

    response = _post(client, flag)

    page = client.get(response["Location"]).content.decode()
    assert "are snoozed until" in page
    assert "Waiting on legal." in page


def test_a_snooze_is_sealed_in_the_initiatives_audit_chain(manager, flag):
    from django.db import connection

    from gates import audit
    from gates.models import AuditEntry

    row = snooze.snooze(flag, user=manager, until=today() + timedelta(days=7), reason="Legal.")

    entry = AuditEntry.objects.get(source="notifications.flagsnooze", source_id=row.pk)
    assert entry.initiative_id == flag.initiative_id
    assert entry.kind == "snooze" and entry.actor == manager
    assert "Legal." in entry.summary
    assert audit.verify([flag.initiative_id]) == (1, [])

    # Moving the date behind the application's back breaks the chain.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {FlagSnooze._meta.db_table} SET until = %s WHERE id = %s",  # noqa: S608
            [today() + timedelta(days=60), row.pk],
        )
    _, breaks = audit.verify([flag.initiative_id])
    assert len(breaks) == 1


def test_a_snooze_is_never_changed_or_deleted(manager, flag):
    from gates.models import ImmutableError

    row = snooze.snooze(flag, user=manager, until=today() + timedelta(days=7), reason="Legal.")
    with pytest.raises(ImmutableError):
        FlagSnooze.objects.filter(pk=row.pk).update(reason="Something else.")
    with pytest.raises(ImmutableError):
        row.delete()
