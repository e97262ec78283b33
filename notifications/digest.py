"""The weekly portfolio digest: one notification per reader, once per ISO week.

What the past 7 days brought (flags raised and cleared, gate decisions, launches, stops with
their reasons), conversion from pilot to production this quarter against last, and the
reader's own open work. The portfolio's sections are read once for every reader, the open
work of all readers in one query per kind, so a digest costs the same number of queries
whatever the portfolio's size and the number of readers.

The content goes into `Notification.data` (the email templates render it), with absolute
links, so the mail reads the same whenever it is sent; `body` is its short plain summary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Window
from django.db.models.functions import TruncQuarter
from django.urls import reverse
from django.utils import timezone

from gates import clock
from gates.models import GateDecision
from gates.stages import LAUNCHED, PATH, Stage, StopReason, Transition
from notifications import preferences, services
from notifications.models import Kind, Notification
from notifications.reminders import (
    Paths,
    local_date,
    organisation_zone,
    review_due,
    review_stages,
    stage_limits,
)
from notifications.webhooks import absolute
from portfolio.models import FlagKind, Initiative, PurgatoryFlag
from readiness.models import PreLaunchWorkItem, ReviewItem, ReviewOutcome, WorkStatus

PERIOD = timedelta(days=7)
# The most rows a section lists; its count says how many there were in all.
SHOWN = 25
# The most open work items listed per person, soonest due first.
SHOWN_WORK = 20


def week_key(today: date) -> str:
    year, week, _ = today.isocalendar()
    return f"digest:{year}-W{week:02d}"


def day_label(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def quarter_of(day: date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def quarter_start(year: int, number: int) -> datetime:
    return datetime(year, 3 * number - 2, 1, tzinfo=organisation_zone())


def previous_quarter(year: int, number: int) -> tuple[int, int]:
    return (year, number - 1) if number > 1 else (year - 1, 4)


def _person(first: str | None, last: str | None, username: str | None) -> str:
    return f"{first or ''} {last or ''}".strip() or username or "someone"


def _initiative_url(slug: str) -> str:
    return absolute(reverse("initiative-detail", args=[slug]))


# The portfolio's sections, read once per digest run ----------------------------------------
def _flags(field: str, start: datetime, end: datetime) -> dict:
    """Flags raised (or cleared) in the period, newest first: the first SHOWN and the count,
    in one query (the window's count is taken before the limit)."""
    flags = (
        PurgatoryFlag.objects.filter(**{f"{field}__gt": start, f"{field}__lte": end})
        .annotate(total=Window(Count("pk")))
        .order_by(f"-{field}", "-pk")
        .values_list("kind", "reason", field, "initiative__title", "initiative__slug", "total")
    )
    rows = list(flags[:SHOWN])
    items = []
    for kind, reason, at, title, slug, _ in rows:
        items.append(
            {
                "initiative": title,
                "url": _initiative_url(slug),
                "label": FlagKind(kind).label,
                "reason": reason,
                "day": day_label(local_date(at)),
            }
        )
    return {"count": rows[0][-1] if rows else 0, "items": items}


def _decisions(start: datetime, end: datetime) -> tuple[dict, dict, dict]:
    """(decisions, launches, stops) of the period, newest first, from one query. A launch is
    a move forward into narrow or wide launch (a roll back from wide to narrow is none)."""
    rows = (
        GateDecision.objects.filter(decided_at__gt=start, decided_at__lte=end)
        .order_by("-decided_at", "-pk")
        .values_list(
            "transition", "from_stage", "to_stage", "decided_at", "rationale", "stop_reason",
            "initiative__title", "initiative__slug", "decided_by__first_name",
            "decided_by__last_name", "decided_by__username",
        )
    )  # fmt: skip
    stage_labels, reasons = dict(Stage.choices), dict(StopReason.choices)
    paths = Paths()
    sections: tuple[dict, dict, dict] = tuple({"count": 0, "items": []} for _ in range(3))
    decisions, launches, stops = sections
    for transition, was, now, at, rationale, reason, title, slug, first, last, username in rows:
        launch = now in LAUNCHED and was in PATH and PATH.index(now) > PATH.index(was)
        stop = transition == Transition.STOP
        item = None
        for section, belongs in ((decisions, True), (launches, launch), (stops, stop)):
            if not belongs:
                continue
            section["count"] += 1
            if len(section["items"]) >= SHOWN:
                continue
            # Only the rows shown are worded: a busy week counts the rest.
            item = item or {
                "initiative": title,
                "url": absolute(paths.initiative(slug)),
                "transition": Transition(transition).label,
                "from": stage_labels.get(was, was),
                "to": stage_labels.get(now, now),
                "by": _person(first, last, username),
                "day": day_label(local_date(at)),
                "rationale": rationale,
            }
            section["items"].append(
                {**item, "reason": reasons.get(reason, "Unknown")} if section is stops else item
            )
    return sections


def _conversion(today: date) -> dict:
    """Conversion from pilot to production by cohort, this quarter against last: of the
    initiatives that first left framing in the quarter, how many have since reached narrow
    launch (the dashboard's "launch share"), wide launch, or stopped. The rules are the
    dashboard's and the list's (pages.listing.PROGRESS): one query for both quarters."""
    this = quarter_of(today)
    last = previous_quarter(*this)
    start = quarter_start(*last)
    end = quarter_start(this[0] + this[1] // 4, this[1] % 4 + 1)

    def took(transition: str) -> Exists:
        return Exists(GateDecision.objects.filter(initiative=OuterRef("pk"), transition=transition))

    left_at = Subquery(
        GateDecision.objects.filter(initiative=OuterRef("pk"), transition=Transition.APPROVE_FRAME)
        .order_by("decided_at")
        .values("decided_at")[:1]
    )
    rows = (
        Initiative.objects.annotate(
            left_at=left_at,
            took_pass_review=took(Transition.PASS_REVIEW),
            took_widen=took(Transition.WIDEN),
        )
        .filter(left_at__gte=start, left_at__lt=end)
        .annotate(quarter=TruncQuarter("left_at", tzinfo=organisation_zone()))
        .values("quarter")
        .annotate(
            left_frame=Count("pk"),
            reached_narrow=Count("pk", filter=Q(took_pass_review=True)),
            reached_wide=Count("pk", filter=Q(took_widen=True)),
            stopped=Count("pk", filter=Q(stage=Stage.STOPPED)),
        )
        .order_by()
    )
    found = {quarter_of(row.pop("quarter")): row for row in rows}

    def cohort(quarter: tuple[int, int]) -> dict:
        row = found.get(quarter, {"left_frame": 0, "reached_narrow": 0, "reached_wide": 0,
                                  "stopped": 0})  # fmt: skip
        left = row["left_frame"]
        return {
            "quarter": f"Q{quarter[1]} {quarter[0]}",
            **row,
            "share": round(100 * row["reached_narrow"] / left) if left else None,
        }

    now_cohort, last_cohort = cohort(this), cohort(last)
    change = (
        None
        if now_cohort["share"] is None or last_cohort["share"] is None
        else now_cohort["share"] - last_cohort["share"]
    )
    return {"this": now_cohort, "last": last_cohort, "change": change}


def _open_work(people: list[int], today: date) -> dict[int, list[dict]]:
    """Per person, their unchecked checklist items of open reviews and open pre-launch work
    items, soonest due first: two queries for every reader at once."""
    work: dict[int, list[dict]] = defaultdict(list)
    if not people:
        return work
    limits = review_stages(stage_limits())
    paths = Paths()
    items = (
        ReviewItem.objects.filter(
            assignee_id__in=people, checked=False, review__outcome=ReviewOutcome.OPEN
        )
        .order_by("review__opened_at", "template_item__position", "pk")
        .values_list(
            "assignee_id", "template_item__title", "review_id", "review__opened_at",
            "review__initiative__stage", "review__initiative__title",
            "review__initiative__slug",
        )
    )  # fmt: skip
    for person, title, review_id, opened_at, stage, initiative, slug in items:
        limit = limits.get(stage)
        work[person].append(
            {
                "kind": "Checklist item",
                "title": title,
                "initiative": initiative,
                "url": absolute(paths.review(slug, review_id)),
                "due": None if limit is None else review_due(opened_at, limit),
            }
        )
    my_work = absolute(reverse("my-work"))
    for person, title, due, initiative in (
        PreLaunchWorkItem.objects.filter(assignee_id__in=people, status=WorkStatus.OPEN)
        .order_by("due_date", "pk")
        .values_list("assignee_id", "title", "due_date", "initiative__title")
    ):
        work[person].append(
            {
                "kind": "Pre-launch work",
                "title": title,
                "initiative": initiative,
                "url": my_work,
                "due": due,
            }
        )
    for rows in work.values():
        rows.sort(key=lambda row: (row["due"] is None, row["due"] or today))
        for row in rows:
            due = row["due"]
            row["overdue"] = due is not None and due < today
            row["due"] = None if due is None else due.isoformat()
            row["due_label"] = "no due date" if due is None else day_label(due)
    return work


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _summary(sections: dict, work: list[dict]) -> str:
    parts = [
        f"{_count(sections['flags_raised']['count'], 'flag')} raised and "
        f"{sections['flags_cleared']['count']} cleared",
        f"{_count(sections['decisions']['count'], 'gate decision')}, with "
        f"{_count(sections['launches']['count'], 'launch', 'launches')} and "
        f"{_count(sections['stops']['count'], 'stop')}",
    ]
    this = sections["conversion"]["this"]
    conversion = (
        f"Conversion to narrow launch for {this['quarter']}: {this['share']}%."
        if this["share"] is not None
        else f"No initiative has left framing in {this['quarter']} yet."
    )
    overdue = sum(row["overdue"] for row in work)
    own = (
        f"You have {_count(len(work), 'open item')}" + (f", {overdue} overdue." if overdue else ".")
        if work
        else "You have no open work."
    )
    return f"In the past 7 days: {'; '.join(parts)}. {conversion} {own}"


def build(*, now: datetime | None = None, users: Iterable | None = None) -> list[Notification]:
    """The digest of the week containing `now` for each reader (the digest readers, or
    `users`), unsaved. A constant number of queries whatever the portfolio and readers."""
    now = now or clock.now()
    today = local_date(now)
    readers = list(preferences.digest_readers() if users is None else users)
    if not readers:
        return []
    # The week up to and including `now`: a flag the job raised at this very moment is news.
    start = now - PERIOD
    decisions, launches, stops = _decisions(start, now)
    sections = {
        "flags_raised": _flags("raised_at", start, now),
        "flags_cleared": _flags("cleared_at", start, now),
        "decisions": decisions,
        "launches": launches,
        "stops": stops,
        "conversion": _conversion(today),
    }
    work = _open_work([person.pk for person in readers], today)
    monday = today - timedelta(days=today.weekday())
    key = week_key(today)
    links = {
        "dashboard": absolute(reverse("home")),
        "initiatives": absolute(reverse("initiative-list")),
        "my_work": absolute(reverse("my-work")),
    }
    period = {"from": day_label(local_date(start)), "to": day_label(today)}
    rows = []
    for person in readers:
        own = work.get(person.pk, [])
        rows.append(
            Notification(
                recipient_id=person.pk,
                kind=Kind.DIGEST,
                key=key,
                created_at=now,
                title=f"Portfolio digest, week of {day_label(monday)}",
                body=_summary(sections, own),
                url=reverse("home"),
                data={
                    **sections,
                    "period": period,
                    "links": links,
                    "work": {"count": len(own), "items": own[:SHOWN_WORK]},
                },
            )
        )
    return rows


def send(*, now: datetime | None = None, users: Iterable | None = None) -> int:
    """Queue the week's digest for each reader who has not had it yet; returns how many
    were queued now."""
    rows = build(now=now, users=users)
    if not rows:
        return 0
    key, people = rows[0].key, [row.recipient_id for row in rows]
    had = Notification.objects.filter(key=key, recipient_id__in=people)
    with transaction.atomic():
        before = had.count()
        services.create(rows)
        services.nudge()
        return had.count() - before


def weekly(*, now: datetime | None = None) -> int:
    """The periodic job: send the week's digest from Monday at GANTRY_DIGEST_HOUR in the
    organisation's time zone. It runs every 15 minutes all week: the week's key makes every
    run after the first send nothing, and a Monday the workers missed (an outage, a deploy)
    sends it late in the week rather than not at all."""
    now = now or clock.now()
    local = timezone.localtime(now, organisation_zone())
    if local.weekday() == 0 and local.hour < settings.GANTRY_DIGEST_HOUR:
        return 0
    return send(now=now)
