"""Reminders and escalation: due work nags its assignee daily, overdue work reaches the
programme managers and the sponsor after a week, open flags remind their owners weekly."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gates import clock
from gates.stages import Stage
from jobs import registry
from metrics.models import FeedStatus
from notifications import reminders, services
from notifications.models import FlagSnooze, Kind, Notification
from portfolio.models import StageLimit
from portfolio.roles import Role
from readiness.models import PreLaunchWorkItem, ReadinessReview, ReviewItem, ReviewOutcome
from tests.factories import (
    ChecklistItemTemplateFactory,
    ChecklistTemplateFactory,
    DataFeedFactory,
    InitiativeFactory,
    PurgatoryFlagFactory,
    UserFactory,
)
from tests.helpers import advance

# A Wednesday, mid-morning in UTC (the tests' organisation time zone unless one says not).
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
TODAY = date(2026, 12, 2)


@pytest.fixture
def sponsor(db):
    return UserFactory(username="sponsor", role=Role.EXECUTIVE)


@pytest.fixture
def initiative(sponsor, owner):
    return InitiativeFactory(
        title="Claims triage", sponsor=sponsor, business_owner=owner, delivery_lead=owner
    )


def work_item(initiative, *, assignee, due: date, **fields) -> PreLaunchWorkItem:
    """An open pre-launch work item left by a failed review."""
    template = ChecklistTemplateFactory()
    review = ReadinessReview.objects.create(
        initiative=initiative,
        template=template,
        opened_by=assignee or initiative.sponsor,
        opened_at=NOW - timedelta(days=60),
        outcome=ReviewOutcome.FAILED,
    )
    item = ReviewItem.objects.create(
        review=review, template_item=ChecklistItemTemplateFactory(template=template)
    )
    return PreLaunchWorkItem.objects.create(
        initiative=initiative,
        review_item=item,
        title=fields.pop("title", "Write the runbook"),
        assignee=assignee,
        due_date=due,
        **fields,
    )


def notes(kind=None, **filters):
    rows = Notification.objects.filter(**filters)
    return rows.filter(kind=kind) if kind else rows


# Due, today, overdue ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("days", "words"),
    [
        (3, "due in 3 days"),
        (0, "due today"),
        (-1, "overdue by 1 day"),
        (-5, "overdue by 5 days"),
    ],
)
def test_work_due_in_3_days_today_or_overdue_reminds_its_assignee(initiative, owner, days, words):
    work = work_item(initiative, assignee=owner, due=TODAY + timedelta(days=days))

    reminders.remind(now=NOW)

    note = Notification.objects.get(kind=Kind.DUE)
    assert note.recipient == owner
    assert note.title == f"Claims triage: “Write the runbook” {words}"
    assert note.key == f"due:work:{work.pk}:2026-12-02"
    assert note.url == "/my-work/"
    assert note.initiative == initiative


@pytest.mark.parametrize("days", [4, 2, 1])
def test_work_due_on_other_days_is_not_reminded(initiative, owner, days):
    work_item(initiative, assignee=owner, due=TODAY + timedelta(days=days))

    assert reminders.remind(now=NOW)["due"] == 0
    assert not Notification.objects.exists()


def test_done_unassigned_and_stopped_work_is_not_reminded(initiative, owner, manager):
    work_item(initiative, assignee=owner, due=TODAY, status="done")
    work_item(initiative, assignee=None, due=TODAY)
    stopped = InitiativeFactory(sponsor=initiative.sponsor)
    advance(stopped, Stage.STOPPED, user=manager)
    work_item(stopped, assignee=owner, due=TODAY)

    reminders.remind(now=NOW)

    assert not notes(Kind.DUE).exists()


def open_review_at(initiative, opened_at, *, user) -> ReadinessReview:
    """Walk the initiative into readiness review at `opened_at`: the review opens then."""
    with clock.at(opened_at):
        advance(initiative, Stage.READINESS_REVIEW, user=user)
    return ReadinessReview.objects.get(initiative=initiative, outcome=ReviewOutcome.OPEN)


def test_a_checklist_item_is_due_its_stage_limit_after_the_review_opened(
    initiative, owner, manager
):
    # Readiness review: 30 days by default, counted from the day the review opened.
    review = open_review_at(initiative, NOW - timedelta(days=30, hours=3), user=manager)
    item = review.items.first()
    ReviewItem.objects.filter(pk=item.pk).update(assignee=owner)

    reminders.remind(now=NOW)

    note = notes(Kind.DUE).get()
    assert note.recipient == owner
    assert note.title.endswith(f"“{item.template_item.title}” due today")
    assert note.key == f"due:item:{item.pk}:2026-12-02"
    assert note.url == review.get_absolute_url()


def test_a_checklist_items_due_date_follows_a_configured_stage_limit(initiative, owner, manager):
    review = open_review_at(initiative, NOW - timedelta(days=30), user=manager)
    ReviewItem.objects.filter(review=review).update(assignee=owner)
    ReviewItem.objects.filter(review=review).exclude(
        pk=review.items.order_by("pk").first().pk
    ).update(checked=True)
    StageLimit.objects.update_or_create(stage=Stage.READINESS_REVIEW, defaults={"days": 33})

    reminders.remind(now=NOW)

    assert notes(Kind.DUE).get().title.endswith("due in 3 days")


def test_checked_items_and_closed_reviews_are_not_reminded(initiative, owner, manager):
    review = open_review_at(initiative, NOW - timedelta(days=40), user=manager)
    ReviewItem.objects.filter(review=review).update(assignee=owner, checked=True)

    reminders.remind(now=NOW)

    assert not notes(Kind.DUE).exists()


def test_the_stage_limits_are_the_purgatory_jobs(db):
    from pages import purgatory

    assert reminders.stage_limits() == purgatory.stage_limits()
    StageLimit.objects.update_or_create(stage=Stage.READINESS_REVIEW, defaults={"days": 12})
    assert reminders.stage_limits() == purgatory.stage_limits()


# Once a day ------------------------------------------------------------------------------------
def test_a_reminder_is_sent_once_a_day_however_often_the_job_runs(initiative, owner):
    work = work_item(initiative, assignee=owner, due=TODAY - timedelta(days=2))

    first = reminders.remind(now=NOW)
    again = reminders.remind(now=NOW + timedelta(hours=1))
    evening = reminders.remind(now=NOW + timedelta(hours=13))

    assert (first["due"], again["due"], evening["due"]) == (1, 0, 0)
    assert notes(Kind.DUE).count() == 1
    reminders.remind(now=NOW + timedelta(days=1))
    assert list(notes(Kind.DUE).order_by("created_at").values_list("key", "title")) == [
        (f"due:work:{work.pk}:2026-12-02", "Claims triage: “Write the runbook” overdue by 2 days"),
        (f"due:work:{work.pk}:2026-12-03", "Claims triage: “Write the runbook” overdue by 3 days"),
    ]


def test_two_runs_at_once_still_remind_once(initiative, owner):
    """Both runs find the reminder unsent; the unique key lets only the first insert land."""
    work_item(initiative, assignee=owner, due=TODAY)
    seen_by_second_run = reminders.candidates(now=NOW)

    reminders.remind(now=NOW)
    services.create(seen_by_second_run)

    assert notes(Kind.DUE).count() == 1


def test_the_day_is_the_organisations(settings, initiative, owner):
    settings.TIME_ZONE = "Pacific/Auckland"
    # 10:00 UTC on 2 December is 23:00 in Auckland (UTC+13); 11:00 UTC is already 3 December.
    work = work_item(initiative, assignee=owner, due=date(2026, 12, 3))

    reminders.remind(now=NOW)
    assert not notes(Kind.DUE).exists()

    reminders.remind(now=NOW + timedelta(hours=1))
    note = notes(Kind.DUE).get()
    assert note.title.endswith("due today")
    assert note.key == f"due:work:{work.pk}:2026-12-03"


# Escalation ------------------------------------------------------------------------------------
def test_overdue_by_7_days_is_not_yet_escalated(initiative, owner, manager):
    work_item(initiative, assignee=owner, due=TODAY - timedelta(days=7))

    reminders.remind(now=NOW)

    assert notes(Kind.DUE).count() == 1
    assert not notes(Kind.ESCALATION).exists()


def test_overdue_by_more_than_7_days_escalates_to_programme_managers_and_the_sponsor(
    initiative, owner, manager, sponsor, executive
):
    UserFactory(username="pm-gone", role=Role.PROGRAMME_MANAGER, is_active=False)
    work = work_item(initiative, assignee=owner, due=TODAY - timedelta(days=8))

    reminders.remind(now=NOW)
    reminders.remind(now=NOW + timedelta(hours=2))

    escalations = notes(Kind.ESCALATION)
    assert {n.recipient for n in escalations} == {manager, sponsor}
    assert {n.key for n in escalations} == {f"escalate:work:{work.pk}:2026-12-02"}
    assert escalations.first().title == "Claims triage: “Write the runbook” overdue by 8 days"
    # The assignee keeps hearing the daily reminder.
    assert notes(Kind.DUE).get().recipient == owner
    reminders.remind(now=NOW + timedelta(days=1))
    assert notes(Kind.ESCALATION).count() == 4


def test_an_overdue_checklist_item_escalates_too(initiative, owner, manager, sponsor):
    review = open_review_at(initiative, NOW - timedelta(days=39), user=manager)
    item = review.items.first()
    ReviewItem.objects.filter(pk=item.pk).update(assignee=owner)

    reminders.remind(now=NOW)

    assert notes(Kind.DUE).get().title.endswith("overdue by 9 days")
    assert {(n.recipient, n.key) for n in notes(Kind.ESCALATION)} == {
        (manager, f"escalate:item:{item.pk}:2026-12-02"),
        (sponsor, f"escalate:item:{item.pk}:2026-12-02"),
    }


# Flags -----------------------------------------------------------------------------------------
@pytest.fixture
def lead(db):
    return UserFactory(username="lead", role=Role.OWNER)


@pytest.fixture
def flagged(initiative, lead):
    initiative.delivery_lead = lead
    initiative.save(update_fields=["delivery_lead"])
    return initiative


def flag_on(initiative, *, days_ago: float, kind="stuck"):
    return PurgatoryFlagFactory(
        initiative=initiative, kind=kind, raised_at=NOW - timedelta(days=days_ago)
    )


def test_an_open_flag_reminds_its_owners_and_sponsor_weekly(flagged, owner, lead, sponsor, manager):
    flag = flag_on(flagged, days_ago=6.9)

    reminders.remind(now=NOW)
    assert not notes(Kind.FLAG_REMINDER).exists()  # raising it told them already

    reminders.remind(now=NOW + timedelta(hours=3))
    week_one = notes(Kind.FLAG_REMINDER)
    assert {n.recipient for n in week_one} == {owner, lead, sponsor}
    assert {n.key for n in week_one} == {f"flag-reminder:{flag.pk}:1"}
    assert week_one.first().url == flagged.get_absolute_url()
    assert week_one.first().title == "Claims triage: still flagged “Stuck in stage”"

    for day in range(1, 7):
        reminders.remind(now=NOW + timedelta(days=day, hours=3))
    assert notes(Kind.FLAG_REMINDER).count() == 3

    reminders.remind(now=NOW + timedelta(days=7, hours=3))
    assert set(notes(Kind.FLAG_REMINDER).values_list("key", flat=True)) == {
        f"flag-reminder:{flag.pk}:1",
        f"flag-reminder:{flag.pk}:2",
    }


def test_a_cleared_flag_reminds_nobody(flagged):
    flag = flag_on(flagged, days_ago=10)
    flag.cleared_at = NOW - timedelta(days=1)
    flag.save()

    reminders.remind(now=NOW)

    assert not notes(Kind.FLAG_REMINDER).exists()


def test_a_snoozed_flag_is_skipped_until_its_date_has_passed(flagged, manager):
    flag = flag_on(flagged, days_ago=8)
    FlagSnooze.objects.create(
        flag=flag, until=TODAY, reason="Legal sign-off next week.", by=manager, at=NOW
    )

    reminders.remind(now=NOW)
    assert not notes(Kind.FLAG_REMINDER).exists()

    reminders.remind(now=NOW + timedelta(days=1))
    assert notes(Kind.FLAG_REMINDER).exists()


def test_only_the_newest_snooze_is_in_force(flagged, manager):
    flag = flag_on(flagged, days_ago=8)
    FlagSnooze.objects.create(
        flag=flag, until=TODAY + timedelta(days=30), reason="Long wait.", by=manager,
        at=NOW - timedelta(days=2),
    )  # fmt: skip
    # Snoozed again later with a date already past: the reminders are back.
    FlagSnooze.objects.create(
        flag=flag, until=TODAY - timedelta(days=1), reason="Short wait.", by=manager,
        at=NOW - timedelta(days=1),
    )  # fmt: skip

    reminders.remind(now=NOW)

    assert notes(Kind.FLAG_REMINDER).exists()


def test_a_stale_feed_holds_back_below_threshold_flag_reminders(flagged):
    below = flag_on(flagged, days_ago=8, kind="below_threshold")
    stuck = flag_on(flagged, days_ago=8, kind="stuck")
    DataFeedFactory(initiative=flagged, is_stale=True)

    reminders.remind(now=NOW)

    keys = set(notes(Kind.FLAG_REMINDER).values_list("key", flat=True))
    assert keys == {f"flag-reminder:{stuck.pk}:1"}
    assert not any(key.startswith(f"flag-reminder:{below.pk}:") for key in keys)


def test_a_paused_stale_feed_holds_nothing_back(flagged):
    below = flag_on(flagged, days_ago=8, kind="below_threshold")
    DataFeedFactory(initiative=flagged, is_stale=True, status=FeedStatus.PAUSED)

    reminders.remind(now=NOW)

    assert notes(Kind.FLAG_REMINDER).filter(key=f"flag-reminder:{below.pk}:1").exists()


# Cost and schedule -----------------------------------------------------------------------------
def _portfolio(size: int, *, sponsor, owner, manager) -> None:
    for n in range(size):
        initiative = InitiativeFactory(sponsor=sponsor, business_owner=owner, delivery_lead=owner)
        work_item(initiative, assignee=owner, due=TODAY - timedelta(days=n % 12), title=f"W{n}")
        flag_on(initiative, days_ago=8 + n)
    review = open_review_at(
        InitiativeFactory(sponsor=sponsor), NOW - timedelta(days=40 + size), user=manager
    )
    ReviewItem.objects.filter(review=review).update(assignee=owner)


def _queries(**kwargs) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as first:
        reminders.remind(now=NOW, **kwargs)
    with CaptureQueriesContext(connection) as again:
        reminders.remind(now=NOW + timedelta(hours=1), **kwargs)
    return len(first), len(again)


def test_the_pass_costs_the_same_queries_whatever_the_portfolios_size(
    require_postgres, sponsor, owner, manager
):
    # On PostgreSQL the rows go in one statement; SQLite's bound on parameters splits them.
    _portfolio(2, sponsor=sponsor, owner=owner, manager=manager)
    small = _queries()
    Notification.objects.all().delete()
    _portfolio(25, sponsor=sponsor, owner=owner, manager=manager)
    large = _queries()

    assert notes(Kind.ESCALATION).count() > 10
    assert small == large
    # An hourly run that finds everything sent reads and writes nothing more.
    assert large[1] == 6


def test_reminders_run_hourly_as_a_periodic_job():
    job = registry.registered()["reminders"]
    assert (job.every, job.run) == (3600, reminders.remind)
