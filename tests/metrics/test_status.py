"""metrics.status: snapshots recomputed from the observations, and feed freshness."""

import re
import statistics
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs import registry
from metrics import ingest, services, status, tasks
from metrics.models import (
    Aggregation,
    Cohort,
    DataFeed,
    Direction,
    FeedKind,
    Metric,
    MetricSnapshot,
    Observation,
    RecomputeMark,
    Verdict,
)
from tests.factories import DataFeedFactory, InitiativeFactory, MetricFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def metric():
    """Mean over 14 days, ship at 85 or more."""
    return MetricFactory(comparison_window_days=14)


@pytest.fixture
def feed(metric):
    return DataFeedFactory(initiative=metric.initiative, last_delivery_at=timezone.now())


def observe(metric, feed, cohort, values, *, end, step=timedelta(hours=1)) -> list[Observation]:
    """Observations of `values`, the last one at `end`, one `step` apart (oldest first)."""
    moments = [end - step * (len(values) - 1 - i) for i in range(len(values))]
    return Observation.objects.bulk_create(
        Observation(metric=metric, feed=feed, cohort=cohort, observed_at=at, value=value)
        for at, value in zip(moments, values, strict=True)
    )


def snapshot_of(metric) -> MetricSnapshot:
    return Metric.objects.select_related("latest_snapshot").get(pk=metric.pk).latest_snapshot


PILOT = [88.0, 90.0, 92.0, 90.0, 90.0, 89.0, 91.0]  # mean 90
BASELINE = [78.0, 80.0, 82.0, 80.0, 80.0, 79.0, 81.0]  # mean 80


# Aggregates over the window only -----------------------------------------------------------------
def test_mean_covers_the_comparison_window_only(metric, feed, now):
    observe(metric, feed, Cohort.PILOT, PILOT, end=now - timedelta(hours=1))
    observe(metric, feed, Cohort.BASELINE, BASELINE, end=now - timedelta(hours=1))
    # Outside the window, in the future, or of the production cohort: all ignored.
    observe(metric, feed, Cohort.PILOT, [10.0, 11.0], end=now - timedelta(days=15))
    observe(metric, feed, Cohort.PILOT, [500.0, 600.0], end=now + timedelta(hours=3))
    observe(metric, feed, Cohort.BASELINE, [1.0], end=now - timedelta(days=30))
    observe(metric, feed, Cohort.PRODUCTION, [0.0, 0.0, 0.0], end=now - timedelta(hours=1))

    assert status.recompute(metric_ids=[metric.pk], now=now) == 1

    snapshot = snapshot_of(metric)
    assert snapshot.pilot_value == pytest.approx(statistics.fmean(PILOT))
    assert snapshot.pilot_count == len(PILOT)
    assert snapshot.baseline_value == pytest.approx(statistics.fmean(BASELINE))
    assert snapshot.baseline_count == len(BASELINE)
    assert snapshot.lift == pytest.approx(0.125)
    assert snapshot.window_end == now
    assert snapshot.window_start == now - timedelta(days=14)


def test_window_is_open_at_its_start_and_closed_at_now(metric, feed, now):
    start = now - timedelta(days=14)
    observe(metric, feed, Cohort.PILOT, [1000.0], end=start)  # exactly 14 days ago: out
    observe(metric, feed, Cohort.PILOT, [90.0], end=start + timedelta(seconds=1))
    observe(metric, feed, Cohort.PILOT, [92.0], end=now)  # exactly now: in
    observe(metric, feed, Cohort.PILOT, [2000.0], end=now + timedelta(seconds=1))

    status.recompute(metric_ids=[metric.pk], now=now)

    snapshot = snapshot_of(metric)
    assert snapshot.pilot_count == 2
    assert snapshot.pilot_value == pytest.approx(91.0)


def test_window_length_is_the_metric_s_own(feed, now):
    metric = MetricFactory(initiative=feed.initiative, comparison_window_days=3, is_primary=False)
    observe(metric, feed, Cohort.PILOT, [90.0] * 5, end=now - timedelta(days=1))
    observe(metric, feed, Cohort.PILOT, [10.0] * 5, end=now - timedelta(days=4))

    status.recompute(metric_ids=[metric.pk], now=now)

    snapshot = snapshot_of(metric)
    assert (snapshot.pilot_count, snapshot.pilot_value) == (5, 90.0)
    assert snapshot.window_start == now - timedelta(days=3)


def test_sum_adds_the_window_s_values(feed, now):
    metric = MetricFactory(
        initiative=feed.initiative,
        aggregation=Aggregation.SUM,
        ship_threshold=Decimal("400"),
        is_primary=False,
    )
    observe(metric, feed, Cohort.PILOT, [80.0, 90.0, 100.0, 110.0, 120.0], end=now)
    observe(metric, feed, Cohort.PILOT, [1000.0], end=now - timedelta(days=20))
    observe(metric, feed, Cohort.BASELINE, [70.0, 80.0, 90.0, 100.0, 110.0, 70.0], end=now)

    status.recompute(metric_ids=[metric.pk], now=now)

    snapshot = snapshot_of(metric)
    assert snapshot.pilot_value == pytest.approx(500.0)
    assert snapshot.baseline_value == pytest.approx(520.0)
    assert snapshot.lift == pytest.approx(500 / 520 - 1)
    assert snapshot.verdict == Verdict.MEETING
    assert "pilot total 500 " in snapshot.summary


def test_last_takes_the_latest_observation_in_the_window_not_the_latest_stored(feed, now):
    metric = MetricFactory(
        initiative=feed.initiative, aggregation=Aggregation.LAST, is_primary=False
    )
    observe(
        metric, feed, Cohort.PILOT, [70.0, 75.0, 80.0, 85.0, 91.5], end=now - timedelta(hours=2)
    )
    # Stored later, but observed earlier: not the last value.
    observe(metric, feed, Cohort.PILOT, [10.0], end=now - timedelta(days=2))
    observe(metric, feed, Cohort.PILOT, [99.0], end=now + timedelta(hours=1))  # future: ignored
    observe(metric, feed, Cohort.BASELINE, [60.0, 62.5], end=now - timedelta(hours=5))

    status.recompute(metric_ids=[metric.pk], now=now)

    snapshot = snapshot_of(metric)
    assert snapshot.pilot_value == 91.5
    assert snapshot.pilot_count == 6
    assert snapshot.baseline_value == 62.5
    assert snapshot.verdict == Verdict.MEETING
    assert "pilot latest 91.5 " in snapshot.summary


# Verdicts ----------------------------------------------------------------------------------------
def test_a_pilot_at_or_above_a_higher_is_better_threshold_is_meeting(metric, feed, now):
    observe(metric, feed, Cohort.PILOT, [85.0] * 5, end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    assert snapshot_of(metric).verdict == Verdict.MEETING


def test_a_pilot_under_a_higher_is_better_threshold_is_below(metric, feed, now):
    observe(metric, feed, Cohort.PILOT, [84.0, 84.5, 85.0, 84.9, 84.6], end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    snapshot = snapshot_of(metric)
    assert snapshot.verdict == Verdict.BELOW
    assert "misses 85" in snapshot.summary


@pytest.mark.parametrize(
    ("values", "verdict"),
    [([4.0, 5.0, 6.0, 5.0, 5.0], Verdict.MEETING), ([6.0, 6.5, 5.5, 6.0, 6.0], Verdict.BELOW)],
)
def test_lower_is_better_meets_at_or_under_the_threshold(feed, now, values, verdict):
    metric = MetricFactory(
        initiative=feed.initiative,
        direction=Direction.LOWER,
        ship_threshold=Decimal("5"),
        baseline=Decimal("8"),
        is_primary=False,
    )
    observe(metric, feed, Cohort.PILOT, values, end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    assert snapshot_of(metric).verdict == verdict


@pytest.mark.parametrize("pilot_count", [0, 1, 4])
def test_fewer_pilot_observations_than_the_minimum_are_insufficient_data(
    metric, feed, now, pilot_count
):
    if pilot_count:
        observe(metric, feed, Cohort.PILOT, [95.0] * pilot_count, end=now)
    observe(metric, feed, Cohort.BASELINE, BASELINE, end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    snapshot = snapshot_of(metric)
    assert snapshot.verdict == Verdict.INSUFFICIENT_DATA
    assert snapshot.confidence is None
    assert f"{pilot_count} pilot observation" in snapshot.summary
    assert "at least 5 are needed" in snapshot.summary


def test_the_minimum_number_of_observations_is_a_setting(metric, feed, now, settings):
    settings.GANTRY_MIN_OBSERVATIONS = 10
    observe(metric, feed, Cohort.PILOT, PILOT, end=now)  # 7 observations
    status.recompute(metric_ids=[metric.pk], now=now)
    assert snapshot_of(metric).verdict == Verdict.INSUFFICIENT_DATA


def test_observations_of_the_production_cohort_never_count_as_the_pilot(metric, feed, now):
    observe(metric, feed, Cohort.PRODUCTION, [99.0] * 20, end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    snapshot = snapshot_of(metric)
    assert snapshot.verdict == Verdict.INSUFFICIENT_DATA
    assert snapshot.pilot_count == 0
    assert snapshot.pilot_value is None


def test_a_metric_without_threshold_cannot_be_judged(feed, now):
    metric = MetricFactory(initiative=feed.initiative, ship_threshold=None, is_primary=False)
    observe(metric, feed, Cohort.PILOT, PILOT, end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    snapshot = snapshot_of(metric)
    assert snapshot.verdict == Verdict.INSUFFICIENT_DATA
    assert "No ship threshold" in snapshot.summary


def test_a_metric_is_stale_when_every_live_feed_of_its_initiative_is_stale(metric, feed, now):
    DataFeedFactory(initiative=metric.initiative, is_stale=True)
    observe(metric, feed, Cohort.PILOT, PILOT, end=now)
    DataFeed.objects.filter(pk=feed.pk).update(is_stale=True)

    status.recompute(metric_ids=[metric.pk], now=now)

    snapshot = snapshot_of(metric)
    assert snapshot.verdict == Verdict.STALE
    assert "missed its freshness window" in snapshot.summary
    # The figures are still recorded, for the trend.
    assert snapshot.pilot_value == pytest.approx(90.0)


def test_one_fresh_live_feed_keeps_the_metric_from_being_stale(metric, feed, now):
    DataFeedFactory(initiative=metric.initiative, is_stale=True)
    observe(metric, feed, Cohort.PILOT, PILOT, end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    assert snapshot_of(metric).verdict == Verdict.MEETING


def test_a_one_off_extract_neither_makes_a_metric_stale_nor_keeps_it_fresh(metric, feed, now):
    extract = DataFeedFactory(
        initiative=metric.initiative,
        kind=FeedKind.ONE_OFF_EXTRACT,
        last_delivery_at=now - timedelta(days=60),
    )
    observe(metric, extract, Cohort.PILOT, PILOT, end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    assert snapshot_of(metric).verdict == Verdict.MEETING  # the live feed is fresh

    DataFeed.objects.filter(pk=feed.pk).update(is_stale=True)
    status.recompute(metric_ids=[metric.pk], now=now)
    assert snapshot_of(metric).verdict == Verdict.STALE  # the extract does not count as fresh


def test_an_initiative_with_only_one_off_extracts_is_never_stale(now):
    extract = DataFeedFactory(
        kind=FeedKind.ONE_OFF_EXTRACT, last_delivery_at=now - timedelta(days=90)
    )
    metric = MetricFactory(initiative=extract.initiative)
    observe(metric, extract, Cohort.PILOT, PILOT, end=now - timedelta(days=1))

    status.mark_stale_feeds(now=now)
    status.recompute(metric_ids=[metric.pk], now=now)

    assert snapshot_of(metric).verdict == Verdict.MEETING


# The summary sentence ----------------------------------------------------------------------------
def test_summary_quotes_value_threshold_baseline_signed_lift_and_confidence(metric, feed, now):
    observe(metric, feed, Cohort.PILOT, PILOT, end=now)
    observe(metric, feed, Cohort.BASELINE, BASELINE, end=now)

    status.recompute(metric_ids=[metric.pk], now=now)

    summary = snapshot_of(metric).summary
    assert summary.startswith("pilot mean 90 over 14 days meets 85")
    assert "baseline 80" in summary
    assert "+12.5%" in summary
    assert re.search(r"(over )?\d+(\.\d)?% confidence$", summary), summary


def test_summary_of_a_pilot_below_its_baseline_shows_a_negative_lift(metric, feed, now):
    observe(metric, feed, Cohort.PILOT, BASELINE, end=now)
    observe(metric, feed, Cohort.BASELINE, PILOT, end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    snapshot = snapshot_of(metric)
    assert snapshot.verdict == Verdict.BELOW
    assert "misses 85" in snapshot.summary
    assert "baseline 90" in snapshot.summary
    assert "-11.1%" in snapshot.summary
    assert snapshot.confidence < 0.01


def test_summary_says_when_the_baseline_is_too_small_for_a_confidence(metric, feed, now):
    observe(metric, feed, Cohort.PILOT, PILOT, end=now)
    observe(metric, feed, Cohort.BASELINE, [80.0, 81.0], end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    snapshot = snapshot_of(metric)
    assert snapshot.confidence is None
    assert "too few observations for a confidence" in snapshot.summary


def test_confidence_and_p_value_are_stored_with_the_snapshot(metric, feed, now):
    observe(metric, feed, Cohort.PILOT, PILOT, end=now)
    observe(metric, feed, Cohort.BASELINE, BASELINE, end=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    snapshot = snapshot_of(metric)
    assert snapshot.confidence == pytest.approx(1 - snapshot.p_value)
    assert snapshot.confidence > 0.999


# History and idempotence -------------------------------------------------------------------------
def test_every_recompute_keeps_its_snapshot_and_the_latest_points_at_the_newest(metric, feed, now):
    observe(metric, feed, Cohort.PILOT, [80.0] * 5, end=now - timedelta(days=1))
    status.recompute(metric_ids=[metric.pk], now=now - timedelta(hours=2))
    first = snapshot_of(metric)
    assert first.verdict == Verdict.BELOW

    observe(metric, feed, Cohort.PILOT, [100.0] * 10, end=now - timedelta(hours=1))
    status.recompute(metric_ids=[metric.pk], now=now)

    history = list(metric.snapshots.order_by("computed_at"))
    assert [s.pk for s in history] == [first.pk, history[1].pk]
    assert (
        snapshot_of(metric) == history[1] == MetricSnapshot.objects.filter(metric=metric).latest()
    )
    assert history[1].verdict == Verdict.MEETING
    assert first.verdict == Verdict.BELOW  # the older snapshot is kept unchanged


@pytest.mark.parametrize("some", [True, False], ids=["some metrics", "all metrics"])
def test_the_metric_carries_its_latest_snapshot_s_verdict(metric, feed, now, some):
    """The list sorts and filters by the verdict kept on the metric: it must follow every
    recompute, down and up, by either path of the update."""
    ids = {"metric_ids": [metric.pk]} if some else {}
    observe(metric, feed, Cohort.PILOT, [80.0] * 5, end=now - timedelta(days=1))
    status.recompute(now=now - timedelta(hours=2), **ids)
    assert Metric.objects.get(pk=metric.pk).latest_verdict == Verdict.BELOW

    observe(metric, feed, Cohort.PILOT, [100.0] * 10, end=now - timedelta(hours=1))
    status.recompute(now=now, **ids)
    assert Metric.objects.get(pk=metric.pk).latest_verdict == Verdict.MEETING

    # A recompute that finishes late, for an earlier moment, moves neither.
    status.recompute(now=now - timedelta(hours=3), **ids)
    reread = Metric.objects.select_related("latest_snapshot").get(pk=metric.pk)
    assert reread.latest_snapshot.computed_at == now
    assert reread.latest_verdict == Verdict.MEETING


def test_recompute_twice_on_the_same_data_gives_the_same_verdict_and_figures(metric, feed, now):
    observe(metric, feed, Cohort.PILOT, PILOT, end=now)
    observe(metric, feed, Cohort.BASELINE, BASELINE, end=now)
    fields = ["verdict", "pilot_value", "pilot_count", "baseline_value", "lift", "confidence"]

    status.recompute(metric_ids=[metric.pk], now=now)
    first = snapshot_of(metric)
    status.recompute(metric_ids=[metric.pk], now=now + timedelta(seconds=5))
    second = snapshot_of(metric)

    assert second.pk != first.pk
    assert [getattr(second, f) for f in fields] == [getattr(first, f) for f in fields]
    assert second.summary == first.summary


def test_recomputing_some_metrics_leaves_the_others_alone(metric, feed, now):
    other = MetricFactory(initiative=metric.initiative, is_primary=False)
    status.recompute(metric_ids=[other.pk], now=now - timedelta(hours=1))
    before = snapshot_of(other)

    status.recompute(metric_ids=[metric.pk], now=now)

    assert snapshot_of(other) == before
    assert MetricSnapshot.objects.filter(metric=other).count() == 1


def test_recompute_of_all_metrics_covers_every_initiative(now):
    metrics = [MetricFactory() for _ in range(3)]
    assert status.recompute(now=now) == 3
    assert all(snapshot_of(m) is not None for m in metrics)


def test_recompute_of_no_metric_writes_nothing():
    assert status.recompute(metric_ids=[]) == 0
    assert not MetricSnapshot.objects.exists()


# Cost: aggregates are computed by the database ---------------------------------------------------
def _metrics_with_data(n: int, now) -> list[int]:
    """n metrics on n initiatives, a third each mean, sum and last, with data in both cohorts."""
    kinds = [Aggregation.MEAN, Aggregation.SUM, Aggregation.LAST]
    ids = []
    for i in range(n):
        metric = MetricFactory(aggregation=kinds[i % 3])
        feed = DataFeedFactory(initiative=metric.initiative)
        observe(metric, feed, Cohort.PILOT, PILOT, end=now)
        observe(metric, feed, Cohort.BASELINE, BASELINE, end=now)
        ids.append(metric.pk)
    return ids


@pytest.mark.parametrize("which", ["listed", "all"])
def test_recompute_queries_do_not_grow_with_the_number_of_metrics(
    now, django_assert_max_num_queries, which
):
    three = _metrics_with_data(3, now)
    with CaptureQueriesContext(connection) as captured:
        status.recompute(metric_ids=three if which == "listed" else None, now=now)
    with_three = len(captured)

    thirty = three + _metrics_with_data(27, now)
    with django_assert_max_num_queries(with_three) as captured:
        count = status.recompute(metric_ids=thirty if which == "listed" else None, now=now)

    assert count == 30
    assert len(captured) == with_three
    assert MetricSnapshot.objects.count() == 33


# Feed freshness ----------------------------------------------------------------------------------
def _feed(now, *, hours_ago, window=24, kind=FeedKind.LIVE, stale=False, delivered=True):
    feed = DataFeedFactory(
        kind=kind,
        freshness_hours=window,
        is_stale=stale,
        last_delivery_at=now - timedelta(hours=hours_ago) if delivered else None,
    )
    # created_at is set on insert; date it back so a feed that never delivered can be late.
    DataFeed.objects.filter(pk=feed.pk).update(created_at=now - timedelta(hours=hours_ago))
    return feed


def _stale(feed) -> bool:
    return DataFeed.objects.get(pk=feed.pk).is_stale


def test_a_live_feed_that_missed_its_window_is_marked_stale_once(now):
    late = _feed(now, hours_ago=30)
    on_time = _feed(now, hours_ago=2)

    assert status.mark_stale_feeds(now=now) == (1, 0)
    assert _stale(late)
    assert not _stale(on_time)
    assert status.mark_stale_feeds(now=now) == (0, 0)  # idempotent
    assert _stale(late)


def test_a_stale_feed_that_delivered_again_is_fresh_again(now):
    feed = _feed(now, hours_ago=1, stale=True)
    assert status.mark_stale_feeds(now=now) == (0, 1)
    assert not _stale(feed)
    assert status.mark_stale_feeds(now=now) == (0, 0)


def test_each_feed_is_judged_against_its_own_window(now):
    hourly = _feed(now, hours_ago=2, window=1)
    daily = _feed(now, hours_ago=2, window=24)
    weekly = _feed(now, hours_ago=100, window=24 * 7)

    assert status.mark_stale_feeds(now=now) == (1, 0)
    assert (_stale(hourly), _stale(daily), _stale(weekly)) == (True, False, False)


def test_a_live_feed_that_never_delivered_is_stale_once_its_first_window_passed(now):
    old = _feed(now, hours_ago=25, delivered=False)
    new = _feed(now, hours_ago=3, delivered=False)
    status.mark_stale_feeds(now=now)
    assert _stale(old)
    assert not _stale(new)


def test_one_off_extracts_are_never_stale(now):
    extract = _feed(now, hours_ago=24 * 60, kind=FeedKind.ONE_OFF_EXTRACT)
    flagged = _feed(now, hours_ago=24 * 60, kind=FeedKind.ONE_OFF_EXTRACT, stale=True)
    never = _feed(now, hours_ago=24 * 60, kind=FeedKind.ONE_OFF_EXTRACT, delivered=False)

    assert status.mark_stale_feeds(now=now) == (0, 1)
    assert not any(_stale(f) for f in (extract, flagged, never))


def test_a_delivery_clears_the_stale_flag(now):
    feed = _feed(now, hours_ago=48, stale=True)
    metric = MetricFactory(initiative=feed.initiative)
    ingest.store(feed, [(metric.pk, Cohort.PILOT, now - timedelta(minutes=1), 90.0)])

    refreshed = DataFeed.objects.get(pk=feed.pk)
    assert not refreshed.is_stale
    assert refreshed.last_delivery_at >= now


# The Celery tasks are thin wrappers --------------------------------------------------------------
def test_recompute_task_clears_the_mark_and_writes_a_snapshot(metric):
    with transaction.atomic():
        services.schedule_recompute([metric.pk])
    assert tasks.recompute_metrics([metric.pk]) == 1
    assert not RecomputeMark.objects.exists()
    assert snapshot_of(metric) is not None
    # Unmarked (already recomputed, say by the sweep): the task has nothing to do.
    assert tasks.recompute_metrics([metric.pk]) == 0


def test_periodic_jobs_recompute_everything_and_mark_stale_feeds(now):
    metrics = [MetricFactory() for _ in range(2)]
    _feed(now, hours_ago=48)
    jobs = registry.registered()
    assert jobs["recompute-all-metrics"].every == 3600
    assert jobs["recompute-all-metrics"].run() == 2
    assert all(snapshot_of(m) for m in metrics)
    assert jobs["mark-stale-feeds"].run() == (1, 0)
    assert jobs["mark-stale-feeds"].run() == (0, 0)


def test_recompute_reads_each_initiative_s_feeds_only(now):
    one = InitiativeFactory(framed=True)
    other = InitiativeFactory(framed=True)
    DataFeedFactory(initiative=one, is_stale=True)
    DataFeedFactory(initiative=other, is_stale=False)
    status.recompute(now=now)
    assert snapshot_of(one.metrics.get()).verdict == Verdict.STALE
    assert snapshot_of(other.metrics.get()).verdict == Verdict.INSUFFICIENT_DATA


# The cycle collector, paused while a recompute builds and writes its rows ------------------
def test_recompute_judges_with_the_cycle_collector_paused_and_restarts_it(metric, monkeypatch):
    import gc

    seen = []
    judge = status._judge

    def watched(*args, **kwargs):
        seen.append(gc.isenabled())
        return judge(*args, **kwargs)

    monkeypatch.setattr(status, "_judge", watched)
    assert gc.isenabled()
    assert status.recompute() == 1
    assert seen == [False]
    assert gc.isenabled()


def test_the_cycle_collector_restarts_when_a_recompute_fails(metric, monkeypatch):
    import gc

    def broken(snapshots):
        raise RuntimeError("the snapshot table is gone")

    monkeypatch.setattr(status, "_insert_snapshots", broken)
    with pytest.raises(RuntimeError):
        status.recompute()
    assert gc.isenabled()
    assert not MetricSnapshot.objects.exists()


def test_a_caller_that_paused_the_cycle_collector_finds_it_still_paused(metric):
    import gc

    gc.disable()
    try:
        assert status.recompute() == 1
        assert not gc.isenabled()
    finally:
        gc.enable()
