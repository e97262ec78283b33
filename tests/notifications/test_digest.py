"""The weekly digest: what the week brought and the reader's own open work, once a week per
person, from a constant number of queries, sent on Monday morning in the organisation's time
zone or now by `manage.py send_digest`."""

from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates.stages import Stage, Transition
from jobs import registry
from notifications import digest, mail
from notifications.models import Kind, Notification, Preference
from portfolio.roles import Role
from readiness.models import PreLaunchWorkItem, ReadinessReview, ReviewItem, ReviewOutcome
from tests.factories import (
    ChecklistItemTemplateFactory,
    ChecklistTemplateFactory,
    GateDecisionFactory,
    InitiativeFactory,
    PurgatoryFlagFactory,
    UserFactory,
    bulk_portfolio,
)

# Monday 30 November 2026, 09:00 UTC (the tests' organisation time zone unless one says not).
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TODAY = date(2026, 11, 30)


def decision(initiative, transition, *, days_ago, by, **fields):
    moves = {
        Transition.APPROVE_FRAME: (Stage.FRAME, Stage.THIN_SLICE),
        Transition.PASS_REVIEW: (Stage.READINESS_REVIEW, Stage.NARROW_LAUNCH),
        Transition.WIDEN: (Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH),
        Transition.ROLL_BACK: (Stage.WIDE_LAUNCH, Stage.NARROW_LAUNCH),
        Transition.STOP: (Stage.THIN_SLICE, Stage.STOPPED),
    }
    was, now = moves[transition]
    return GateDecisionFactory(
        initiative=initiative, transition=transition, from_stage=was, to_stage=now,
        decided_by=by, decided_at=NOW - timedelta(days=days_ago), **fields,
    )  # fmt: skip


def open_item(initiative, *, assignee, opened_days_ago=10, outcome=ReviewOutcome.OPEN, **kw):
    template = ChecklistTemplateFactory()
    review = ReadinessReview.objects.create(
        initiative=initiative, template=template, opened_by=assignee,
        opened_at=NOW - timedelta(days=opened_days_ago), outcome=outcome,
    )  # fmt: skip
    return ReviewItem.objects.create(
        review=review,
        template_item=ChecklistItemTemplateFactory(template=template, **kw),
        assignee=assignee,
    )


def work(initiative, *, assignee, due, title):
    item = open_item(initiative, assignee=assignee, outcome=ReviewOutcome.FAILED)
    return PreLaunchWorkItem.objects.create(
        initiative=initiative, review_item=item, title=title, assignee=assignee, due_date=due
    )


def of(person, rows):
    return next(row for row in rows if row.recipient_id == person.pk)


def titles(section):
    return [item["initiative"] for item in section["items"]]


# Readers ---------------------------------------------------------------------------------------
def test_executives_and_programme_managers_read_it_and_others_may_opt_in(
    executive, manager, owner, viewer
):
    Preference.objects.create(user=viewer, kind=Kind.DIGEST, email=True)
    Preference.objects.create(user=manager, kind=Kind.DIGEST, email=False)

    rows = digest.build(now=NOW)

    assert {row.recipient_id for row in rows} == {executive.pk, viewer.pk}
    assert {row.key for row in rows} == {"digest:2026-W49"}
    assert rows[0].title == "Portfolio digest, week of 30 Nov 2026"
    assert rows[0].kind == Kind.DIGEST


def test_given_users_get_it_whoever_they_are(executive, owner):
    assert [row.recipient_id for row in digest.build(now=NOW, users=[owner])] == [owner.pk]


# Contents --------------------------------------------------------------------------------------
@pytest.fixture
def week(manager, executive):
    """A week of portfolio events, each with one like it from before the week."""
    made = {name: InitiativeFactory(title=name) for name in (
        "Raised", "Cleared", "Framed", "Launched", "Widened", "Rolled back", "Stopped", "Old",
    )}  # fmt: skip
    PurgatoryFlagFactory(initiative=made["Raised"], raised_at=NOW - timedelta(days=2))
    PurgatoryFlagFactory(initiative=made["Old"], raised_at=NOW - timedelta(days=8))
    PurgatoryFlagFactory(
        initiative=made["Cleared"], kind="no_business_owner",
        raised_at=NOW - timedelta(days=30), cleared_at=NOW - timedelta(days=1),
    )  # fmt: skip
    PurgatoryFlagFactory(
        initiative=made["Old"], kind="borrowed_data",
        raised_at=NOW - timedelta(days=30), cleared_at=NOW - timedelta(days=9),
    )  # fmt: skip
    decision(made["Framed"], Transition.APPROVE_FRAME, days_ago=3, by=manager)
    decision(made["Launched"], Transition.PASS_REVIEW, days_ago=4, by=manager)
    decision(made["Widened"], Transition.WIDEN, days_ago=5, by=executive)
    decision(made["Rolled back"], Transition.ROLL_BACK, days_ago=1, by=manager)
    decision(
        made["Stopped"], Transition.STOP, days_ago=6, by=executive,
        stop_reason="running_cost_too_high", rationale="Costs three times the old process.",
    )  # fmt: skip
    decision(made["Old"], Transition.PASS_REVIEW, days_ago=8, by=manager)
    return made


def test_the_digest_tells_what_the_past_seven_days_brought(week, executive):
    data = of(executive, digest.build(now=NOW)).data

    assert titles(data["flags_raised"]) == ["Raised"]
    assert data["flags_raised"]["items"][0]["label"] == "Stuck in stage"
    assert titles(data["flags_cleared"]) == ["Cleared"]
    assert titles(data["decisions"]) == ["Rolled back", "Framed", "Launched", "Widened", "Stopped"]
    assert data["decisions"]["count"] == 5
    # A roll back from wide launch into narrow launch is no launch.
    assert titles(data["launches"]) == ["Launched", "Widened"]
    assert data["stops"]["items"][0]["reason"] == "Running cost too high"
    assert data["stops"]["items"][0]["rationale"] == "Costs three times the old process."
    assert data["period"] == {"from": "23 Nov 2026", "to": "30 Nov 2026"}


def test_the_week_ends_at_the_moment_of_the_digest_and_includes_it(manager, executive):
    """A flag the job raised in the same moment (the demo does both at once) is news; one
    raised exactly seven days before belongs to last week's digest."""
    PurgatoryFlagFactory(initiative=InitiativeFactory(title="Now"), raised_at=NOW)
    PurgatoryFlagFactory(
        initiative=InitiativeFactory(title="Last week"), raised_at=NOW - timedelta(days=7)
    )
    decision(
        InitiativeFactory(title="Decided now"), Transition.APPROVE_FRAME, days_ago=0, by=manager
    )

    data = of(executive, digest.build(now=NOW)).data

    assert titles(data["flags_raised"]) == ["Now"]
    assert titles(data["decisions"]) == ["Decided now"]


def test_every_item_links_to_gantry_with_an_absolute_url(settings, week, executive):
    settings.GANTRY_BASE_URL = "https://gantry.example.com"
    data = of(executive, digest.build(now=NOW)).data

    slug = week["Launched"].slug
    assert data["launches"]["items"][0]["url"] == f"https://gantry.example.com/initiatives/{slug}/"
    urls = [
        item["url"]
        for name in ("flags_raised", "flags_cleared", "decisions", "launches", "stops")
        for item in data[name]["items"]
    ]
    assert urls and all(url.startswith("https://gantry.example.com/initiatives/") for url in urls)
    assert data["links"]["dashboard"] == "https://gantry.example.com/"


def test_conversion_this_quarter_against_last(manager, executive):
    """The dashboard's cohort rule: of those that first left framing in a quarter, the share
    that has since reached narrow launch."""
    this_quarter = [InitiativeFactory() for _ in range(4)]
    last_quarter = [InitiativeFactory() for _ in range(2)]
    for n, initiative in enumerate(this_quarter):
        decision(initiative, Transition.APPROVE_FRAME, days_ago=40 - n, by=manager)
    decision(this_quarter[0], Transition.PASS_REVIEW, days_ago=20, by=manager)
    for initiative in last_quarter:
        decision(initiative, Transition.APPROVE_FRAME, days_ago=100, by=manager)
        decision(initiative, Transition.PASS_REVIEW, days_ago=70, by=manager)
    # Framed again later: the cohort is the quarter it first left framing.
    decision(last_quarter[0], Transition.APPROVE_FRAME, days_ago=10, by=manager)
    # Left framing two quarters ago: in neither.
    decision(InitiativeFactory(), Transition.APPROVE_FRAME, days_ago=200, by=manager)

    conversion = of(executive, digest.build(now=NOW)).data["conversion"]

    assert conversion["this"] == {
        "quarter": "Q4 2026", "left_frame": 4, "reached_narrow": 1, "reached_wide": 0,
        "stopped": 0, "share": 25,
    }  # fmt: skip
    assert conversion["last"]["quarter"] == "Q3 2026"
    assert (conversion["last"]["left_frame"], conversion["last"]["share"]) == (2, 100)
    assert conversion["change"] == -75


def test_each_reader_sees_their_own_open_work_only(executive, manager, owner):
    initiative = InitiativeFactory(title="Claims triage")
    mine = work(initiative, assignee=executive, due=TODAY - timedelta(days=2), title="Mine")
    open_item(initiative, assignee=executive, opened_days_ago=5, title="My check")
    work(initiative, assignee=manager, due=TODAY, title="The manager's")
    work(initiative, assignee=owner, due=TODAY, title="The owner's")
    done = work(initiative, assignee=executive, due=TODAY, title="Done")
    PreLaunchWorkItem.objects.filter(pk=done.pk).update(status="done")
    open_item(initiative, assignee=executive, outcome=ReviewOutcome.PASSED, title="Closed")

    rows = digest.build(now=NOW, users=[executive, manager])

    own = of(executive, rows).data["work"]
    assert own["count"] == 2
    assert [(w["title"], w["due"], w["overdue"]) for w in own["items"]] == [
        ("Mine", mine.due_date.isoformat(), True),
        ("My check", None, False),  # a review in a stage without a limit has no due date
    ]
    assert own["items"][0]["url"].endswith("/my-work/")
    assert [w["title"] for w in of(manager, rows).data["work"]["items"]] == ["The manager's"]
    assert "You have 2 open items, 1 overdue." in of(executive, rows).body


# Once a week -----------------------------------------------------------------------------------
def test_the_digest_is_sent_once_a_week_per_person(executive, manager):
    assert digest.send(now=NOW) == 2
    assert digest.send(now=NOW + timedelta(hours=5)) == 0
    assert digest.send(now=NOW + timedelta(days=6)) == 0
    assert Notification.objects.filter(kind=Kind.DIGEST).count() == 2

    assert digest.send(now=NOW + timedelta(days=7)) == 2
    assert set(Notification.objects.values_list("key", flat=True)) == {
        "digest:2026-W49",
        "digest:2026-W50",
    }


# The command -----------------------------------------------------------------------------------
def test_send_digest_sends_now_to_every_reader(executive, manager, owner):
    out = StringIO()
    call_command("send_digest", stdout=out)

    assert out.getvalue().strip() == "Queued 2 digests."
    assert set(Notification.objects.values_list("recipient__username", flat=True)) == {
        "exec",
        "pm",
    }


def test_send_digest_to_named_users_only(executive, manager, owner):
    out = StringIO()
    call_command("send_digest", "--user", "owner", "--user", "pm", stdout=out)

    assert out.getvalue().strip() == "Queued 2 digests."
    assert set(Notification.objects.values_list("recipient__username", flat=True)) == {
        "owner",
        "pm",
    }


def test_send_digest_refuses_an_unknown_user_and_sends_nothing(executive):
    with pytest.raises(CommandError, match="No such user: nobody"):
        call_command("send_digest", "--user", "exec", "--user", "nobody", stdout=StringIO())
    assert not Notification.objects.exists()


# Monday morning --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("moment", "sent"),
    [
        (datetime(2026, 11, 30, 7, 59, tzinfo=UTC), 0),  # Monday, before the hour
        (datetime(2026, 11, 30, 8, 0, tzinfo=UTC), 1),  # Monday at the hour
        (datetime(2026, 11, 30, 23, 0, tzinfo=UTC), 1),  # Monday evening
        # Nothing went out on Monday (the workers were down): late rather than never.
        (datetime(2026, 12, 1, 9, 0, tzinfo=UTC), 1),  # Tuesday
        (datetime(2026, 11, 29, 9, 0, tzinfo=UTC), 1),  # Sunday, the week of 23 Nov
    ],
)
def test_the_job_sends_from_monday_at_the_digest_hour(settings, executive, moment, sent):
    settings.GANTRY_DIGEST_HOUR = 8
    assert digest.weekly(now=moment) == sent


def test_monday_morning_is_the_organisations(settings, executive):
    settings.GANTRY_DIGEST_HOUR = 8
    settings.TIME_ZONE = "America/New_York"  # UTC-5 in winter
    # 09:00 UTC on Monday is 04:00 in New York: not yet.
    assert digest.weekly(now=datetime(2026, 11, 30, 9, 0, tzinfo=UTC)) == 0
    # 13:00 UTC on Monday is 08:00 in New York.
    assert digest.weekly(now=datetime(2026, 11, 30, 13, 0, tzinfo=UTC)) == 1
    # 02:00 UTC on Tuesday is still Monday evening in New York: already sent this week.
    assert digest.weekly(now=datetime(2026, 12, 1, 2, 0, tzinfo=UTC)) == 0
    # And on any later day of that week.
    assert digest.weekly(now=datetime(2026, 12, 4, 12, 0, tzinfo=UTC)) == 0
    # The next Monday waits for 08:00 in New York again (12:00 UTC is 07:00 there).
    assert digest.weekly(now=datetime(2026, 12, 7, 12, 0, tzinfo=UTC)) == 0
    assert digest.weekly(now=datetime(2026, 12, 7, 13, 0, tzinfo=UTC)) == 1


def test_the_weekly_job_is_registered():
    job = registry.registered()["weekly-digest"]
    assert (job.every, job.run) == (900, digest.weekly)


# Email -----------------------------------------------------------------------------------------
def test_the_email_has_every_section_with_links(settings, week, executive):
    settings.GANTRY_BASE_URL = "https://gantry.example.com"
    work(week["Launched"], assignee=executive, due=TODAY + timedelta(days=3), title="Runbook")
    digest.send(now=NOW, users=[executive])
    note = Notification.objects.get(kind=Kind.DIGEST)

    email = mail.message(note)
    text = email.body

    html = email.alternatives[0][0]

    assert email.subject == "[Gantry] Portfolio digest, week of 30 Nov 2026"
    for heading in ("YOUR OPEN WORK (1)", "FLAGS RAISED (1)", "FLAGS CLEARED (1)",
                    "LAUNCHES (2)", "STOPS (1)", "GATE DECISIONS (5)",
                    "CONVERSION FROM PILOT TO PRODUCTION"):  # fmt: skip
        assert heading in text
    assert "Runbook (Launched), due 3 Dec 2026" in text
    assert "Running cost too high" in text
    launched = f"https://gantry.example.com/initiatives/{week['Launched'].slug}/"
    assert launched in text and f'href="{launched}"' in html
    assert 'href="https://gantry.example.com/my-work/"' in html
    assert "Stop these emails" in html and "<style" not in html


# Cost ------------------------------------------------------------------------------------------
DIGEST_QUERIES = 8


def _readers_with_work(count: int, start: int) -> None:
    initiative = InitiativeFactory()
    for n in range(start, start + count):
        person = UserFactory(username=f"reader-{n}", role=Role.PROGRAMME_MANAGER)
        work(initiative, assignee=person, due=timezone.localdate(), title=f"Work {n}")
        open_item(InitiativeFactory(), assignee=person)


def test_the_digest_costs_the_same_queries_at_10_and_500_initiatives(
    executive, django_assert_num_queries
):
    bulk_portfolio(10, decided_by=executive)
    _readers_with_work(2, 0)
    with django_assert_num_queries(DIGEST_QUERIES):
        small = digest.build()

    bulk_portfolio(490, decided_by=executive, start=10)
    _readers_with_work(20, 2)
    with django_assert_num_queries(DIGEST_QUERIES):
        large = digest.build()

    assert (len(small), len(large)) == (3, 23)
    assert large[0].data["decisions"]["count"] > small[0].data["decisions"]["count"] > 0
    assert all(row.data["work"]["count"] == 2 for row in large if row.recipient_id != executive.pk)


def test_building_for_given_users_reads_no_readers(executive):
    with CaptureQueriesContext(connection) as queries:
        digest.build(now=NOW, users=[executive])
    assert len(queries) == DIGEST_QUERIES - 1
