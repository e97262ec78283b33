"""Observation partitions made ahead, retention of raw rows by whole months (rollups stay),
and snapshots thinned to one per metric per day past 30 days."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from jobs import registry
from metrics import partitions, status
from metrics.models import Cohort, DailyRollup, MetricSnapshot, Observation
from tests.factories import DataFeedFactory, InitiativeFactory, MetricFactory, MetricSnapshotFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


@pytest.fixture
def metric():
    initiative = InitiativeFactory()
    return MetricFactory(initiative=initiative, is_primary=False, name="m", slug="m")


@pytest.fixture
def feed(metric):
    return DataFeedFactory(initiative=metric.initiative)


def observe(metric, feed, *moments, value=1.0):
    Observation.objects.bulk_create(
        Observation(metric=metric, feed=feed, cohort=Cohort.PILOT, observed_at=t, value=value)
        for t in moments
    )


def partition_of(observation_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM metrics_observation WHERE id = %s",
            [observation_id],
        )
        return cursor.fetchone()[0]


def test_the_periodic_jobs_are_registered():
    jobs = registry.registered()
    assert jobs["observation-partitions"].run is partitions.ensure_partitions
    assert jobs["retention"].run is partitions.retain


def test_months_are_counted_across_years():
    assert partitions.add_months(datetime(2026, 11, 1).date(), 3) == datetime(2027, 2, 1).date()
    assert partitions.add_months(datetime(2026, 1, 1).date(), -1) == datetime(2025, 12, 1).date()
    assert partitions.retention_cutoff(NOW, 24) == datetime(2024, 11, 1, tzinfo=UTC)


def test_partitions_are_made_for_this_month_and_the_next_three(require_postgres):
    made = partitions.ensure_partitions(now=NOW)

    expected = {
        f"metrics_observation_y{y}m{m:02d}"
        for y, m in [(2026, 11), (2026, 12), (2027, 1), (2027, 2)]
    }
    # The migration made this month's and the next three when the database was set up.
    assert "metrics_observation_y2026m11" in made and set(made) <= expected
    assert {partitions.partition_name(m) for m in partitions.months()} >= expected
    assert partitions.ensure_partitions(now=NOW) == []


def test_rows_held_by_the_default_partition_move_into_their_new_month(
    require_postgres, metric, feed
):
    """A month whose job never ran: its rows went to the default partition. Making the
    partition moves them, and their rollups are not counted twice."""
    moments = [NOW - timedelta(days=40, hours=h) for h in range(5)]  # October 2026
    observe(metric, feed, *moments)
    first = Observation.objects.order_by("id").first()
    assert partition_of(first.pk) == "metrics_observation_default"
    rollups_before = list(DailyRollup.objects.values_list("day", "count", "total"))

    partitions.ensure_partitions(now=moments[0])

    assert partition_of(first.pk) == "metrics_observation_y2026m10"
    assert Observation.objects.filter(metric=metric).count() == 5
    assert list(DailyRollup.objects.values_list("day", "count", "total")) == rollups_before


def test_retention_drops_whole_expired_months_and_keeps_their_rollups(
    require_postgres, metric, feed
):
    old = datetime(2024, 3, 10, 12, tzinfo=UTC)
    kept = datetime(2024, 11, 2, tzinfo=UTC)  # the first month still kept at 24 months
    for moment in (old, kept):
        partitions.ensure_partitions(now=moment, ahead=0)
    observe(metric, feed, old, old + timedelta(hours=1), kept, NOW)
    observe(metric, feed, datetime(2020, 1, 1, tzinfo=UTC))  # the default partition's

    result = partitions.drop_expired(now=NOW, months_kept=24)

    assert result == {"partitions": ["metrics_observation_y2024m03"], "rows": 1}
    assert sorted(Observation.objects.values_list("observed_at", flat=True)) == [kept, NOW]
    assert DailyRollup.objects.filter(metric=metric).count() == 4  # every day's rollup stays
    assert DailyRollup.objects.get(metric=metric, day=old.date()).count == 2


def test_expired_rows_outside_any_month_partition_are_deleted(metric, feed):
    """SQLite's ordinary table, or PostgreSQL's default partition: row by row."""
    observe(metric, feed, datetime(2024, 10, 31, 23, tzinfo=UTC), datetime(2024, 11, 1, tzinfo=UTC))

    result = partitions.drop_expired(now=NOW, months_kept=24)

    assert result["rows"] == 1
    assert Observation.objects.get().observed_at == datetime(2024, 11, 1, tzinfo=UTC)
    assert DailyRollup.objects.count() == 2


def test_old_snapshots_are_thinned_to_each_day_s_last(metric):
    def snapshot(at):
        return MetricSnapshotFactory(metric=metric, computed_at=at)

    old_day = [snapshot(NOW - timedelta(days=40, hours=h)) for h in (1, 5, 9)]  # same day
    recent = [snapshot(NOW - timedelta(days=2, hours=h)) for h in (1, 2)]

    deleted = partitions.thin_snapshots(now=NOW, days=30)

    assert deleted == 2
    left = set(MetricSnapshot.objects.values_list("pk", flat=True))
    assert left == {old_day[0].pk, *(s.pk for s in recent)}  # 1 hour ago is the day's last


def test_thinning_keeps_the_snapshot_a_metric_points_at(metric):
    first = MetricSnapshotFactory(metric=metric, computed_at=NOW - timedelta(days=40, hours=9))
    MetricSnapshotFactory(metric=metric, computed_at=NOW - timedelta(days=40, hours=1))
    metric.latest_snapshot = first
    metric.save(update_fields=["latest_snapshot"])

    assert partitions.thin_snapshots(now=NOW, days=30) == 0
    assert MetricSnapshot.objects.count() == 2


def test_recompute_still_reads_whole_days_whose_raw_rows_are_gone(metric, feed, settings):
    """Rollups outlive the raw rows: a window longer than the retention still counts them."""
    metric.comparison_window_days = 365
    metric.ship_threshold = 0
    metric.save()
    moments = [NOW - timedelta(days=200, minutes=i) for i in range(6)]
    observe(metric, feed, *moments, value=3.0)
    Observation.objects.all().delete()  # as retention would, with the rollups kept

    status.recompute(now=NOW)

    metric.refresh_from_db()
    assert metric.latest_snapshot.pilot_count == 6
    assert metric.latest_snapshot.pilot_value == 3.0
