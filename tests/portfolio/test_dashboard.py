"""The portfolio dashboard: funnel, conversion, time in stage, flags, verdicts and decisions,
figured against hand-built portfolios; its filters, its links to the list, who sees it, and
what it costs in queries."""

import re
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gates.services import decide, import_history
from gates.stages import LAUNCHED, Stage, StopReason
from gates.stages import Transition as T
from metrics.models import Direction, Metric, Verdict
from pages import dashboard as dashboard_module
from pages import purgatory
from pages.listing import quarter_bounds
from portfolio.models import FlagKind, Initiative, User
from portfolio.roles import Role
from readiness.models import PreLaunchWorkItem, ReadinessReview, ReviewItem, ReviewOutcome
from tests.factories import (
    BusinessUnitFactory,
    ChecklistItemTemplateFactory,
    DataFeedFactory,
    InitiativeFactory,
    MetricSnapshotFactory,
    PurgatoryFlagFactory,
    UserFactory,
    bulk_portfolio,
    upkeep_line,
)
from tests.helpers import advance, criteria_passing

pytestmark = pytest.mark.django_db

ROUTE = {
    Stage.FRAME: [],
    Stage.THIN_SLICE: [T.APPROVE_FRAME],
    Stage.READINESS_REVIEW: [T.APPROVE_FRAME, T.SUBMIT_FOR_REVIEW],
    Stage.NARROW_LAUNCH: [T.APPROVE_FRAME, T.SUBMIT_FOR_REVIEW, T.PASS_REVIEW],
    Stage.WIDE_LAUNCH: [T.APPROVE_FRAME, T.SUBMIT_FOR_REVIEW, T.PASS_REVIEW, T.WIDEN],
}


def imported(*transitions, user, days_ago: float = 1, stop_reason=StopReason.OTHER, **fields):
    """A framed initiative whose history (oldest first, an hour apart) is imported through
    gates.services.import_history; the last decision, or its creation, was `days_ago` ago."""
    initiative = InitiativeFactory(framed=True, **fields)
    end = timezone.now() - timedelta(days=days_ago)
    start = end - timedelta(hours=len(transitions))
    Initiative.objects.filter(pk=initiative.pk).update(stage_entered_at=start)
    initiative.refresh_from_db()
    import_history(
        initiative=initiative,
        decisions=[
            {
                "transition": name,
                "user": user,
                "rationale": f"{name} for the test.",
                "decided_at": start + timedelta(hours=n + 1),
                "stop_reason": stop_reason if name == T.STOP else "",
            }
            for n, name in enumerate(transitions)
        ],
    )
    if initiative.stage in LAUNCHED:
        upkeep_line(initiative)  # a healthy launch, unflagged for its upkeep
    return initiative


def in_stage(stage, *, user, **kwargs):
    return imported(*ROUTE[stage], user=user, **kwargs)


def stopped_after(stage, reason, *, user, **kwargs):
    return imported(*ROUTE[stage], T.STOP, user=user, stop_reason=reason, **kwargs)


def dashboard(client, user, query: str = ""):
    client.force_login(user)
    response = client.get("/" + (f"?{query}" if query else ""))
    assert response.status_code == 200
    return response


def funnel(response) -> dict[str, int]:
    return {s["stage"]: s["count"] for s in response.context["stages"]}


# Funnel and conversion -----------------------------------------------------------------------
def test_funnel_and_conversion_of_a_hand_built_portfolio(client, executive, manager):
    for _ in range(3):
        in_stage(Stage.FRAME, user=manager)
    stopped_after(Stage.THIN_SLICE, StopReason.THRESHOLD_NOT_MET, user=manager)
    stopped_after(Stage.READINESS_REVIEW, StopReason.SUPERSEDED, user=manager)
    in_stage(Stage.NARROW_LAUNCH, user=manager)
    in_stage(Stage.WIDE_LAUNCH, user=manager)

    response = dashboard(client, executive)

    assert funnel(response) == {
        Stage.FRAME: 3,
        Stage.THIN_SLICE: 0,
        Stage.READINESS_REVIEW: 0,
        Stage.NARROW_LAUNCH: 1,
        Stage.WIDE_LAUNCH: 1,
        Stage.STOPPED: 2,
    }
    assert [s["stage"] for s in response.context["stages"]] == [
        Stage.FRAME,
        Stage.THIN_SLICE,
        Stage.READINESS_REVIEW,
        Stage.NARROW_LAUNCH,
        Stage.WIDE_LAUNCH,
        Stage.STOPPED,
    ]
    assert response.context["total"] == 7
    c = response.context["conversion"]
    assert (c.left_frame, c.reached_narrow, c.reached_wide, c.stopped, c.in_flight) == (
        4,
        2,
        1,
        2,
        1,
    )
    assert (c.narrow_share, c.wide_share, c.stopped_share, c.in_flight_share) == (50, 25, 50, 25)
    assert {r["reason"]: r["count"] for r in response.context["stopped"]} == {
        StopReason.THRESHOLD_NOT_MET: 1,
        StopReason.SUPERSEDED: 1,
    }
    body = response.content.decode()
    assert (
        "Of 4 that left framing: 1 reached wide launch, 2 reached narrow launch, 2 stopped, "
        "1 still in flight." in body
    )
    assert "Initiatives per stage: Frame 3, Thin slice 0, Readiness review 0, " in body


def test_conversion_ignores_initiatives_stopped_in_frame_and_counts_roll_backs(
    client, executive, manager
):
    stopped_after(Stage.FRAME, StopReason.NO_BUSINESS_OWNER, user=manager)
    stopped_after(Stage.FRAME, StopReason.STRATEGY_CHANGED, user=manager)
    stopped_after(Stage.NARROW_LAUNCH, StopReason.RUNNING_COST_TOO_HIGH, user=manager)
    imported(*ROUTE[Stage.NARROW_LAUNCH], T.ROLL_BACK, user=manager)
    in_stage(Stage.THIN_SLICE, user=manager)

    response = dashboard(client, executive)

    c = response.context["conversion"]
    assert (c.left_frame, c.reached_narrow, c.reached_wide, c.stopped, c.in_flight) == (
        3,
        2,
        0,
        1,
        2,
    )
    # The one list of stop reasons counts every stop, framing included.
    assert {r["reason"]: r["count"] for r in response.context["stopped"]} == {
        StopReason.NO_BUSINESS_OWNER: 1,
        StopReason.STRATEGY_CHANGED: 1,
        StopReason.RUNNING_COST_TOO_HIGH: 1,
    }
    assert funnel(response)[Stage.STOPPED] == 3
    assert funnel(response)[Stage.THIN_SLICE] == 2


def test_stop_reasons_are_one_list_counted_most_frequent_first(client, executive, manager):
    for _ in range(3):
        stopped_after(Stage.THIN_SLICE, StopReason.DATA_NOT_AVAILABLE, user=manager)
    stopped_after(Stage.THIN_SLICE, StopReason.SUPERSEDED, user=manager)
    for _ in range(2):
        stopped_after(Stage.FRAME, StopReason.OTHER, user=manager)

    response = dashboard(client, executive)

    assert [(r["label"], r["count"]) for r in response.context["stopped"]] == [
        ("Data not available", 3),
        ("Other", 2),
        ("Superseded", 1),
    ]
    body = response.content.decode()
    card = body[body.index('id="stopped-h"') :]
    shown = re.findall(r"<strong>(\d+)</strong> ([a-z ]+)</a>", card)
    assert [f"{n} {label}" for n, label in shown] == [
        "3 data not available",
        "2 other",
        "1 superseded",
    ]
    # The conversion card keeps no list of its own: it points at this one.
    conversion = body[body.index('id="conv-h"') : body.index('id="flags-h"')]
    assert "stop_reason=" not in conversion
    assert '<a href="#stopped-h">Stopped, and why</a>' in conversion


def test_an_empty_portfolio_shows_zeros_and_no_conversion(client, executive):
    response = dashboard(client, executive)

    assert set(funnel(response).values()) == {0}
    assert response.context["conversion"].left_frame == 0
    assert response.context["conversion"].narrow_share == 0
    assert response.context["flagged"] == []
    assert response.context["verdicts"]["total"] == 0
    assert "No initiative has left framing yet." in response.content.decode()


# Time in stage -------------------------------------------------------------------------------
def test_median_days_in_each_stage_against_its_limit(client, executive, manager):
    for days in (10, 20, 40):
        in_stage(Stage.THIN_SLICE, user=manager, days_ago=days)
    for days in (5, 9):
        in_stage(Stage.NARROW_LAUNCH, user=manager, days_ago=days)
    in_stage(Stage.FRAME, user=manager, days_ago=3)
    in_stage(Stage.WIDE_LAUNCH, user=manager, days_ago=100)
    stopped_after(Stage.THIN_SLICE, StopReason.OTHER, user=manager, days_ago=500)

    response = dashboard(client, executive)

    rows = {
        t["stage"]: (t["median"], t["count"], t["limit"]) for t in response.context["time_in_stage"]
    }
    assert rows == {
        Stage.FRAME: (3, 1, 30),
        Stage.THIN_SLICE: (20, 3, 90),
        Stage.READINESS_REVIEW: (None, 0, 30),
        Stage.NARROW_LAUNCH: (7, 2, 60),
        Stage.WIDE_LAUNCH: (100, 1, None),
    }
    assert "Median days in stage: Frame 3 (limit 30), Thin slice 20 (limit 90), " in (
        response.content.decode()
    )


# Flagged initiatives -------------------------------------------------------------------------
def flag(initiative, *, days_ago: float, kind=FlagKind.STUCK, cleared: bool = False):
    now = timezone.now()
    return PurgatoryFlagFactory(
        initiative=initiative,
        kind=kind,
        raised_at=now - timedelta(days=days_ago),
        cleared_at=now if cleared else None,
    )


def test_flagged_initiatives_worst_first_more_flags_then_longest_flagged(
    client, executive, manager
):
    two_recent = in_stage(Stage.THIN_SLICE, user=manager, title="Two flags, recent")
    flag(two_recent, days_ago=1)
    flag(two_recent, days_ago=1, kind=FlagKind.BORROWED_DATA)
    flag(two_recent, days_ago=30, kind=FlagKind.NO_SUCCESS_METRIC, cleared=True)
    one_old = in_stage(Stage.THIN_SLICE, user=manager, title="One flag, old")
    flag(one_old, days_ago=10)
    two_older = in_stage(Stage.NARROW_LAUNCH, user=manager, title="Two flags, older")
    flag(two_older, days_ago=5, kind=FlagKind.BELOW_THRESHOLD)
    flag(two_older, days_ago=2)
    one_new = in_stage(Stage.FRAME, user=manager, title="One flag, new")
    flag(one_new, days_ago=2)
    only_cleared = in_stage(Stage.THIN_SLICE, user=manager, title="Only a cleared flag")
    flag(only_cleared, days_ago=50, cleared=True)

    response = dashboard(client, executive)

    shown = response.context["flagged"]
    assert [i.title for i in shown] == [
        "Two flags, older",
        "Two flags, recent",
        "One flag, old",
        "One flag, new",
    ]
    assert [i.flag_count for i in shown] == [2, 2, 1, 1]
    assert response.context["flagged_count"] == 4
    # The cleared flag neither counts nor dates the recent pair.
    assert [len(i.active_flags) for i in shown] == [2, 2, 1, 1]
    assert shown[1].since == min(f.raised_at for f in shown[1].active_flags)


def test_the_flagged_table_names_whom_to_chase(client, executive, manager):
    owner = UserFactory(first_name="Olu", last_name="Adeyemi", role=Role.OWNER)
    stuck = in_stage(Stage.THIN_SLICE, user=manager, title="Stuck one")
    Initiative.objects.filter(pk=stuck.pk).update(business_owner=owner, sponsor=executive)
    flag(stuck, days_ago=3)
    body = dashboard(client, executive).content.decode()
    assert "Whom to chase" in body
    assert "Business owner: Olu Adeyemi" in body
    assert f"Sponsor: {executive}" in body


def test_flagged_shows_at_most_twelve_and_counts_them_all(client, executive, manager):
    for n in range(13):
        flag(in_stage(Stage.THIN_SLICE, user=manager), days_ago=n + 1)

    response = dashboard(client, executive)

    assert len(response.context["flagged"]) == 12
    assert response.context["flagged_count"] == 13


def test_flags_raised_by_the_job_show_with_their_reasons(client, executive, manager):
    initiative = in_stage(Stage.THIN_SLICE, user=manager, business_owner=None)
    purgatory.sync_flags()

    body = dashboard(client, executive).content.decode()

    assert "No business owner is named, yet it left framing." in body
    assert "No live data feed: its data is borrowed, not integrated." in body
    assert initiative.get_absolute_url() in body


def kpi(response, label_start: str) -> dict:
    [found] = [k for k in response.context["kpis"] if k["label"].startswith(label_start)]
    return found


def test_the_stuck_kpi_counts_only_initiatives_stuck_in_their_stage(client, executive, manager):
    stuck = in_stage(Stage.THIN_SLICE, user=manager, days_ago=100, title="Stuck and borrowed")
    in_stage(Stage.THIN_SLICE, user=manager, business_owner=None, title="No owner, on time")
    launched_after_a_failed_review(user=manager, overdue_days=30, title="Blocked by work")
    purgatory.sync_flags()

    response = dashboard(client, executive)

    assert response.context["flagged_count"] == 3  # every kind
    stuck_kpi = kpi(response, "stuck")
    assert stuck_kpi["count"] == 1
    assert stuck_kpi["label"] == "stuck: longer in their stage than its limit"
    assert [i.title for i in listing_of(client, stuck_kpi)] == [stuck.title]
    blocked_kpi = kpi(response, "blocked")
    assert blocked_kpi["count"] == 1
    assert [i.title for i in listing_of(client, blocked_kpi)] == ["Blocked by work"]
    assert [k["label"] for k in response.context["kpis"]] == [
        "initiatives in this view",
        "in wide launch: in production now",
        "of 1 launched meet their ship threshold",
        "stuck: longer in their stage than its limit",
        "blocked at their next gate by overdue work or an overdue review",
        "stopped with a reason: decisions, not failures",
    ]


def listing_of(client, figure: dict) -> list:
    response = client.get(f"/initiatives/?{figure['query']}")
    return list(response.context["page"])


def test_a_launch_blocked_by_overdue_work_is_shown_blocked_not_just_meeting(
    client, executive, manager
):
    owner = UserFactory(first_name="Mei", last_name="Chen", role=Role.OWNER)
    blocked = launched_after_a_failed_review(
        user=manager, overdue_days=120, title="Motor damage photo estimate"
    )
    with_primary(blocked, verdict=Verdict.MEETING, pilot=1.64, unit="days", threshold="2",
                 higher=False)  # fmt: skip
    PreLaunchWorkItem.objects.filter(initiative=blocked).update(assignee=owner)
    DataFeedFactory(initiative=blocked, last_fresh_at=timezone.now())
    purgatory.sync_flags()

    response = dashboard(client, executive)

    [row] = response.context["verdicts"]["rows"]
    assert row["snapshot"].verdict == Verdict.MEETING
    assert row["blocked"].kind == FlagKind.BLOCKED_AT_GATE
    assert "Widen launch waits on 6 overdue pre-launch work items" in row["blocked"].reason
    assert "(Mei Chen), due " in row["blocked"].reason
    assert response.context["verdicts"]["blocked"]["count"] == 1
    assert kpi(response, "blocked")["count"] == 1
    [shown] = response.context["flagged"]
    assert [f.kind for f in shown.active_flags] == [FlagKind.BLOCKED_AT_GATE]
    assert shown.oldest_age == "blocked at its gate for 119 days"
    body = response.content.decode()
    assert '<span class="verdict verdict-blocked">Blocked at gate</span>' in body


def test_flag_ages_are_the_ages_of_the_problems_not_of_the_flags(client, executive, manager):
    stuck = in_stage(Stage.THIN_SLICE, user=manager, days_ago=111, title="Stuck")
    DataFeedFactory(initiative=stuck, last_fresh_at=timezone.now())
    stale = in_stage(Stage.THIN_SLICE, user=manager, days_ago=20, title="Stale")
    DataFeedFactory(
        initiative=stale, is_stale=True, last_fresh_at=timezone.now() - timedelta(days=4, hours=1)
    )
    below = in_stage(Stage.NARROW_LAUNCH, user=manager, days_ago=40, title="Below")
    DataFeedFactory(initiative=below, last_fresh_at=timezone.now())
    metric = below.metrics.get(is_primary=True)
    for days in (30, 10, 0):
        MetricSnapshotFactory(
            metric=metric,
            verdict=Verdict.BELOW,
            computed_at=timezone.now() - timedelta(days=days),
            latest=days == 0,
        )
    purgatory.sync_flags()  # every flag raised just now

    response = dashboard(client, executive)

    ages = {i.title: i.oldest_age for i in response.context["flagged"]}
    assert ages == {
        "Stuck": "111 days in thin slice",
        # A day's freshness window missed 3 days ago.
        "Stale": "without fresh live data for 3 days",
        "Below": "below threshold for 30 days",
    }
    body = response.content.decode()
    assert "111 days in thin slice" in body
    assert "minute" not in body[body.index('id="flags-h"') : body.index('id="verdict-h"')]


def test_flags_recorded_before_their_problem_was_dated_show_when_they_were_raised(
    client, executive, manager
):
    stuck = in_stage(Stage.FRAME, user=manager, days_ago=50, title="Old flag")
    flag(stuck, days_ago=5)

    response = dashboard(client, executive)

    assert response.context["flagged"][0].oldest_age == "5 days in frame"


# Verdicts ------------------------------------------------------------------------------------
def with_verdict(stage, verdict, *, user, title, **fields):
    initiative = in_stage(stage, user=user, title=title, **fields)
    if verdict is not None:
        MetricSnapshotFactory(
            metric=initiative.metrics.get(is_primary=True), verdict=verdict, latest=True
        )
    return initiative


def test_verdict_counts_of_launched_initiatives_worst_first(client, executive, manager):
    with_verdict(Stage.NARROW_LAUNCH, Verdict.MEETING, user=manager, title="A meeting")
    with_verdict(Stage.WIDE_LAUNCH, Verdict.MEETING, user=manager, title="B meeting")
    with_verdict(Stage.NARROW_LAUNCH, Verdict.BELOW, user=manager, title="C below")
    with_verdict(Stage.WIDE_LAUNCH, Verdict.STALE, user=manager, title="D stale")
    with_verdict(Stage.NARROW_LAUNCH, None, user=manager, title="E not computed")
    with_verdict(
        Stage.NARROW_LAUNCH, Verdict.INSUFFICIENT_DATA, user=manager, title="F insufficient"
    )
    with_verdict(Stage.THIN_SLICE, Verdict.BELOW, user=manager, title="G not launched")
    with_verdict(Stage.WIDE_LAUNCH, Verdict.ERROR, user=manager, title="H error")

    response = dashboard(client, executive)

    verdicts = response.context["verdicts"]
    assert [(v["verdict"], v["count"]) for v in verdicts["counts"]] == [
        (Verdict.MEETING, 2),
        (Verdict.BELOW, 1),
        (Verdict.INSUFFICIENT_DATA, 1),
        (Verdict.STALE, 1),
        (Verdict.ERROR, 1),
        ("none", 1),
    ]
    assert verdicts["total"] == 7
    assert [r["initiative"].title for r in verdicts["rows"]] == [
        "H error",
        "C below",
        "D stale",
        "E not computed",
        "F insufficient",
        "A meeting",
        "B meeting",
    ]


def test_launched_status_shows_direction_units_and_one_precision(client, executive, manager):
    rows = [
        ("After-call work", Verdict.MEETING, 40.14, "seconds", "45", False),
        ("Remittances auto-applied", Verdict.BELOW, 75.7, "%", "80", True),
        ("Claims per hour", Verdict.MEETING, 5.153, "claims", "5", True),
        ("Repair lead time", Verdict.MEETING, 1.661, "days", "2", False),
        ("Alerts per analyst-hour", Verdict.STALE, 13, "alerts", "12.25", True),
    ]
    for title, verdict, pilot, unit, threshold, higher in rows:
        initiative = in_stage(Stage.NARROW_LAUNCH, user=manager, title=title)
        with_primary(
            initiative, verdict=verdict, pilot=pilot, unit=unit, threshold=threshold, higher=higher
        )

    response = dashboard(client, executive)

    shown = {
        r["initiative"].title: (r["value"], r["threshold"], r["direction"], r["gap"])
        for r in response.context["verdicts"]["rows"]
    }
    assert shown == {
        "After-call work": (
            "40.1 seconds",
            "45.0 seconds",
            "lower is better",
            "4.9 seconds better than the threshold",
        ),
        "Remittances auto-applied": (
            "75.7 %",
            "80.0 %",
            "higher is better",
            "4.3 percentage points worse than the threshold",
        ),
        "Claims per hour": (
            "5.15 claims",
            "5.00 claims",
            "higher is better",
            "0.15 claims better than the threshold",
        ),
        "Repair lead time": (
            "1.66 days",
            "2.00 days",
            "lower is better",
            "0.34 days better than the threshold",
        ),
        # The threshold keeps the decimals it was set with; the value takes as many.
        "Alerts per analyst-hour": (
            "13.00 alerts",
            "12.25 alerts",
            "higher is better",
            "0.75 alerts better than the threshold",
        ),
    }
    body = response.content.decode()
    table = body[body.index('id="verdict-h"') : body.index('id="time-h"')]
    assert '<span aria-hidden="true">↓</span> lower is better' in table
    assert '<span aria-hidden="true">↑</span> higher is better' in table
    assert ">40.1 seconds</td>" in table and ">45.0 seconds</td>" in table
    assert ">75.7 %</td>" in table and ">80.0 %</td>" in table


# Recent decisions ----------------------------------------------------------------------------
def test_recent_decisions_are_the_eight_newest(client, executive, manager):
    for n in range(5):
        in_stage(Stage.READINESS_REVIEW, user=manager, days_ago=n + 1, title=f"Initiative {n}")

    response = dashboard(client, executive)

    shown = list(response.context["recent_decisions"])
    assert len(shown) == 8
    assert [d.decided_at for d in shown] == sorted((d.decided_at for d in shown), reverse=True)
    newest = [
        (d.initiative.title, d.transition) for d in shown[:2]
    ]  # the last two decisions of the newest initiative
    assert newest == [
        ("Initiative 0", T.SUBMIT_FOR_REVIEW),
        ("Initiative 0", T.APPROVE_FRAME),
    ]
    assert "Submit for readiness review" in response.content.decode()


# As of, and on paper ---------------------------------------------------------------------------
def test_the_dashboard_says_when_its_figures_were_computed(client, executive, manager):
    in_stage(Stage.FRAME, user=manager)
    before = timezone.now()

    first = dashboard(client, executive)
    again = dashboard(client, executive)

    as_of = first.context["as_of"]
    assert before <= as_of <= timezone.now()
    assert again.context["as_of"] == as_of  # served from the cache, computed then
    assert f'<time datetime="{as_of.isoformat()}">' in first.content.decode()


def test_the_printout_names_the_filter_the_date_and_the_person(client, executive, manager):
    unit = BusinessUnitFactory(slug="claims", name="Claims")
    sponsor = UserFactory(first_name="Priya", last_name="Raman", role=Role.EXECUTIVE)
    in_stage(Stage.FRAME, user=manager, business_unit=unit, sponsor=sponsor)

    body = dashboard(client, executive, f"unit=claims&sponsor={sponsor.pk}").content.decode()

    meta = re.search(r'<p class="print-only print-meta">(.*?)</p>', body).group(1)
    today = timezone.localtime().strftime("%-d %b %Y")
    assert "business unit: Claims · sponsor: Priya Raman" in meta
    assert f"printed {today}" in meta and meta.endswith(f"by {executive}")
    assert "figures as of " in meta
    unfiltered = dashboard(client, executive).content.decode()
    assert "no filter: business unit: all business units · sponsor: all sponsors" in unfiltered


# Trends --------------------------------------------------------------------------------------
def history(*steps, user, created, **fields):
    """An initiative created at `created` whose decisions (transition, when) are imported."""
    initiative = InitiativeFactory(framed=True, created_at=created, **fields)
    Initiative.objects.filter(pk=initiative.pk).update(stage_entered_at=created)
    initiative.refresh_from_db()
    import_history(
        initiative=initiative,
        decisions=[
            {
                "transition": name,
                "user": user,
                "rationale": f"{name} for the test.",
                "decided_at": when,
                "stop_reason": StopReason.OTHER if name == T.STOP else "",
            }
            for name, when in steps
        ],
    )
    return initiative


def test_trends_by_quarter_and_month(client, executive, manager):
    now = timezone.now()
    quarters = dashboard_module.last_quarters(now)
    start = {q: quarter_bounds(q)[0] for q in quarters}

    def moment(quarter, days):
        return min(start[quarter] + timedelta(days=days), now - timedelta(hours=1))

    oldest, previous, current = quarters[0], quarters[2], quarters[3]
    # Left framing in the oldest quarter: one launched 30 days after creation and widened,
    # one stopped, one still in thin slice.
    history(
        (T.APPROVE_FRAME, moment(oldest, 10)),
        (T.SUBMIT_FOR_REVIEW, moment(oldest, 20)),
        (T.PASS_REVIEW, moment(oldest, 30)),
        (T.WIDEN, moment(previous, 5)),
        user=manager,
        created=moment(oldest, 0),
    )
    history((T.APPROVE_FRAME, moment(oldest, 10)), (T.STOP, moment(oldest, 40)),
            user=manager, created=moment(oldest, 1))  # fmt: skip
    history((T.APPROVE_FRAME, moment(oldest, 11)), user=manager, created=moment(oldest, 2))
    # Left framing in the previous quarter, launched 50 days after creation.
    history(
        (T.APPROVE_FRAME, moment(previous, 10)),
        (T.SUBMIT_FOR_REVIEW, moment(previous, 20)),
        (T.PASS_REVIEW, moment(previous, 50)),
        user=manager,
        created=moment(previous, 0),
    )
    # Left framing before the table's first quarter: in no row.
    history((T.APPROVE_FRAME, start[oldest] - timedelta(days=5)), user=manager,
            created=start[oldest] - timedelta(days=6))  # fmt: skip
    stuck = in_stage(Stage.FRAME, user=manager)
    flag(stuck, days_ago=0)
    flag(stuck, days_ago=0, kind=FlagKind.NO_BUSINESS_OWNER, cleared=True)

    trends = dashboard(client, executive).context["trends"]

    cohorts = {c["quarter"]: c for c in trends["cohorts"]}
    assert [c["quarter"] for c in trends["cohorts"]] == quarters
    assert {k: cohorts[oldest][k] for k in ("left_frame", "reached_narrow", "reached_wide",
            "stopped", "launch_share")} == {"left_frame": 3, "reached_narrow": 1,
            "reached_wide": 1, "stopped": 1, "launch_share": 33}  # fmt: skip
    assert (cohorts[previous]["left_frame"], cohorts[previous]["reached_narrow"]) == (1, 1)
    assert cohorts[quarters[1]]["left_frame"] == 0
    assert cohorts[quarters[1]]["launch_share"] is None
    assert cohorts[current]["current"]
    launches = {q["quarter"]: (q["launched"], q["median_days"]) for q in trends["to_launch"]}
    assert launches[oldest] == (1, 30)
    assert launches[previous] == (1, 50)
    assert launches[current] == (0, None)
    this_month = trends["flag_months"][-1]
    assert (this_month["raised"], this_month["cleared"]) == (2, 1)
    assert this_month["current"] and len(trends["flag_months"]) == 6


# Filters -------------------------------------------------------------------------------------
def figures(response) -> dict:
    """Every figure the dashboard shows, in comparable form."""
    c = response.context["conversion"]
    return {
        "total": response.context["total"],
        "funnel": funnel(response),
        "conversion": (c.left_frame, c.reached_narrow, c.reached_wide, c.stopped, c.in_flight),
        "stopped": sorted((r["reason"], r["count"]) for r in response.context["stopped"]),
        "flagged": [i.pk for i in response.context["flagged"]],
        "flagged_count": response.context["flagged_count"],
        "verdicts": [(v["verdict"], v["count"]) for v in response.context["verdicts"]["counts"]],
        "verdict_rows": [r["metric"].pk for r in response.context["verdicts"]["rows"]],
        "time_in_stage": [
            (t["stage"], t["median"], t["count"]) for t in response.context["time_in_stage"]
        ],
        "recent": [d.pk for d in response.context["recent_decisions"]],
    }


def small_portfolio(*, user, unit, sponsor, shape: int) -> None:
    """A portfolio in one unit for one sponsor; `shape` varies how many of each there are."""
    people = {"business_unit": unit, "sponsor": sponsor}
    for n in range(shape):
        in_stage(Stage.FRAME, user=user, days_ago=n + 2, **people)
    for n in range(shape + 1):
        in_stage(Stage.THIN_SLICE, user=user, days_ago=10 * n + 1, business_owner=None, **people)
    with_verdict(Stage.NARROW_LAUNCH, Verdict.BELOW, user=user, title=f"Below {shape}", **people)
    if shape > 1:
        in_stage(Stage.WIDE_LAUNCH, user=user, **people)
    stopped_after(
        Stage.THIN_SLICE,
        StopReason.SUPERSEDED if shape > 1 else StopReason.OTHER,
        user=user,
        **people,
    )


def test_unit_and_sponsor_filters_narrow_every_figure(client, executive, manager):
    unit_a, unit_b = BusinessUnitFactory(slug="claims"), BusinessUnitFactory(slug="retail")
    sponsor_a, sponsor_b = UserFactory(role=Role.EXECUTIVE), UserFactory(role=Role.EXECUTIVE)
    small_portfolio(user=manager, unit=unit_a, sponsor=sponsor_a, shape=1)
    purgatory.sync_flags()
    only_a = figures(dashboard(client, executive))
    assert only_a["total"] == 5
    assert only_a["flagged_count"] == 3  # two thin slices without owner, none with a feed

    small_portfolio(user=manager, unit=unit_b, sponsor=sponsor_b, shape=3)
    purgatory.sync_flags()
    everything = figures(dashboard(client, executive))
    assert everything["total"] == 5 + 10

    assert figures(dashboard(client, executive, "unit=claims")) == only_a
    assert figures(dashboard(client, executive, f"sponsor={sponsor_a.pk}")) == only_a
    assert figures(dashboard(client, executive, f"unit=claims&sponsor={sponsor_a.pk}")) == only_a
    crossed = figures(dashboard(client, executive, f"unit=claims&sponsor={sponsor_b.pk}"))
    assert crossed["total"] == 0
    assert crossed["flagged"] == crossed["recent"] == crossed["verdict_rows"] == []
    assert crossed["conversion"] == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "query", ["unit=nowhere", "sponsor=abc", "sponsor=999999", "sponsor=99999999999999999999"]
)
def test_an_invalid_dashboard_filter_is_ignored(client, executive, manager, query):
    in_stage(Stage.THIN_SLICE, user=manager)

    response = dashboard(client, executive, query)

    assert response.context["total"] == 1


# Links to the list ---------------------------------------------------------------------------
class Anchors(HTMLParser):
    """(href, class, text) of every link on a page."""

    def __init__(self):
        super().__init__()
        self.found: list[list[str]] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            attrs = dict(attrs)
            self._open.append([attrs.get("href", ""), attrs.get("class") or "", ""])

    def handle_data(self, data):
        for anchor in self._open:
            anchor[2] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._open:
            href, cls, text = self._open.pop()
            self.found.append((href, cls, " ".join(text.split())))


def anchors(response) -> list[tuple[str, str, str]]:
    parser = Anchors()
    parser.feed(response.content.decode())
    return [a for a in parser.found if a[0].startswith("/initiatives/?")]


def listed(client, href: str) -> int:
    response = client.get(href)
    assert response.status_code == 200
    return response.context["page"].paginator.count


def numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def with_primary(initiative, *, verdict, pilot, unit="%", threshold="80", higher=True):
    """Give the initiative's primary metric a unit, direction, threshold and a latest
    snapshot saying `verdict` with the pilot value `pilot`."""
    metric = initiative.metrics.get(is_primary=True)
    Metric.objects.filter(pk=metric.pk).update(
        unit=unit,
        ship_threshold=Decimal(threshold),
        direction=Direction.HIGHER if higher else Direction.LOWER,
    )
    metric.refresh_from_db()
    MetricSnapshotFactory(metric=metric, verdict=verdict, pilot_value=pilot, latest=True)
    return initiative


def launched_after_a_failed_review(*, user, overdue_days: int, **fields):
    """A narrow launch whose first readiness review failed, leaving pre-launch work (one item
    per unchecked checklist item) due `overdue_days` ago (in the future when negative)."""
    initiative = InitiativeFactory(framed=True, **fields)
    advance(initiative, Stage.READINESS_REVIEW, user=user)
    with criteria_passing():
        decide(initiative=initiative, transition=T.FAIL_REVIEW, user=user, rationale="Not ready.")
    advance(initiative, Stage.NARROW_LAUNCH, user=user)
    due = timezone.localdate() - timedelta(days=overdue_days)
    PreLaunchWorkItem.objects.filter(initiative=initiative).update(due_date=due)
    return initiative


def in_review_for(days: int, *, user, **fields):
    """In readiness review, its review open (and the stage entered) `days` days ago."""
    initiative = advance(
        InitiativeFactory(framed=True, **fields), Stage.READINESS_REVIEW, user=user
    )
    then = timezone.now() - timedelta(days=days)
    ReadinessReview.objects.filter(initiative=initiative).update(opened_at=then)
    Initiative.objects.filter(pk=initiative.pk).update(stage_entered_at=then)
    return initiative


def with_running_cost(initiative, *, per_transaction: str, volume: int, currency: str = "EUR"):
    """The numbers item of the initiative's passed readiness review gives its running cost;
    an initiative whose history was imported gets a passed review with that one item."""
    items = ReviewItem.objects.filter(
        review__initiative=initiative,
        review__outcome=ReviewOutcome.PASSED,
        template_item__asks_numbers=True,
    )
    if not items.exists():
        template_item = ChecklistItemTemplateFactory(asks_numbers=True)
        review = ReadinessReview.objects.create(
            initiative=initiative,
            template=template_item.template,
            opened_by=initiative.delivery_lead or UserFactory(),
            opened_at=timezone.now() - timedelta(days=3),
            outcome=ReviewOutcome.PASSED,
            decided_at=timezone.now() - timedelta(days=2),
        )
        ReviewItem.objects.create(review=review, template_item=template_item, checked=True)
    updated = items.update(
        cost_per_transaction=Decimal(per_transaction), monthly_volume=volume, currency=currency
    )
    assert updated == 1
    return initiative


def linked_portfolio(*, user, unit, sponsor):
    """Every kind of figure the dashboard shows, several times over: each stage, flags of
    every kind the job raises, stops with reasons (in framing and after), a roll back from
    wide launch, verdicts of every kind, a launch with no primary metric, a launch blocked by
    overdue work, a review open past its limit, and running costs in two currencies."""
    people = {"business_unit": unit, "sponsor": sponsor}
    for days in (3, 40):
        in_stage(Stage.FRAME, user=user, days_ago=days, **people)
    for days in (5, 100, 120):
        in_stage(Stage.THIN_SLICE, user=user, days_ago=days, business_owner=None, **people)
    in_stage(Stage.READINESS_REVIEW, user=user, **people)
    in_review_for(45, user=user, **people)
    below = with_verdict(
        Stage.NARROW_LAUNCH, Verdict.BELOW, user=user, title="Narrow below", **people
    )
    with_running_cost(below, per_transaction="0.04", volume=20_000)
    with_verdict(Stage.NARROW_LAUNCH, None, user=user, title="Narrow not computed", **people)
    meeting = with_verdict(
        Stage.WIDE_LAUNCH, Verdict.MEETING, user=user, title="Wide meeting", **people
    )
    with_running_cost(meeting, per_transaction="0.50", volume=3_000)
    stale = with_verdict(Stage.WIDE_LAUNCH, Verdict.STALE, user=user, title="Wide stale", **people)
    with_running_cost(stale, per_transaction="1.25", volume=1_000, currency="USD")
    with_verdict(Stage.NARROW_LAUNCH, Verdict.ERROR, user=user, title="Narrow error", **people)
    no_metric = in_stage(Stage.WIDE_LAUNCH, user=user, title="Wide, no metric", **people)
    Metric.objects.filter(initiative=no_metric).delete()
    blocked = launched_after_a_failed_review(user=user, overdue_days=120, **people)
    with_primary(blocked, verdict=Verdict.MEETING, pilot=85.0)
    imported(*ROUTE[Stage.WIDE_LAUNCH], T.ROLL_BACK, user=user, title="Rolled back", **people)
    stopped_after(Stage.THIN_SLICE, StopReason.SUPERSEDED, user=user, **people)
    stopped_after(Stage.FRAME, StopReason.NO_BUSINESS_OWNER, user=user, **people)
    stopped_after(Stage.WIDE_LAUNCH, StopReason.RUNNING_COST_TOO_HIGH, user=user, **people)
    stopped_after(Stage.NARROW_LAUNCH, StopReason.SUPERSEDED, user=user, **people)


def is_initiative_page(href: str) -> bool:
    """An initiative's page or its review's: a title, or a figure linked to its source."""
    return re.fullmatch(r"/initiatives/[-\w]+/(reviews/\d+/)?", href) is not None


@pytest.mark.parametrize("scoped", [False, True])
def test_every_link_on_a_number_lists_exactly_that_many_initiatives(
    client, executive, manager, scoped
):
    """Every link whose text holds a number (its first one is the count) is followed: the
    list it opens holds exactly that many initiatives, within the dashboard's filter."""
    unit, sponsor = BusinessUnitFactory(slug="claims"), UserFactory(role=Role.EXECUTIVE)
    linked_portfolio(user=manager, unit=unit, sponsor=sponsor)
    linked_portfolio(user=manager, unit=BusinessUnitFactory(), sponsor=UserFactory())
    purgatory.sync_flags()
    query = f"unit=claims&sponsor={sponsor.pk}" if scoped else ""

    response = dashboard(client, executive, query)
    parser = Anchors()
    parser.feed(response.content.decode())

    checked = []
    for href, cls, text in parser.found:
        if not re.search(r"\d", text) or is_initiative_page(href):
            continue  # not a number, or an initiative's title
        # The list of initiatives, or of budget requests for the spend figures.
        assert href.startswith(("/initiatives/?", "/budget/?")), (href, text)
        params = parse_qs(urlsplit(href).query)
        if scoped:
            assert params["unit"] == ["claims"] and params["sponsor"] == [str(sponsor.pk)], href
        expected = numbers(text)[0]
        assert listed(client, href) == expected, (href, text)
        checked.append((href, cls, text))

    # KPIs 6, funnel 6, conversion 5, flag kinds 6 and "all flagged" 1, verdicts 6 (five
    # verdicts and "not computed") + "no primary metric" + "blocked" + the launched total,
    # time in stage 5, stop reasons 3, cohorts 4 x 4 and launches 4, the last 7 days' changes
    # 3, running costs in EUR and USD and the launches without one 3, and "all flagged" again
    # under "Who is stuck" 1.
    initiatives = [c for c in checked if c[0].startswith("/initiatives/")]
    assert len(initiatives) == 6 + 6 + 5 + 7 + 9 + 5 + 3 + 16 + 4 + 3 + 3 + 1
    # Budget (each launch's upkeep line and its request): requested, approved, awaiting and
    # rejected in EUR, and the requests not backed by a met threshold.
    assert len(checked) - len(initiatives) == 4 + 1
    kpis = [numbers(text)[0] for _, cls, text in checked if cls == "kpi"]
    # Per unit: 19 initiatives, 3 in wide launch now, 2 launched meeting their threshold;
    # stuck: a frame at 40 days, two thin slices past 90, the review at 45; blocked: the
    # overdue work and the late review.
    assert kpis == [n * (1 if scoped else 2) for n in (19, 3, 2, 4, 2, 4)]


# Who sees it ---------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["viewer", "owner", "executive", "manager"])
def test_every_role_sees_the_dashboard(client, request, manager, role):
    in_stage(Stage.THIN_SLICE, user=manager)
    client.force_login(request.getfixturevalue(role))

    response = client.get("/")

    assert response.status_code == 200
    assert response.context["total"] == 1


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/?unit=claims")

    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/%3Funit%3Dclaims"


# Queries -------------------------------------------------------------------------------------
def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("query", ["", "unit=bulk-unit-1", "unit=bulk-unit-1&sponsor=SPONSOR"])
def test_dashboard_queries_do_not_grow_with_the_portfolio(client, executive, manager, query):
    bulk_portfolio(10, decided_by=manager)
    sponsor = User.objects.get(username="bulk-person-0").pk
    url = "/?" + query.replace("SPONSOR", str(sponsor))
    client.force_login(executive)
    client.get(url)  # caches per process (content types, limits of the session) are warm
    cache.clear()  # measure the figures being computed, not read from the cache
    small = count_queries(client, url)
    response = client.get(url)
    assert response.context["flagged"] and response.context["verdicts"]["rows"]
    assert list(response.context["recent_decisions"])

    bulk_portfolio(490, decided_by=manager, start=10)

    assert Initiative.objects.count() == 500
    cache.clear()
    assert count_queries(client, url) == small


def test_blocked_flags_status_rows_and_trends_cost_no_query_per_initiative(
    client, executive, manager
):
    def portfolio(n: int) -> None:
        for _ in range(n):
            blocked = launched_after_a_failed_review(user=manager, overdue_days=20)
            with_primary(blocked, verdict=Verdict.BELOW, pilot=70.5)
            in_review_for(40, user=manager)
            stopped_after(Stage.THIN_SLICE, StopReason.SUPERSEDED, user=manager)
        purgatory.sync_flags()

    portfolio(1)
    client.force_login(executive)
    client.get("/")
    cache.clear()
    small = count_queries(client, "/")
    response = client.get("/")
    assert response.context["verdicts"]["rows"][0]["blocked"] is not None
    assert kpi(response, "blocked")["count"] == 2

    portfolio(4)

    cache.clear()
    assert count_queries(client, "/") == small
    assert kpi(client.get("/"), "blocked")["count"] == 10


def test_the_dashboard_is_served_from_the_cache_until_something_it_shows_changes(
    client, executive, manager
):
    initiative = in_stage(Stage.FRAME, user=manager)
    client.force_login(executive)
    cache.clear()
    computed = count_queries(client, "/")
    cached = count_queries(client, "/")
    assert cached < computed
    assert funnel(client.get("/"))[Stage.FRAME] == 1

    with criteria_passing():
        decide(initiative=initiative, transition=T.APPROVE_FRAME, user=manager, rationale="Go.")

    after = client.get("/")
    assert funnel(after)[Stage.FRAME] == 0
    assert funnel(after)[Stage.THIN_SLICE] == 1


def test_the_dashboard_renders_without_a_cache(client, executive, manager, monkeypatch):
    in_stage(Stage.THIN_SLICE, user=manager)

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr("pages.dashboard.cache.get", broken)
    monkeypatch.setattr("pages.dashboard.cache.get_many", broken)
    # The process then does without the cache for a while; later tests start with it again.
    monkeypatch.setattr("pages.dashboard._cache_paused_until", 0.0)
    response = dashboard(client, executive)

    assert funnel(response)[Stage.THIN_SLICE] == 1


# Running cost ---------------------------------------------------------------------------------
def test_running_cost_of_launched_initiatives_is_summed_per_currency(client, executive, manager):
    eur = with_verdict(Stage.WIDE_LAUNCH, Verdict.MEETING, user=manager, title="A euro")
    with_running_cost(eur, per_transaction="0.04", volume=20_000)
    other = with_verdict(Stage.NARROW_LAUNCH, Verdict.BELOW, user=manager, title="B euro")
    with_running_cost(other, per_transaction="0.50", volume=3_000)
    usd = with_verdict(Stage.NARROW_LAUNCH, Verdict.MEETING, user=manager, title="C dollar")
    with_running_cost(usd, per_transaction="1.25", volume=1_000, currency="USD")
    with_verdict(Stage.WIDE_LAUNCH, Verdict.MEETING, user=manager, title="D no cost")
    piloting = with_verdict(Stage.THIN_SLICE, Verdict.MEETING, user=manager, title="E pilot")

    response = dashboard(client, executive)

    cost = response.context["running_cost"]
    assert [(c["currency"], c["amount"], c["count"]) for c in cost["per_currency"]] == [
        ("EUR", Decimal("2300.00"), 2),
        ("USD", Decimal("1250.00"), 1),
    ]
    assert cost["missing"]["count"] == 1
    rows = {r["initiative"].title: r["cost"] for r in response.context["verdicts"]["rows"]}
    assert rows["A euro"].amount == Decimal("800.00") and rows["A euro"].currency == "EUR"
    assert rows["D no cost"] is None
    assert piloting.title not in rows
    html = response.content.decode()
    assert "EUR 2,300</strong> a month for" in html and "USD 1,250</strong>" in html
    assert "EUR 3,550" not in html  # never one sum across currencies


def test_running_cost_is_the_latest_passed_reviews(client, executive, manager):
    """A failed review's figures are not the cost of what runs; the passed one's are."""
    launched = launched_after_a_failed_review(user=manager, overdue_days=-5)
    with_running_cost(launched, per_transaction="0.10", volume=1_000)
    ReviewItem.objects.filter(
        review__initiative=launched,
        review__outcome=ReviewOutcome.FAILED,
        template_item__asks_numbers=True,
    ).update(cost_per_transaction=Decimal("9"), monthly_volume=1_000, currency="GBP")

    response = dashboard(client, executive)

    cost = response.context["running_cost"]
    assert [(c["currency"], c["amount"]) for c in cost["per_currency"]] == [
        ("EUR", Decimal("100.00"))
    ]
    assert listed(client, "/initiatives/?running_cost=GBP") == 0
    assert listed(client, "/initiatives/?running_cost=EUR") == 1


# What changed lately --------------------------------------------------------------------------
def test_the_last_seven_days_count_decisions_and_flags_raised_and_cleared(
    client, executive, manager
):
    in_stage(Stage.THIN_SLICE, user=manager, days_ago=2, title="Decided lately")
    in_stage(Stage.THIN_SLICE, user=manager, days_ago=10, title="Decided long ago")
    now = timezone.now()
    old = InitiativeFactory(title="Flagged long ago")
    PurgatoryFlagFactory(initiative=old, raised_at=now - timedelta(days=9))
    PurgatoryFlagFactory(
        initiative=old,
        kind=FlagKind.NO_SUCCESS_METRIC,
        raised_at=now - timedelta(days=20),
        cleared_at=now - timedelta(days=1),
    )
    PurgatoryFlagFactory(initiative=InitiativeFactory(), raised_at=now - timedelta(days=6))

    response = dashboard(client, executive)

    changes = {c["key"]: c["count"] for c in response.context["recent_changes"]}
    assert changes == {"decided": 1, "flagged": 1, "cleared": 1}
    for key, count in changes.items():
        assert listed(client, f"/initiatives/?changed={key}") == count
