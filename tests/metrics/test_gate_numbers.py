"""The numbers in a gate sentence agree, and the database-to-statistics path is checked.

The confidence is Welch's test on the cohorts' means, so the lift quoted beside it is the lift
of the means; for a total or a latest value the aggregate's own lift is stated too, labelled.
"""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
import scipy.stats
from django.utils import timezone

from gates.criteria import registry
from gates.stages import Stage
from gates.stages import Transition as T
from metrics import status
from metrics.models import Aggregation, Cohort, Direction, Metric, Observation, Verdict
from metrics.stats import CohortStats, compare
from metrics.status import lift_text
from portfolio.models import Initiative
from tests.factories import DataFeedFactory, MetricFactory
from tests.helpers import advance

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


def observe(metric, feed, cohort, values, *, now, step=timedelta(hours=1)) -> None:
    Observation.objects.bulk_create(
        Observation(
            metric=metric, feed=feed, cohort=cohort, observed_at=now - step * (i + 1), value=v
        )
        for i, v in enumerate(values)
    )


def snapshot_of(metric):
    return Metric.objects.select_related("latest_snapshot").get(pk=metric.pk).latest_snapshot


# The lift beside the confidence ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("aggregation", "lift", "mean_lift", "text"),
    [
        (Aggregation.MEAN, 0.087, 0.087, "+8.7%"),
        (Aggregation.MEAN, 0.087, None, "+8.7%"),  # a snapshot from before mean_lift was kept
        (Aggregation.SUM, -0.143, 0.05, "total -14.3%; mean +5.0%"),
        (Aggregation.LAST, 0.2, -0.01, "latest +20.0%; mean -1.0%"),
        (Aggregation.SUM, None, 0.05, "mean +5.0%"),
        (Aggregation.SUM, -0.143, None, "total -14.3%"),
        (Aggregation.MEAN, None, None, ""),
    ],
)
def test_the_lift_text_labels_an_aggregate_s_lift_apart_from_the_mean_s(
    aggregation, lift, mean_lift, text
):
    assert lift_text(aggregation, lift, mean_lift) == text


def test_compare_also_gives_the_lift_of_the_means_the_test_is_about():
    pilot = CohortStats(count=8, mean=100.0, total=800.0, stddev=5.0, last=99.0)
    baseline = CohortStats(count=10, mean=90.0, total=900.0, stddev=5.0, last=92.0)
    comparison = compare(
        pilot, baseline, aggregation=Aggregation.SUM, higher_is_better=True, min_count=5
    )
    assert comparison.lift == pytest.approx(800 / 900 - 1)
    assert comparison.mean_lift == pytest.approx(100 / 90 - 1)
    assert comparison.confidence > 0.99


@pytest.fixture
def launched(manager):
    initiative = MetricFactory(
        aggregation=Aggregation.SUM, ship_threshold=Decimal("500"), baseline=None
    ).initiative
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    Initiative.objects.filter(pk=initiative.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=20)
    )
    return Initiative.objects.get(pk=initiative.pk)


def test_a_sum_metric_s_gate_sentence_never_pairs_the_total_s_lift_with_the_confidence(
    launched, now
):
    """Fewer but better pilot observations: the total is lower, the mean higher. The sentence
    states both, labelled; the confidence belongs to the means."""
    metric = launched.primary_metric
    feed = DataFeedFactory(initiative=launched)
    pilot = [99.0, 101.0, 100.0, 98.0, 102.0, 100.0, 99.0, 101.0]
    observe(metric, feed, Cohort.PILOT, pilot, now=now)
    observe(metric, feed, Cohort.BASELINE, [89.0, 91.0, 90.0, 88.0, 92.0] * 2, now=now)

    status.recompute(metric_ids=[metric.pk], now=now)

    snapshot = snapshot_of(metric)
    assert snapshot.lift == pytest.approx(800 / 900 - 1)
    assert snapshot.mean_lift == pytest.approx(100 / 90 - 1)
    assert snapshot.summary == (
        "pilot total 800 over 14 days meets 500; baseline 900; total -11.1%; mean +11.1%, "
        "over 99.9% confidence"
    )
    result = {o.key: o for o in registry.evaluate(launched, T.WIDEN)}["pilot_beats_baseline"]
    assert result.passed
    assert result.reason == (
        "The pilot beats the baseline: total -11.1%; mean +11.1%, over 99.9% confidence "
        "(n = 8 and 10)."
    )


def test_a_latest_value_metric_labels_both_lifts_too(feed_metric_last, now):
    metric, feed = feed_metric_last
    observe(metric, feed, Cohort.PILOT, [80.0, 95.0, 96.0, 94.0, 95.0, 96.0], now=now)
    observe(metric, feed, Cohort.BASELINE, [90.0, 85.0, 84.0, 86.0, 85.0, 84.0], now=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    summary = snapshot_of(metric).summary
    assert "latest -11.1%; mean +8.2%" in summary, summary


@pytest.fixture
def feed_metric_last():
    metric = MetricFactory(aggregation=Aggregation.LAST, ship_threshold=Decimal("70"))
    return metric, DataFeedFactory(initiative=metric.initiative)


def test_a_mean_metric_s_sentence_keeps_one_unlabelled_lift(feed_metric_mean, now):
    metric, feed = feed_metric_mean
    observe(metric, feed, Cohort.PILOT, [88.0, 90.0, 92.0, 90.0, 90.0], now=now)
    observe(metric, feed, Cohort.BASELINE, [78.0, 80.0, 82.0, 80.0, 80.0], now=now)
    status.recompute(metric_ids=[metric.pk], now=now)
    snapshot = snapshot_of(metric)
    assert snapshot.lift == snapshot.mean_lift == pytest.approx(0.125)
    assert "; +12.5%, " in snapshot.summary and "mean +" not in snapshot.summary


@pytest.fixture
def feed_metric_mean():
    metric = MetricFactory()
    return metric, DataFeedFactory(initiative=metric.initiative)


# The database to statistics path, checked against scipy on raw values -----------------------------
@pytest.mark.parametrize("direction", [Direction.HIGHER, Direction.LOWER])
@pytest.mark.parametrize("aggregation", Aggregation.values)
def test_the_stored_confidence_is_scipy_s_welch_test_on_the_raw_observations(
    now, direction, aggregation
):
    """From rows in the database (whichever: the suite runs on PostgreSQL and on SQLite) to the
    snapshot's p-value. Using the population deviation the database returns, without the
    sample correction, would fail this."""
    rng = random.Random(20260302)
    metric = MetricFactory(direction=direction, aggregation=aggregation)
    feed = DataFeedFactory(initiative=metric.initiative)
    pilot = [rng.gauss(91.0, 6.0) for _ in range(7)]
    baseline = [rng.gauss(87.0, 3.0) for _ in range(9)]
    observe(metric, feed, Cohort.PILOT, pilot, now=now)
    observe(metric, feed, Cohort.BASELINE, baseline, now=now)
    # Neither another cohort nor rows outside the window take part.
    observe(metric, feed, Cohort.PRODUCTION, [500.0] * 5, now=now)
    observe(metric, feed, Cohort.PILOT, [-500.0] * 3, now=now - timedelta(days=15))

    status.recompute(metric_ids=[metric.pk], now=now)

    expected = scipy.stats.ttest_ind(
        pilot,
        baseline,
        equal_var=False,
        alternative="greater" if direction == Direction.HIGHER else "less",
    )
    snapshot = snapshot_of(metric)
    assert (snapshot.pilot_count, snapshot.baseline_count) == (7, 9)
    assert snapshot.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert snapshot.confidence == pytest.approx(1 - expected.pvalue, rel=1e-9)
    assert snapshot.mean_lift == pytest.approx(
        (sum(pilot) / 7 - sum(baseline) / 9) / abs(sum(baseline) / 9)
    )


# Windows of several lengths in one recompute ------------------------------------------------------
def test_each_metric_s_window_boundary_holds_when_windows_differ_in_one_recompute(now):
    """Per metric: a row just inside its own window counts, one exactly on its edge or just
    outside does not, nor one after `now`; the other metrics' longer or shorter windows
    change nothing."""
    windows = [1, 7, 30]
    metrics = [MetricFactory(comparison_window_days=days) for days in windows]
    second = timedelta(seconds=1)
    for metric, days in zip(metrics, windows, strict=True):
        feed = DataFeedFactory(initiative=metric.initiative)
        edge = now - timedelta(days=days)
        for cohort, base in ((Cohort.PILOT, 100.0), (Cohort.BASELINE, 200.0)):
            Observation.objects.bulk_create(
                Observation(metric=metric, feed=feed, cohort=cohort, observed_at=at, value=value)
                for at, value in [
                    (edge + second, base + 1),  # just inside
                    (now, base + 2),  # the window's end is inside
                    (edge, base + 1000),  # on the edge: outside
                    (edge - second, base + 2000),  # just outside
                    (now + second, base + 3000),  # after the window
                ]
            )

    status.recompute(metric_ids=[m.pk for m in metrics], now=now)

    for metric, days in zip(metrics, windows, strict=True):
        snapshot = snapshot_of(metric)
        assert (snapshot.pilot_count, snapshot.baseline_count) == (2, 2), days
        assert (snapshot.pilot_value, snapshot.baseline_value) == (101.5, 201.5), days
        assert snapshot.window_start == now - timedelta(days=days)
        assert snapshot.verdict in {Verdict.MEETING, Verdict.INSUFFICIENT_DATA}
