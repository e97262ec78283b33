"""Pilot-purgatory detection: each flag raised and cleared by its rule, and the job that stores
them (raised_at, cleared_at, rewording, idempotence)."""

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from gates.services import decide, import_history
from gates.stages import Stage
from gates.stages import Transition as T
from jobs import registry
from metrics.models import FeedKind, Verdict
from metrics.status import mark_stale_feeds
from pages import purgatory
from portfolio.models import FlagKind, Initiative, PurgatoryFlag, StageLimit
from readiness.models import PreLaunchWorkItem, ReadinessReview, WorkStatus
from tests.factories import (
    DataFeedFactory,
    InitiativeFactory,
    MetricSnapshotFactory,
    UserFactory,
    upkeep_line,
)
from tests.helpers import advance, criteria_passing

pytestmark = pytest.mark.django_db

PAST_FRAME = [Stage.THIN_SLICE, Stage.READINESS_REVIEW, Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH]


def initiative_in(stage, *, user, feed=True, **fields) -> Initiative:
    """A framed initiative (business owner, primary metric with a threshold) walked to `stage`
    through gates.services.decide, with a fresh live feed unless feed=False."""
    initiative = InitiativeFactory(framed=True, **fields)
    if feed:
        DataFeedFactory(initiative=initiative, last_delivery_at=timezone.now())
    return advance(initiative, stage, user=user)


def backdate(initiative, when) -> None:
    """Put the initiative's entry into its current stage at `when`."""
    Initiative.objects.filter(pk=initiative.pk).update(stage_entered_at=when)
    initiative.refresh_from_db()


def active(initiative) -> dict[str, str]:
    """{kind: reason} of the initiative's live flags."""
    return dict(
        PurgatoryFlag.objects.filter(initiative=initiative, cleared_at__isnull=True).values_list(
            "kind", "reason"
        )
    )


def primary(initiative):
    return initiative.metrics.get(is_primary=True)


# A healthy initiative -----------------------------------------------------------------------
@pytest.mark.parametrize("stage", [Stage.FRAME, *PAST_FRAME])
def test_an_owned_measured_fed_initiative_on_time_has_no_flag(manager, stage):
    initiative = initiative_in(stage, user=manager)

    purgatory.sync_flags()

    assert active(initiative) == {}
    assert purgatory.detect() == {}


# No business owner ---------------------------------------------------------------------------
@pytest.mark.parametrize("stage", PAST_FRAME)
def test_no_business_owner_is_flagged_once_past_frame(manager, stage):
    initiative = initiative_in(stage, user=manager, business_owner=None)

    purgatory.sync_flags()

    assert active(initiative) == {
        FlagKind.NO_BUSINESS_OWNER: "No business owner is named, yet it left framing."
    }


def test_no_business_owner_is_not_flagged_in_frame(manager):
    initiative = initiative_in(Stage.FRAME, user=manager, business_owner=None, feed=False)

    purgatory.sync_flags()

    assert active(initiative) == {}


def test_no_business_owner_is_not_flagged_once_stopped(manager):
    initiative = initiative_in(Stage.THIN_SLICE, user=manager, business_owner=None)
    advance(initiative, Stage.STOPPED, user=manager)

    purgatory.sync_flags()

    assert active(initiative) == {}


def test_naming_a_business_owner_clears_the_flag(manager):
    initiative = initiative_in(Stage.THIN_SLICE, user=manager, business_owner=None)
    purgatory.sync_flags()
    Initiative.objects.filter(pk=initiative.pk).update(business_owner=UserFactory())

    counts = purgatory.sync_flags()

    assert counts == {"raised": 0, "updated": 0, "cleared": 1}
    assert active(initiative) == {}
    flag = PurgatoryFlag.objects.get(initiative=initiative)
    assert flag.kind == FlagKind.NO_BUSINESS_OWNER
    assert flag.cleared_at is not None


# No numeric success metric ------------------------------------------------------------------
@pytest.mark.parametrize("stage", PAST_FRAME)
def test_a_primary_metric_without_threshold_is_flagged_past_frame(manager, stage):
    initiative = initiative_in(stage, user=manager)
    initiative.metrics.update(ship_threshold=None)

    purgatory.sync_flags()

    assert active(initiative) == {
        FlagKind.NO_SUCCESS_METRIC: "No primary success metric with a numeric ship threshold."
    }


def test_no_primary_metric_at_all_is_flagged_past_frame(manager):
    initiative = initiative_in(Stage.THIN_SLICE, user=manager)
    # A secondary metric with a threshold is not the success metric.
    initiative.metrics.update(is_primary=False)

    purgatory.sync_flags()

    assert FlagKind.NO_SUCCESS_METRIC in active(initiative)


def test_no_success_metric_is_not_flagged_in_frame(manager):
    initiative = InitiativeFactory()  # nothing framed at all

    purgatory.sync_flags()

    assert active(initiative) == {}


def test_setting_the_threshold_clears_the_success_metric_flag(manager):
    initiative = initiative_in(Stage.READINESS_REVIEW, user=manager)
    initiative.metrics.update(ship_threshold=None)
    purgatory.sync_flags()
    assert FlagKind.NO_SUCCESS_METRIC in active(initiative)

    initiative.metrics.update(ship_threshold=90)
    purgatory.sync_flags()

    assert active(initiative) == {}


# Borrowed or stale data ---------------------------------------------------------------------
@pytest.mark.parametrize("stage", PAST_FRAME)
def test_no_live_feed_past_frame_is_borrowed_data(manager, stage):
    initiative = initiative_in(stage, user=manager, feed=False)

    purgatory.sync_flags()

    assert active(initiative) == {
        FlagKind.BORROWED_DATA: "No live data feed: its data is borrowed, not integrated."
    }


def test_a_one_off_extract_alone_counts_as_no_live_feed(manager):
    initiative = initiative_in(Stage.THIN_SLICE, user=manager, feed=False)
    DataFeedFactory(
        initiative=initiative, kind=FeedKind.ONE_OFF_EXTRACT, last_delivery_at=timezone.now()
    )

    purgatory.sync_flags()

    assert active(initiative) == {
        FlagKind.BORROWED_DATA: "No live data feed: its data is borrowed, not integrated."
    }


def test_a_live_feed_that_missed_its_window_is_stale_data(manager):
    initiative = initiative_in(Stage.NARROW_LAUNCH, user=manager, feed=False)
    DataFeedFactory(
        initiative=initiative,
        freshness_hours=24,
        last_fresh_at=timezone.now() - timedelta(days=3),
    )
    mark_stale_feeds()  # the beat job that marks feeds stale

    purgatory.sync_flags()

    assert active(initiative) == {
        FlagKind.BORROWED_DATA: "1 of 1 live feed(s) missed their freshness window."
    }


def test_borrowed_data_is_not_flagged_in_frame(manager):
    initiative = initiative_in(Stage.FRAME, user=manager, feed=False)

    purgatory.sync_flags()

    assert active(initiative) == {}


def test_a_fresh_live_feed_clears_the_borrowed_data_flag(manager):
    initiative = initiative_in(Stage.THIN_SLICE, user=manager, feed=False)
    DataFeedFactory(initiative=initiative, kind=FeedKind.ONE_OFF_EXTRACT)
    purgatory.sync_flags()
    assert FlagKind.BORROWED_DATA in active(initiative)

    DataFeedFactory(initiative=initiative, last_delivery_at=timezone.now())
    counts = purgatory.sync_flags()

    assert counts["cleared"] == 1
    assert active(initiative) == {}


def test_a_stale_feed_that_delivers_again_clears_the_flag(manager):
    initiative = initiative_in(Stage.THIN_SLICE, user=manager, feed=False)
    feed = DataFeedFactory(initiative=initiative, last_fresh_at=timezone.now() - timedelta(days=2))
    mark_stale_feeds()
    purgatory.sync_flags()
    assert FlagKind.BORROWED_DATA in active(initiative)

    type(feed).objects.filter(pk=feed.pk).update(last_fresh_at=timezone.now())
    mark_stale_feeds()
    purgatory.sync_flags()

    assert active(initiative) == {}


# Stuck ---------------------------------------------------------------------------------------
DEFAULT_LIMITS = [
    (Stage.FRAME, 30),
    (Stage.THIN_SLICE, 90),
    (Stage.READINESS_REVIEW, 30),
    (Stage.NARROW_LAUNCH, 60),
]


def set_limit(stage, days: int) -> None:
    StageLimit.objects.update_or_create(stage=stage, defaults={"days": days})


def test_the_default_stage_limits_are_those_of_the_design():
    assert purgatory.stage_limits() == dict(DEFAULT_LIMITS)


def test_the_defaults_hold_without_configured_limits(manager):
    StageLimit.objects.all().delete()
    now = timezone.now()
    initiative = initiative_in(Stage.READINESS_REVIEW, user=manager)
    backdate(initiative, now - timedelta(days=31))

    purgatory.sync_flags(now=now)

    assert purgatory.stage_limits() == dict(DEFAULT_LIMITS)
    assert active(initiative) == {FlagKind.STUCK: "31 days in readiness review; the limit is 30."}


@pytest.mark.parametrize(("stage", "limit"), DEFAULT_LIMITS)
def test_exactly_the_limit_in_a_stage_is_not_stuck(manager, stage, limit):
    now = timezone.now()
    initiative = initiative_in(stage, user=manager)
    backdate(initiative, now - timedelta(days=limit))

    purgatory.sync_flags(now=now)

    assert FlagKind.STUCK not in active(initiative)


@pytest.mark.parametrize(("stage", "limit"), DEFAULT_LIMITS)
def test_one_day_over_the_limit_is_stuck(manager, stage, limit):
    now = timezone.now()
    initiative = initiative_in(stage, user=manager)
    backdate(initiative, now - timedelta(days=limit + 1))

    purgatory.sync_flags(now=now)

    label = Stage(stage).label.lower()
    assert active(initiative) == {
        FlagKind.STUCK: f"{limit + 1} days in {label}; the limit is {limit}."
    }


@pytest.mark.parametrize("stage", [Stage.WIDE_LAUNCH, Stage.STOPPED])
def test_wide_launch_and_stopped_have_no_time_limit(manager, stage):
    now = timezone.now()
    initiative = initiative_in(stage, user=manager)
    backdate(initiative, now - timedelta(days=900))

    purgatory.sync_flags(now=now)

    assert active(initiative) == {}


def test_a_changed_stage_limit_replaces_the_default(manager):
    set_limit(Stage.THIN_SLICE, 10)
    now = timezone.now()
    at_limit = initiative_in(Stage.THIN_SLICE, user=manager)
    backdate(at_limit, now - timedelta(days=10))
    over = initiative_in(Stage.THIN_SLICE, user=manager)
    backdate(over, now - timedelta(days=11))
    in_frame = initiative_in(Stage.FRAME, user=manager)
    backdate(in_frame, now - timedelta(days=31))  # the other defaults still hold

    purgatory.sync_flags(now=now)

    assert active(at_limit) == {}
    assert active(over) == {FlagKind.STUCK: "11 days in thin slice; the limit is 10."}
    assert active(in_frame) == {FlagKind.STUCK: "31 days in frame; the limit is 30."}


def test_a_longer_stage_limit_clears_the_stuck_flag(manager):
    now = timezone.now()
    initiative = initiative_in(Stage.NARROW_LAUNCH, user=manager)
    backdate(initiative, now - timedelta(days=70))
    purgatory.sync_flags(now=now)
    assert FlagKind.STUCK in active(initiative)

    set_limit(Stage.NARROW_LAUNCH, 90)
    purgatory.sync_flags(now=now)

    assert active(initiative) == {}


def test_moving_on_clears_the_stuck_flag(manager):
    initiative = initiative_in(Stage.THIN_SLICE, user=manager)
    backdate(initiative, timezone.now() - timedelta(days=120))
    purgatory.sync_flags()
    assert FlagKind.STUCK in active(initiative)

    advance(initiative, Stage.READINESS_REVIEW, user=manager)
    purgatory.sync_flags()

    assert active(initiative) == {}


# Primary metric below threshold ------------------------------------------------------------
def snapshots(metric, *verdicts_days_ago, now) -> None:
    """Snapshots (verdict, days ago), oldest first; the last becomes the latest snapshot."""
    for n, (verdict, days) in enumerate(verdicts_days_ago):
        MetricSnapshotFactory(
            metric=metric,
            verdict=verdict,
            computed_at=now - timedelta(days=days),
            latest=n == len(verdicts_days_ago) - 1,
        )


def launched(stage, *, user, days_ago: int = 40, **fields) -> Initiative:
    """A framed, fed initiative in narrow or wide launch whose readiness review passed
    `days_ago` days ago: its history is imported (gates.services.import_history), since a
    decision taken through `decide` is dated now and cannot be backdated."""
    route = ["approve_frame", "submit_for_review", "pass_review", "widen"]
    route = route[: 3 if stage == Stage.NARROW_LAUNCH else 4]
    initiative = InitiativeFactory(framed=True, **fields)
    DataFeedFactory(initiative=initiative, last_delivery_at=timezone.now())
    start = timezone.now() - timedelta(days=days_ago, hours=len(route))
    backdate(initiative, start)
    import_history(
        initiative=initiative,
        decisions=[
            {
                "transition": name,
                "user": user,
                "rationale": "Imported for the test.",
                "decided_at": start + timedelta(hours=n + 1),
            }
            for n, name in enumerate(route)
        ],
    )
    assert initiative.stage == stage
    upkeep_line(initiative)  # a healthy launch: only the flags under test are raised
    return initiative


BELOW, MEETING = Verdict.BELOW, Verdict.MEETING


@pytest.mark.parametrize("stage", [Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH])
def test_below_threshold_for_more_than_14_days_in_launch_is_flagged(manager, stage):
    now = timezone.now()
    initiative = launched(stage, user=manager)
    snapshots(
        primary(initiative),
        (MEETING, 30),
        (BELOW, 15),
        (BELOW, 10),
        (BELOW, 5),
        (BELOW, 0),
        now=now,
    )

    purgatory.sync_flags(now=now)

    assert active(initiative) == {
        FlagKind.BELOW_THRESHOLD: (
            "The primary metric has been below its ship threshold for 15 days (limit 14)."
        )
    }


def test_below_threshold_for_exactly_14_days_is_not_flagged(manager):
    now = timezone.now()
    initiative = launched(Stage.NARROW_LAUNCH, user=manager)
    snapshots(primary(initiative), (MEETING, 20), (BELOW, 14), (BELOW, 0), now=now)

    purgatory.sync_flags(now=now)

    assert active(initiative) == {}


def test_a_run_of_below_snapshots_only_counts_from_the_first(manager):
    now = timezone.now()
    initiative = launched(Stage.NARROW_LAUNCH, user=manager)
    snapshots(primary(initiative), (BELOW, 16), (BELOW, 8), (BELOW, 0), now=now)

    purgatory.sync_flags(now=now)

    assert FlagKind.BELOW_THRESHOLD in active(initiative)
    assert "16 days" in active(initiative)[FlagKind.BELOW_THRESHOLD]


def test_a_meeting_snapshot_interrupts_the_below_run(manager):
    now = timezone.now()
    initiative = launched(Stage.NARROW_LAUNCH, user=manager)
    snapshots(
        primary(initiative),
        (BELOW, 15),
        (BELOW, 10),
        (MEETING, 5),
        (BELOW, 3),
        (BELOW, 0),
        now=now,
    )

    purgatory.sync_flags(now=now)

    assert active(initiative) == {}


@pytest.mark.parametrize("other", [Verdict.STALE, Verdict.INSUFFICIENT_DATA])
def test_any_other_verdict_also_interrupts_the_below_run(manager, other):
    now = timezone.now()
    initiative = launched(Stage.WIDE_LAUNCH, user=manager)
    snapshots(primary(initiative), (BELOW, 20), (other, 5), (BELOW, 0), now=now)

    purgatory.sync_flags(now=now)

    assert active(initiative) == {}


@pytest.mark.parametrize("stage", [Stage.THIN_SLICE, Stage.READINESS_REVIEW])
def test_below_threshold_before_launch_is_not_flagged(manager, stage):
    now = timezone.now()
    initiative = initiative_in(stage, user=manager)
    snapshots(primary(initiative), (BELOW, 30), (BELOW, 15), (BELOW, 0), now=now)

    purgatory.sync_flags(now=now)

    assert active(initiative) == {}


def test_below_threshold_counts_only_the_time_in_launch(manager):
    """Below all through thin slice and review, launched just now: not yet 14 days in launch."""
    now = timezone.now()
    initiative = initiative_in(Stage.READINESS_REVIEW, user=manager)
    snapshots(primary(initiative), (BELOW, 40), (BELOW, 20), (BELOW, 0), now=now)
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)

    purgatory.sync_flags(now=now)
    assert FlagKind.BELOW_THRESHOLD not in active(initiative)

    purgatory.sync_flags(now=now + timedelta(days=15, hours=1))

    assert active(initiative)[FlagKind.BELOW_THRESHOLD] == (
        "The primary metric has been below its ship threshold for 15 days (limit 14)."
    )


def test_a_below_run_carries_from_narrow_into_wide_launch(manager):
    now = timezone.now()
    initiative = initiative_in(Stage.NARROW_LAUNCH, user=manager)
    snapshots(primary(initiative), (BELOW, 0), now=now)
    advance(initiative, Stage.WIDE_LAUNCH, user=manager)

    purgatory.sync_flags(now=now + timedelta(days=15, hours=1))

    assert FlagKind.BELOW_THRESHOLD in active(initiative)


def test_a_secondary_metric_below_threshold_is_not_flagged(manager):
    from tests.factories import MetricFactory

    now = timezone.now()
    initiative = launched(Stage.NARROW_LAUNCH, user=manager)
    secondary = MetricFactory(initiative=initiative, is_primary=False, name="Cost per claim")
    snapshots(secondary, (BELOW, 30), (BELOW, 0), now=now)

    purgatory.sync_flags(now=now)

    assert active(initiative) == {}


def test_meeting_the_threshold_again_clears_the_below_flag(manager):
    now = timezone.now()
    initiative = launched(Stage.NARROW_LAUNCH, user=manager)
    metric = primary(initiative)
    snapshots(metric, (BELOW, 20), (BELOW, 1), now=now)
    purgatory.sync_flags(now=now)
    assert FlagKind.BELOW_THRESHOLD in active(initiative)

    snapshots(metric, (MEETING, 0), now=now)
    purgatory.sync_flags(now=now)

    assert active(initiative) == {}


def test_the_below_threshold_period_is_a_setting(manager, settings):
    settings.GANTRY_BELOW_THRESHOLD_DAYS = 7
    now = timezone.now()
    initiative = launched(Stage.NARROW_LAUNCH, user=manager)
    snapshots(primary(initiative), (BELOW, 8), (BELOW, 0), now=now)

    purgatory.sync_flags(now=now)

    assert active(initiative) == {
        FlagKind.BELOW_THRESHOLD: (
            "The primary metric has been below its ship threshold for 8 days (limit 7)."
        )
    }


# The stored flags ----------------------------------------------------------------------------
def test_a_raised_flag_records_when_it_was_raised_and_is_not_cleared(manager):
    now = timezone.now()
    initiative = initiative_in(Stage.THIN_SLICE, user=manager, feed=False)

    counts = purgatory.sync_flags(now=now)

    assert counts == {"raised": 1, "updated": 0, "cleared": 0}
    flag = PurgatoryFlag.objects.get(initiative=initiative)
    assert (flag.kind, flag.raised_at, flag.cleared_at) == (FlagKind.BORROWED_DATA, now, None)
    assert flag.active


def test_a_cleared_flag_keeps_its_history_and_a_new_one_is_raised_if_it_returns(manager):
    raised, cleared, again = (timezone.now() - timedelta(days=d) for d in (10, 5, 0))
    initiative = initiative_in(Stage.THIN_SLICE, user=manager, feed=False)
    purgatory.sync_flags(now=raised)
    feed = DataFeedFactory(initiative=initiative, last_delivery_at=cleared)
    purgatory.sync_flags(now=cleared)
    feed.delete()

    purgatory.sync_flags(now=again)

    rows = list(
        PurgatoryFlag.objects.filter(initiative=initiative)
        .order_by("raised_at")
        .values_list("kind", "raised_at", "cleared_at")
    )
    assert rows == [
        (FlagKind.BORROWED_DATA, raised, cleared),
        (FlagKind.BORROWED_DATA, again, None),
    ]


def test_running_the_job_twice_changes_nothing(manager):
    now = timezone.now()
    stuck = initiative_in(Stage.THIN_SLICE, user=manager, business_owner=None, feed=False)
    backdate(stuck, now - timedelta(days=100))
    below = launched(Stage.NARROW_LAUNCH, user=manager)
    snapshots(primary(below), (BELOW, 20), (BELOW, 0), now=now)
    initiative_in(Stage.READINESS_REVIEW, user=manager)  # healthy

    first = registry.registered()["sync-purgatory-flags"].run()
    rows = list(PurgatoryFlag.objects.order_by("pk").values())
    second = registry.registered()["sync-purgatory-flags"].run()

    assert first == {"raised": 4, "updated": 0, "cleared": 0}
    assert second == {"raised": 0, "updated": 0, "cleared": 0}
    assert list(PurgatoryFlag.objects.order_by("pk").values()) == rows
    assert {row["kind"] for row in rows} == {
        FlagKind.NO_BUSINESS_OWNER,
        FlagKind.BORROWED_DATA,
        FlagKind.STUCK,
        FlagKind.BELOW_THRESHOLD,
    }


def test_a_changed_reason_rewords_the_live_flag_without_a_new_row(manager):
    now = timezone.now()
    initiative = initiative_in(Stage.THIN_SLICE, user=manager)
    backdate(initiative, now - timedelta(days=95))
    purgatory.sync_flags(now=now)
    flag = PurgatoryFlag.objects.get(initiative=initiative)
    assert flag.reason == "95 days in thin slice; the limit is 90."

    counts = purgatory.sync_flags(now=now + timedelta(days=2))

    assert counts == {"raised": 0, "updated": 1, "cleared": 0}
    reworded = PurgatoryFlag.objects.get(initiative=initiative)
    assert reworded.pk == flag.pk
    assert reworded.raised_at == flag.raised_at
    assert reworded.cleared_at is None
    assert reworded.reason == "97 days in thin slice; the limit is 90."


def test_a_second_stale_feed_rewords_the_stale_data_flag(manager):
    initiative = initiative_in(Stage.THIN_SLICE, user=manager, feed=False)
    DataFeedFactory(initiative=initiative, is_stale=True)
    purgatory.sync_flags()
    flag = PurgatoryFlag.objects.get(initiative=initiative)

    DataFeedFactory(initiative=initiative, is_stale=True)
    purgatory.sync_flags()

    assert list(PurgatoryFlag.objects.filter(initiative=initiative)) == [flag]
    flag.refresh_from_db()
    assert flag.reason == "2 of 2 live feed(s) missed their freshness window."


def test_stopping_an_initiative_clears_all_its_flags(manager):
    now = timezone.now()
    initiative = initiative_in(Stage.THIN_SLICE, user=manager, business_owner=None, feed=False)
    backdate(initiative, now - timedelta(days=100))
    purgatory.sync_flags(now=now)
    assert len(active(initiative)) == 3

    advance(initiative, Stage.STOPPED, user=manager)
    later = timezone.now()
    counts = purgatory.sync_flags(now=later)

    assert counts == {"raised": 0, "updated": 0, "cleared": 3}
    assert active(initiative) == {}
    assert set(
        PurgatoryFlag.objects.filter(initiative=initiative).values_list("cleared_at", flat=True)
    ) == {later}


def test_flags_of_other_initiatives_are_left_alone(manager):
    now = timezone.now()
    flagged = initiative_in(Stage.THIN_SLICE, user=manager, feed=False)
    purgatory.sync_flags(now=now - timedelta(days=1))
    healthy = initiative_in(Stage.THIN_SLICE, user=manager)
    healthy.feeds.all().delete()

    purgatory.sync_flags(now=now)

    assert PurgatoryFlag.objects.get(initiative=flagged).raised_at == now - timedelta(days=1)
    assert PurgatoryFlag.objects.get(initiative=healthy).raised_at == now


def test_detection_queries_do_not_grow_with_the_portfolio(manager, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def flagged_portfolio(n: int) -> None:
        for _ in range(n):
            below = launched(Stage.NARROW_LAUNCH, user=manager, business_owner=None)
            snapshots(primary(below), (BELOW, 20), (BELOW, 0), now=timezone.now())

    flagged_portfolio(2)
    with CaptureQueriesContext(connection) as few:
        assert len(purgatory.detect()) == 2
    flagged_portfolio(8)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(purgatory.detect()) == 10


# A recompute that failed ---------------------------------------------------------------------
def test_a_primary_metric_whose_recompute_failed_is_flagged_with_the_message(manager):
    initiative = initiative_in(Stage.NARROW_LAUNCH, user=manager)
    MetricSnapshotFactory(
        metric=primary(initiative),
        verdict=Verdict.ERROR,
        summary="could not be computed: value out of range: overflow.",
        latest=True,
    )
    purgatory.sync_flags()
    reason = active(initiative)[FlagKind.METRIC_ERROR]
    assert reason == (
        "The status of First-contact resolution could not be computed: "
        "value out of range: overflow."
    )
    # A good recompute clears it.
    MetricSnapshotFactory(metric=primary(initiative), verdict=Verdict.MEETING, latest=True)
    purgatory.sync_flags()
    assert FlagKind.METRIC_ERROR not in active(initiative)


# Blocked at gate -----------------------------------------------------------------------------
def after_a_failed_review(to_stage, *, user, overdue_days: int) -> Initiative:
    """A fed initiative whose first readiness review failed (its unchecked items became
    pre-launch work, due `overdue_days` ago), walked on to `to_stage`."""
    initiative = initiative_in(Stage.READINESS_REVIEW, user=user)
    with criteria_passing():
        decide(initiative=initiative, transition=T.FAIL_REVIEW, user=user, rationale="Not yet.")
    advance(initiative, to_stage, user=user)
    due = timezone.localdate() - timedelta(days=overdue_days)
    PreLaunchWorkItem.objects.filter(initiative=initiative).update(due_date=due)
    return initiative


def test_overdue_work_the_next_gate_waits_on_blocks_it(manager):
    initiative = after_a_failed_review(Stage.NARROW_LAUNCH, user=manager, overdue_days=120)
    first = PreLaunchWorkItem.objects.filter(initiative=initiative).order_by("pk").first()

    purgatory.sync_flags()

    reason = active(initiative)[FlagKind.BLOCKED_AT_GATE]
    assert reason.startswith("Widen launch waits on 6 overdue pre-launch work items: ")
    assert f"“{first.title}” (nobody assigned), due " in reason
    assert reason.endswith(" and 5 more.")


def test_work_not_yet_due_does_not_block(manager):
    initiative = after_a_failed_review(Stage.NARROW_LAUNCH, user=manager, overdue_days=0)

    purgatory.sync_flags()

    assert FlagKind.BLOCKED_AT_GATE not in active(initiative)


def test_overdue_work_blocks_only_a_gate_that_waits_on_it(manager):
    """In thin slice the next gate is the review's submission, which starts fresh."""
    initiative = after_a_failed_review(Stage.THIN_SLICE, user=manager, overdue_days=30)

    purgatory.sync_flags()

    assert FlagKind.BLOCKED_AT_GATE not in active(initiative)
    assert purgatory.stages_whose_gate_waits_on("no_open_work_items") == [Stage.NARROW_LAUNCH]


def test_finishing_the_overdue_work_clears_the_block(manager):
    initiative = after_a_failed_review(Stage.NARROW_LAUNCH, user=manager, overdue_days=10)
    purgatory.sync_flags()
    assert FlagKind.BLOCKED_AT_GATE in active(initiative)

    PreLaunchWorkItem.objects.filter(initiative=initiative).update(status=WorkStatus.DONE)
    purgatory.sync_flags()

    assert FlagKind.BLOCKED_AT_GATE not in active(initiative)


@pytest.mark.parametrize(("days", "blocked"), [(30, False), (31, True)])
def test_a_review_open_past_its_stage_limit_blocks_the_gate(manager, days, blocked):
    """Whole days past the limit count, as the stuck rule counts them."""
    now = timezone.now()
    initiative = initiative_in(Stage.READINESS_REVIEW, user=manager)
    ReadinessReview.objects.filter(initiative=initiative).update(
        opened_at=now - timedelta(days=days, minutes=1)
    )

    purgatory.sync_flags(now=now)

    if blocked:
        assert active(initiative)[FlagKind.BLOCKED_AT_GATE] == (
            "Pass readiness review waits on a readiness review open 31 days (limit 30): "
            "6 of 6 checklist items unchecked."
        )
    else:
        assert FlagKind.BLOCKED_AT_GATE not in active(initiative)


# Since when ----------------------------------------------------------------------------------
def since(initiative) -> dict:
    return dict(
        PurgatoryFlag.objects.filter(initiative=initiative, cleared_at__isnull=True).values_list(
            "kind", "since"
        )
    )


def test_each_flag_is_dated_from_when_its_problem_began(manager):
    now = timezone.now()
    # Stuck and ownerless since it entered thin slice, with no live feed since then.
    stuck = InitiativeFactory(framed=True, business_owner=None)
    entered = now - timedelta(days=100)
    backdate(stuck, entered - timedelta(hours=1))
    import_history(
        initiative=stuck,
        decisions=[
            {"transition": "approve_frame", "user": manager, "rationale": "Go.",
             "decided_at": entered}
        ],
    )  # fmt: skip
    # A feed last fresh 3 days ago with a 24 h window: stale since 2 days ago.
    stale = initiative_in(Stage.THIN_SLICE, user=manager, feed=False)
    fresh_at = now - timedelta(days=3)
    DataFeedFactory(initiative=stale, is_stale=True, last_fresh_at=fresh_at)
    # Below from the first snapshot of the run, 20 days ago.
    below = launched(Stage.NARROW_LAUNCH, user=manager)
    snapshots(primary(below), (MEETING, 30), (BELOW, 20), (BELOW, 0), now=now)
    # Failing since the first error after the last good recompute.
    failing = initiative_in(Stage.NARROW_LAUNCH, user=manager)
    for verdict, days in ((MEETING, 9), (Verdict.ERROR, 6), (Verdict.ERROR, 1)):
        MetricSnapshotFactory(
            metric=primary(failing),
            verdict=verdict,
            computed_at=now - timedelta(days=days),
            latest=days == 1,
        )
    # Blocked from the day after the work fell due.
    blocked = after_a_failed_review(Stage.NARROW_LAUNCH, user=manager, overdue_days=10)
    due = timezone.localdate(now) - timedelta(days=10)

    purgatory.sync_flags(now=now)

    assert since(stuck) == {
        FlagKind.STUCK: entered,
        FlagKind.NO_BUSINESS_OWNER: entered,
        FlagKind.BORROWED_DATA: entered,
    }
    assert since(stale) == {FlagKind.BORROWED_DATA: fresh_at + timedelta(hours=24)}
    assert since(below) == {FlagKind.BELOW_THRESHOLD: now - timedelta(days=20)}
    assert since(failing) == {FlagKind.METRIC_ERROR: now - timedelta(days=6)}
    day_after = timezone.make_aware(datetime.combine(due + timedelta(days=1), time.min))
    assert since(blocked)[FlagKind.BLOCKED_AT_GATE] == day_after


def test_a_flag_recorded_without_its_start_is_dated_by_the_next_run(manager):
    now = timezone.now()
    initiative = initiative_in(Stage.THIN_SLICE, user=manager)
    backdate(initiative, now - timedelta(days=95))
    purgatory.sync_flags(now=now)
    PurgatoryFlag.objects.filter(initiative=initiative).update(since=None)

    counts = purgatory.sync_flags(now=now)

    assert counts == {"raised": 0, "updated": 1, "cleared": 0}
    assert since(initiative) == {FlagKind.STUCK: now - timedelta(days=95)}
