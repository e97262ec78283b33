"""Daily rollups: kept by the database for every writer, and read by the recompute for whole
days with the same figures as the raw aggregate of the window.

The reference is `status.raw_window_stats` (every raw row of the window, as recompute read
before rollups). Random data is written through every path (the API's unnest insert and its
COPY insert, ORM bulk inserts, single rows) in several batches per day, so rollup rows are
merged many times, with observations on the exact midnights, the exact window starts and
`now`, and ties of observed_at between feeds.
"""

import math
import random
import statistics
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections
from django.db.models import Count, Max, Min, Sum

from metrics import ingest, partitions, rollups, status
from metrics.models import (
    Aggregation,
    Cohort,
    DailyRollup,
    Metric,
    MetricSnapshot,
    Observation,
    Verdict,
)
from tests.factories import DataFeedFactory, InitiativeFactory, MetricFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 15, 30, 12, 345678, tzinfo=UTC)
WINDOWS = [1, 2, 7, 14, 30]
AGGREGATIONS = [Aggregation.MEAN, Aggregation.SUM, Aggregation.LAST]


def _moments(rng: random.Random, count: int) -> list[datetime]:
    """Random instants over the last 40 days, with the awkward ones always among them."""
    midnight = datetime(NOW.year, NOW.month, NOW.day, tzinfo=UTC)
    special = [NOW, midnight, midnight - timedelta(microseconds=1)]
    for days in WINDOWS:
        start = NOW - timedelta(days=days)
        special += [start, start + timedelta(microseconds=1), start.replace(hour=0, minute=0)]
    spread = [NOW - timedelta(seconds=rng.uniform(0, 40 * 86400)) for _ in range(count)]
    return special + spread


@pytest.fixture
def portfolio():
    """Metrics over every window and aggregation, two feeds each, values around a million
    varying in the fourth decimal for some (where a plain sum of squares would cancel)."""
    rng = random.Random(20261205)
    initiative = InitiativeFactory()
    feeds = [DataFeedFactory(initiative=initiative), DataFeedFactory(initiative=initiative)]
    metrics = []
    for i, (days, aggregation) in enumerate((d, a) for d in WINDOWS for a in AGGREGATIONS):
        metrics.append(
            MetricFactory(
                initiative=initiative,
                name=f"m{i}",
                slug=f"m{i}",
                is_primary=False,
                comparison_window_days=days,
                aggregation=aggregation,
                ship_threshold=50,
            )
        )
    rows = []
    for metric in metrics:
        centre = 1e6 if metric.pk % 2 else 50.0
        for moment in _moments(rng, 120):
            cohort = rng.choice([Cohort.PILOT, Cohort.BASELINE, Cohort.PRODUCTION])
            value = round(centre + rng.gauss(0, 1e-3 if centre > 1e3 else 10), 6)
            rows.append((metric.pk, cohort, moment, value))
    rng.shuffle(rows)
    # Through the API's two insert paths, in batches, from both feeds (the same instants on
    # both feeds tie on observed_at), then some rows one at a time through the ORM.
    third = len(rows) // 3
    for feed, part in ((feeds[0], rows[:third]), (feeds[1], rows[third : 2 * third])):
        for start in range(0, len(part), 700):
            ingest.store(feed, part[start : start + 700])
        ingest.store(feed, part[: ingest.COPY_FROM_ROWS])  # all duplicates: nothing changes
    big = rows[2 * third :]
    ingest.store(feeds[1], big[:1500])  # by COPY on PostgreSQL
    Observation.objects.bulk_create(
        Observation(metric_id=m, feed=feeds[0], cohort=c, observed_at=t, value=v)
        for m, c, t, v in big[1500:-20]
    )
    for m, c, t, v in big[-20:]:
        Observation.objects.create(metric_id=m, feed=feeds[0], cohort=c, observed_at=t, value=v)
    return metrics


def _day(moment: datetime):
    return moment.astimezone(UTC).date()


def test_each_rollup_is_the_aggregate_of_its_day(portfolio):
    by_key: dict = {}
    for row in Observation.objects.order_by("observed_at", "id"):
        by_key.setdefault((row.metric_id, row.cohort, _day(row.observed_at)), []).append(row)
    rollups_held = {(r.metric_id, r.cohort, r.day): r for r in DailyRollup.objects.all()}

    assert set(rollups_held) == set(by_key)
    for key, rows in by_key.items():
        rollup, values = rollups_held[key], [r.value for r in rows]
        assert rollup.count == len(values)
        assert rollup.total == pytest.approx(math.fsum(values), rel=1e-12)
        assert rollup.sum_sq_dev == pytest.approx(
            statistics.pvariance(values) * len(values), rel=1e-6, abs=1e-9
        )
        assert (rollup.minimum, rollup.maximum) == (min(values), max(values))
        last = max(rows, key=lambda r: (r.observed_at, r.id))
        assert (rollup.last_at, rollup.last_id, rollup.last_value) == (
            last.observed_at,
            last.id,
            last.value,
        )


@pytest.mark.parametrize(
    "now",
    [
        NOW,
        datetime(2026, 11, 20, tzinfo=UTC),  # on a midnight: no partial last day
        datetime(2026, 11, 20, tzinfo=UTC) - timedelta(microseconds=1),
        NOW - timedelta(days=3, hours=7),
    ],
    ids=["afternoon", "midnight", "just-before-midnight", "days-ago"],
)
@pytest.mark.parametrize("merge", ["one-pass", "portable"])
def test_recompute_from_rollups_gives_the_raw_aggregate_s_figures(
    portfolio, now, merge, monkeypatch
):
    """Either merge of the parts: PostgreSQL's one pass (gantry_moments), and the plain SQL
    that other databases run, here run on PostgreSQL too so that neither goes untested."""
    if merge == "portable":
        monkeypatch.setattr(rollups, "_COMBINED_PG", rollups._COMBINED_PORTABLE)
    metrics = list(Metric.objects.all())
    for filtered in (False, True):
        from_rollups = rollups.window_stats(metrics, now, filtered=filtered)
        from_raw = status.raw_window_stats(metrics, now, filtered=filtered)

        assert set(from_rollups) == set(from_raw)
        for key, expected in from_raw.items():
            got = from_rollups[key]
            assert got.count == expected.count, key
            assert got.total == pytest.approx(expected.total, rel=1e-9), key
            assert got.mean == pytest.approx(expected.mean, rel=1e-9), key
            if expected.stddev is None:
                assert got.stddev is None, key
            else:
                assert got.stddev == pytest.approx(expected.stddev, rel=1e-6), key
            assert got.last == expected.last, key


def test_snapshots_are_the_same_whichever_path_recompute_takes(portfolio, settings):
    status.recompute(now=NOW)
    settings.GANTRY_RECOMPUTE_FROM_ROLLUPS = False
    status.recompute(now=NOW)
    for metric in Metric.objects.all():
        new, old = MetricSnapshot.objects.filter(metric=metric).order_by("id")
        assert (old.verdict, old.pilot_count, old.baseline_count) == (
            new.verdict,
            new.pilot_count,
            new.baseline_count,
        )
        for figure in ("pilot_value", "baseline_value", "lift", "mean_lift", "confidence"):
            a, b = getattr(old, figure), getattr(new, figure)
            assert (a is None) == (b is None), figure
            if a is not None:
                # Half the metrics sit around a million and vary in the fourth decimal: a
                # difference of means there carries either path's last-bit rounding (about
                # 1e-10 of a million) into the confidence at 1e-6.
                assert b == pytest.approx(a, rel=1e-6, abs=1e-5), figure


def test_the_rollups_of_a_deleted_metric_go_with_it(portfolio):
    metric = portfolio[0]
    assert DailyRollup.objects.filter(metric=metric).exists()
    metric.delete()
    assert not DailyRollup.objects.filter(metric_id=metric.pk).exists()


def test_a_day_holding_an_unbounded_value_is_an_error_for_its_metric_alone(db):
    """A row beyond ±1e50 (stored before ingestion bounded values) on a whole day of the
    window: the day's sums are NULL and the metric's recompute says so; others compute."""
    initiative = InitiativeFactory()
    feed = DataFeedFactory(initiative=initiative)
    poisoned, healthy = (
        MetricFactory(initiative=initiative, name=n, slug=n, is_primary=False, ship_threshold=1)
        for n in ("poisoned", "healthy")
    )
    three_days_ago = NOW - timedelta(days=3)
    for metric in (poisoned, healthy):
        Observation.objects.bulk_create(
            Observation(
                metric=metric,
                feed=feed,
                cohort=Cohort.PILOT,
                observed_at=three_days_ago + timedelta(minutes=i),
                value=1e160 if metric is poisoned and i == 3 else 2.0,
            )
            for i in range(8)
        )
    rollup = DailyRollup.objects.get(metric=poisoned)
    assert rollup.count == 8 and rollup.total is None and rollup.maximum == 1e160

    status.recompute(now=NOW)

    poisoned.refresh_from_db()
    healthy.refresh_from_db()
    assert poisoned.latest_snapshot.verdict == Verdict.ERROR
    assert poisoned.latest_snapshot.summary.startswith(
        "could not be computed: value out of range: overflow."
    )
    assert healthy.latest_snapshot.verdict == Verdict.MEETING
    assert healthy.latest_snapshot.pilot_count == 8


def test_the_daily_series_is_one_figure_per_day_as_the_metric_aggregates(portfolio):
    for metric in Metric.objects.all()[:6]:
        series = rollups.daily(metric, days=10, now=NOW)
        days = {d.day for d in series}
        held = (
            Observation.objects.filter(metric=metric, cohort=Cohort.PILOT)
            .filter(observed_at__date__gt=_day(NOW) - timedelta(days=10))
            .filter(observed_at__date__lte=_day(NOW))
        )
        assert days == {_day(t) for t in held.values_list("observed_at", flat=True)}
        assert [d.day for d in series] == sorted(days)
        for point in series:
            rows = held.filter(observed_at__date=point.day)
            figures = rows.aggregate(n=Count("id"), total=Sum("value"))
            assert point.count == figures["n"]
            expected = {
                Aggregation.SUM: figures["total"],
                Aggregation.MEAN: figures["total"] / figures["n"],
                Aggregation.LAST: rows.order_by("-observed_at", "-id").first().value,
            }[metric.aggregation]
            assert point.value == pytest.approx(expected, rel=1e-12)
        assert rollups.dailies([metric], days=10, now=NOW)[metric.pk][Cohort.PILOT] == series


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_to_the_same_day_are_both_counted(require_postgres):
    """Two connections insert into the same (metric, cohort, day) at once: each merge
    re-reads the row the other committed (ON CONFLICT DO UPDATE), so neither is lost."""
    initiative = InitiativeFactory()
    feeds = [DataFeedFactory(initiative=initiative) for _ in range(2)]
    metric = MetricFactory(initiative=initiative, is_primary=False, name="m", slug="m")
    day = datetime(2026, 11, 19, tzinfo=UTC)
    barrier = threading.Barrier(2)
    errors = []

    def deliver(index: int) -> None:
        try:
            rows = [
                (metric.pk, Cohort.PILOT, day + timedelta(seconds=10 * i + index), float(i + index))
                for i in range(300)
            ]
            barrier.wait(timeout=10)
            for start in range(0, 300, 50):
                ingest.store(feeds[index], rows[start : start + 50])
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    rollup = DailyRollup.objects.get(metric=metric)
    raw = Observation.objects.filter(metric=metric).aggregate(
        n=Count("id"), total=Sum("value"), low=Min("value"), high=Max("value")
    )
    values = list(Observation.objects.filter(metric=metric).values_list("value", flat=True))
    assert (rollup.count, rollup.minimum, rollup.maximum) == (600, raw["low"], raw["high"])
    assert rollup.total == pytest.approx(raw["total"], rel=1e-12)
    assert rollup.sum_sq_dev == pytest.approx(statistics.pvariance(values) * 600, rel=1e-9)
    assert rollup.last_value == 300.0  # 299 + 1, at the day's latest instant


def test_observations_are_partitioned_by_month_on_postgresql(require_postgres):
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = 'metrics_observation'")
        assert cursor.fetchone()[0] == "p"
    partitions.ensure_partitions(now=NOW)
    initiative = InitiativeFactory()
    metric = MetricFactory(initiative=initiative, is_primary=False, name="m", slug="m")
    feed = DataFeedFactory(initiative=initiative)
    observation = Observation.objects.create(
        metric=metric, feed=feed, cohort=Cohort.PILOT, observed_at=NOW, value=1
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM metrics_observation WHERE id = %s",
            [observation.pk],
        )
        assert cursor.fetchone()[0] == "metrics_observation_y2026m11"
