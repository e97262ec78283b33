"""Reminders and escalation: Gantry nags until the work is done or the flag is cleared.

An hourly job (`remind`) reads, in a few set-based queries whatever the portfolio's size:

- open pre-launch work items and unchecked checklist items of open reviews, each with an
  assignee and a due date (a checklist item is due when its review's stage limit runs out,
  counted from the day the review opened, as the purgatory rule "blocked at gate" counts
  it). The assignee hears when it is due in 3 days, due today and every day it is overdue;
  overdue by more than 7 days, the programme managers and the initiative's sponsor hear too;
- open purgatory flags, which remind the initiative's business owner, delivery lead and
  sponsor once a week from a week after raising, unless snoozed, and, for a metric below
  its threshold, not while the initiative has a stale feed (the stale-feed alert already
  named the root cause).

The notification keys carry the item and the local date (or the flag's week), so the unique
(key, recipient) constraint keeps it to one reminder a day however often the job runs,
two runs at once included. Dates are the organisation's (settings.TIME_ZONE).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Container, Iterable
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from gates import clock
from gates.criteria import registry as criteria
from gates.stages import NEXT_GATE, Stage
from metrics.models import DataFeed, FeedStatus
from notifications import services
from notifications.models import FlagSnooze, Kind, Notification
from portfolio.models import FlagKind, PurgatoryFlag, StageLimit
from portfolio.roles import Role
from readiness.models import PreLaunchWorkItem, ReviewItem, ReviewOutcome, WorkStatus

# How long before the due date the first reminder comes, and how long past it the
# programme managers and the sponsor are told.
DUE_SOON_DAYS = 3
ESCALATE_AFTER_DAYS = 7
FLAG_EVERY_DAYS = 7
# The stage limits the purgatory job uses when no StageLimit row overrides them
# (pages.purgatory.DEFAULT_STAGE_LIMITS; a test holds the two equal).
DEFAULT_STAGE_LIMITS = {
    Stage.FRAME: 30,
    Stage.THIN_SLICE: 90,
    Stage.READINESS_REVIEW: 30,
    Stage.NARROW_LAUNCH: 60,
}
# The criterion through which a gate waits on its open readiness review.
REVIEW_CRITERION = "checklist_complete"


def organisation_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def local_date(moment: datetime) -> date:
    return timezone.localdate(moment, organisation_zone())


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, organisation_zone())


def stage_limits() -> dict[str, int]:
    return {**DEFAULT_STAGE_LIMITS, **dict(StageLimit.objects.values_list("stage", "days"))}


def review_stages(limits: dict[str, int]) -> dict[str, int]:
    """{stage: limit} for the stages whose next gate waits on the open review's checklist."""
    return {
        stage: limits[stage]
        for stage, gate in NEXT_GATE.items()
        if stage in limits
        and any(c.key == REVIEW_CRITERION and not c.advisory for c in criteria.criteria_for(gate))
    }


def review_due(opened_at: datetime, limit: int) -> date:
    """A checklist item's due date: the review's opening day plus its stage's limit."""
    return local_date(opened_at) + timedelta(days=limit)


def when(due: date, today: date) -> str | None:
    """The reminder's words for a due date, or None when no reminder is due today."""
    days = (today - due).days
    if days == -DUE_SOON_DAYS:
        return "due in 3 days"
    if days == 0:
        return "due today"
    if days > 0:
        return f"overdue by {days} day{'s' if days != 1 else ''}"
    return None


def managers() -> list[int]:
    return list(
        get_user_model()
        .objects.filter(is_active=True, groups__name=Role.PROGRAMME_MANAGER)
        .values_list("pk", flat=True)
        .distinct()
    )


def open_work(today: date):
    """Open, assigned pre-launch work due within DUE_SOON_DAYS or overdue, of initiatives
    still in flight: (id, title, due, assignee, initiative id, its title, sponsor)."""
    return (
        PreLaunchWorkItem.objects.filter(
            status=WorkStatus.OPEN,
            assignee__isnull=False,
            assignee__is_active=True,
            due_date__lte=today + timedelta(days=DUE_SOON_DAYS),
        )
        .exclude(initiative__stage=Stage.STOPPED)
        .values_list(
            "pk", "title", "due_date", "assignee_id", "initiative_id", "initiative__title",
            "initiative__sponsor_id",
        )
    )  # fmt: skip


def open_items(today: date, limits: dict[str, int]):
    """Unchecked, assigned items of open reviews whose due date is at most DUE_SOON_DAYS
    ahead: (id, title, opened_at, stage, assignee, review id, initiative id, slug, title,
    sponsor). The bound per stage is exact: due <= today + 3 is opened before the start of
    the day (today + 4 - limit)."""
    stages = review_stages(limits)
    if not stages:
        return []
    bound = Q()
    for stage, limit in stages.items():
        cutoff = day_start(today + timedelta(days=DUE_SOON_DAYS + 1 - limit))
        bound |= Q(review__initiative__stage=stage, review__opened_at__lt=cutoff)
    return (
        ReviewItem.objects.filter(
            bound,
            review__outcome=ReviewOutcome.OPEN,
            checked=False,
            assignee__isnull=False,
            assignee__is_active=True,
        )
        .values_list(
            "pk", "template_item__title", "review__opened_at", "review__initiative__stage",
            "assignee_id", "review_id", "review__initiative_id", "review__initiative__slug",
            "review__initiative__title", "review__initiative__sponsor_id",
        )
    )  # fmt: skip


def open_flags(now: datetime, today: date):
    """Flags open for at least a week, not snoozed today, of initiatives in flight, with
    whether the initiative has a stale active feed."""
    newest_snooze = FlagSnooze.objects.filter(flag=OuterRef("pk")).order_by("-at", "-id")
    return (
        PurgatoryFlag.objects.filter(
            cleared_at__isnull=True, raised_at__lte=now - timedelta(days=FLAG_EVERY_DAYS)
        )
        .exclude(initiative__stage=Stage.STOPPED)
        .annotate(
            snoozed_until=Subquery(newest_snooze.values("until")[:1]),
            stale_feed=Exists(
                DataFeed.objects.filter(
                    initiative=OuterRef("initiative"), is_stale=True, status=FeedStatus.ACTIVE
                )
            ),
        )
        .filter(Q(snoozed_until__isnull=True) | Q(snoozed_until__lt=today))
        .values_list(
            "pk", "kind", "reason", "raised_at", "stale_feed", "initiative_id",
            "initiative__slug", "initiative__title", "initiative__business_owner_id",
            "initiative__delivery_lead_id", "initiative__sponsor_id",
        )
    )  # fmt: skip


class Reminder(NamedTuple):
    """What one item or flag says today, and to whom: a row per recipient once written."""

    kind: str
    key: str
    recipients: tuple[int, ...]
    initiative_id: int
    title: str
    body: str
    url: str


def _reminder(kind, key, recipients, initiative_id, title, body, url) -> Reminder:
    people = tuple(sorted({pk for pk in recipients if pk}))
    return Reminder(kind, key, people, initiative_id, title[:300], body, url)


class Paths:
    """The pages' paths, reversed once: reversing for each of thousands of rows is most of
    a pass's time. Slugs and ids are substituted into a reversed path with placeholders."""

    SLUG, ID = "gantry-slug-placeholder", 987654321

    def __init__(self) -> None:
        self.my_work = reverse("my-work")
        self._initiative = reverse("initiative-detail", args=[self.SLUG])
        self._review = reverse("review-detail", args=[self.SLUG, self.ID])

    def initiative(self, slug: str) -> str:
        return self._initiative.replace(self.SLUG, slug)

    def review(self, slug: str, review_id: int) -> str:
        return self._review.replace(str(self.ID), str(review_id)).replace(self.SLUG, slug)


def _due(
    *,
    what: str,
    pk: int,
    title: str,
    due: date,
    assignee: int,
    initiative_id: int,
    initiative_title: str,
    sponsor: int | None,
    url: str,
    today: date,
    pms: list[int],
) -> list[Reminder]:
    words = when(due, today)
    if words is None:
        return []
    shown = f"{due.day} {due:%b %Y}"
    said = [
        _reminder(
            Kind.DUE,
            f"due:{what}:{pk}:{today.isoformat()}",
            [assignee],
            initiative_id,
            f"{initiative_title}: “{title}” {words}",
            f"Due {shown}. It is assigned to you; close it with its evidence.",
            url,
        )
    ]
    late = (today - due).days
    if late > ESCALATE_AFTER_DAYS:
        said.append(
            _reminder(
                Kind.ESCALATION,
                f"escalate:{what}:{pk}:{today.isoformat()}",
                [*pms, sponsor],
                initiative_id,
                f"{initiative_title}: “{title}” overdue by {late} days",
                f"Due {shown} and still open after more than {ESCALATE_AFTER_DAYS} days. "
                "Its assignee has been reminded daily.",
                url,
            )
        )
    return said


def due_today(*, now: datetime) -> list[Reminder]:
    """Every reminder and escalation due at `now`, sent or not. Five queries, whatever the
    portfolio's size."""
    today = local_date(now)
    limits = stage_limits()
    pms = managers()
    paths = Paths()
    said: list[Reminder] = []
    for pk, title, due, assignee, initiative_id, initiative_title, sponsor in open_work(today):
        said += _due(
            what="work", pk=pk, title=title, due=due, assignee=assignee,
            initiative_id=initiative_id, initiative_title=initiative_title, sponsor=sponsor,
            url=paths.my_work, today=today, pms=pms,
        )  # fmt: skip
    for (
        pk, title, opened_at, stage, assignee, review_id, initiative_id, slug,
        initiative_title, sponsor,
    ) in open_items(today, limits):  # fmt: skip
        said += _due(
            what="item", pk=pk, title=title, due=review_due(opened_at, limits[stage]),
            assignee=assignee, initiative_id=initiative_id, initiative_title=initiative_title,
            sponsor=sponsor, url=paths.review(slug, review_id), today=today, pms=pms,
        )  # fmt: skip
    for (
        pk, kind, reason, raised_at, stale_feed, initiative_id, slug, initiative_title,
        business_owner, delivery_lead, sponsor,
    ) in open_flags(now, today):  # fmt: skip
        # The stale-feed alert already said the data stopped: a metric without data reads
        # below its threshold for that reason, not for its results.
        if kind == FlagKind.BELOW_THRESHOLD and stale_feed:
            continue
        week = (now - raised_at).days // FLAG_EVERY_DAYS
        said.append(
            _reminder(
                Kind.FLAG_REMINDER,
                f"flag-reminder:{pk}:{week}",
                [business_owner, delivery_lead, sponsor],
                initiative_id,
                f"{initiative_title}: still flagged “{FlagKind(kind).label}”",
                f"{reason} Flagged {week} week{'s' if week != 1 else ''} ago and not yet "
                "cleared. Clear the cause, or snooze the reminders with a reason.",
                paths.initiative(slug),
            )
        )
    return said


class Row(NamedTuple):
    """One reminder for one recipient, as `services.create` takes it: a plain tuple, as
    building a model instance for each of thousands of rows costs more than inserting it."""

    recipient_id: int
    kind: str
    key: str
    initiative_id: int
    created_at: datetime
    title: str
    body: str
    url: str


def _rows(said: Iterable[Reminder], now: datetime, sent: Container[tuple[str, int]]) -> list[Row]:
    return [
        Row(person, r.kind, r.key, r.initiative_id, now, r.title, r.body, r.url)
        for r in said
        for person in r.recipients
        if (r.key, person) not in sent
    ]


def rows_of(
    said: Iterable[Reminder], *, now: datetime, sent: set[tuple[str, int]] = frozenset()
) -> list[Notification]:
    """A notification per reminder and recipient, leaving out the (key, recipient) pairs in
    `sent`."""
    return [Notification(**row._asdict()) for row in _rows(said, now, sent)]


def candidates(*, now: datetime) -> list[Notification]:
    """Every reminder and escalation due at `now` as unsaved rows, sent or not."""
    return rows_of(due_today(now=now), now=now)


def _sent(said: list[Reminder]) -> set[tuple[str, int]]:
    """The (key, recipient) pairs already stored. All but the day's first run find every
    reminder sent, and stop there without building rows, inserting or reading preferences."""
    if not said:
        return set()
    if connection.vendor != "postgresql":
        keys = {r.key for r in said}
        return set(Notification.objects.filter(key__in=keys).values_list("key", "recipient_id"))
    table = connection.ops.quote_name(Notification._meta.db_table)
    with connection.cursor() as cursor:
        # One array parameter rather than a placeholder per key: thousands of keys are
        # checked against the unique index's key column without a huge statement to parse.
        cursor.execute(
            f"SELECT key, recipient_id FROM {table} WHERE key = ANY(%s)",  # noqa: S608
            [sorted({r.key for r in said})],
        )
        return set(cursor.fetchall())


def remind(*, now: datetime | None = None) -> dict[str, int]:
    """Write today's reminders and escalations and this week's flag reminders that are not
    written yet; returns how many of each kind were new, and how many are to be emailed."""
    now = now or clock.now()
    said = due_today(now=now)
    rows = _rows(said, now, _sent(said))
    counts = {Kind.DUE.value: 0, Kind.ESCALATION.value: 0, Kind.FLAG_REMINDER.value: 0}
    for row in rows:
        counts[row.kind] += 1
    if rows:
        # A concurrent run may insert the same rows meanwhile: ON CONFLICT DO NOTHING keeps
        # the first, so nobody hears twice.
        with transaction.atomic():
            counts["emailed"] = services.create(rows)
            services.nudge()
    else:
        counts["emailed"] = 0
    return counts
