"""Snoozing a purgatory flag: its weekly reminders held back until a date, with a reason.

A snooze is a row (`FlagSnooze`); the newest row of a flag is the one in force, and it holds
while its date has not passed. Earlier rows stay as the flag's history, so who snoozed what,
until when and why is never lost. Snoozing again with a new date replaces the one in force.

Who may snooze: executives, programme managers, and the initiative's owners and sponsor; the
role bounds every power, so a viewer named in one of those fields may not.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from gates import audit, clock
from notifications.models import FlagSnooze
from portfolio.models import PurgatoryFlag
from portfolio.permissions import may_own
from portfolio.roles import is_executive, is_programme_manager

MAX_DAYS = 90
REASON_MAX = FlagSnooze._meta.get_field("reason").max_length
SNOOZERS_ONLY = (
    "Only executives, programme managers and this initiative's owners and sponsor snooze its flags."
)


def today() -> date:
    """Today in the active time zone: the person's on a page, the organisation's elsewhere."""
    return timezone.localdate(clock.now())


def may_snooze(initiative, user) -> bool:
    if not (user and user.is_authenticated and may_own(user)):
        return False
    if is_executive(user) or is_programme_manager(user):
        return True
    return user.pk in {
        initiative.business_owner_id,
        initiative.operational_owner_id,
        initiative.delivery_lead_id,
        initiative.sponsor_id,
    }


def check(*, until: date | None, reason: str, on: date | None = None) -> dict[str, list[str]]:
    """What is wrong with a snooze's date and reason, by field (empty when nothing is)."""
    on = on or today()
    errors: dict[str, list[str]] = {}
    if until is None:
        errors["until"] = ["Give the date the reminders start again."]
    elif until <= on:
        errors["until"] = ["The date must be after today."]
    elif until > on + timedelta(days=MAX_DAYS):
        errors["until"] = [f"A snooze lasts at most {MAX_DAYS} days; snooze again later."]
    if not (reason or "").strip():
        errors["reason"] = ["Say why the reminders can wait."]
    elif len(reason.strip()) > REASON_MAX:
        errors["reason"] = [f"Keep the reason to {REASON_MAX} characters."]
    return errors


def snooze(flag: PurgatoryFlag, *, user, until: date, reason: str) -> FlagSnooze:
    """Hold back the flag's reminders until `until` (inclusive), recording who and why.

    Raises PermissionDenied for someone who may not snooze it, ValidationError (by field)
    for a bad date or reason or a flag already cleared; nothing is written then.
    """
    if not may_snooze(flag.initiative, user):
        raise PermissionDenied(SNOOZERS_ONLY)
    errors = check(until=until, reason=reason)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # Lock the flag so that a detection sweep clearing it now is seen, not raced.
        locked = PurgatoryFlag.objects.select_for_update().get(pk=flag.pk)
        if locked.cleared_at is not None:
            raise ValidationError("This flag has been cleared: there is nothing to snooze.")
        row = FlagSnooze.objects.create(
            flag=locked, until=until, reason=reason.strip(), by=user, at=clock.now()
        )
        # In the initiative's audit chain: who held the nagging back, until when and why.
        audit.record(
            initiative_id=locked.initiative_id,
            kind="snooze",
            actor=user,
            at=row.at,
            summary=(
                f"Reminders of “{locked.get_kind_display()}” snoozed until "
                f"{until.day} {until:%b %Y} by {user}: {row.reason}"
            ),
            obj=row,
        )
        return row


def snoozes_for(flag_ids: Iterable[int], *, on: date | None = None) -> dict[int, FlagSnooze]:
    """The snooze in force for each of the flags that has one (its newest, dated today or
    later), with who set it. One query, whatever the number of flags."""
    ids = list(flag_ids)
    if not ids:
        return {}
    newest = FlagSnooze.objects.filter(flag=OuterRef("flag")).order_by("-at", "-id").values("pk")
    rows = (
        FlagSnooze.objects.filter(flag_id__in=ids, pk=Subquery(newest[:1]))
        .filter(until__gte=on or today())
        .select_related("by")
    )
    return {row.flag_id: row for row in rows}


def active_snooze(flag: PurgatoryFlag, *, on: date | None = None) -> FlagSnooze | None:
    return snoozes_for([flag.pk], on=on).get(flag.pk)
