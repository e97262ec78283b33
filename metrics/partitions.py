"""Observations by month: partitions made ahead of the data, and retention.

On PostgreSQL `metrics_observation` is range-partitioned by `observed_at`, one partition a
month (migration 0011), plus a default partition for whatever no month holds (history older
than the first month, a back-dated row for a month already dropped). A periodic job makes the
next months' partitions before data arrives for them; the retention job drops whole months
past `GANTRY_OBSERVATION_RETENTION_MONTHS` (a DROP, not a DELETE: no table bloat, no vacuum
debt) while their daily rollups stay, and keeps one snapshot per metric per day past
`GANTRY_SNAPSHOT_DAILY_AFTER_DAYS`.

Elsewhere (SQLite) the observations are one ordinary table: partitions are not made, and
retention deletes the expired rows.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import TruncDate

from gates import clock
from metrics.models import Metric, MetricSnapshot, Observation

log = logging.getLogger(__name__)

TABLE = Observation._meta.db_table
DEFAULT = f"{TABLE}_default"
# How many months ahead of the current one have their partition ready.
MONTHS_AHEAD = 3
_NAME = re.compile(rf"^{TABLE}_y(\d{{4}})m(\d{{2}})$")


def month_start(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def months() -> list[date]:
    """The months that have a partition, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = (_NAME.match(name) for name in names)
    return sorted(date(int(m[1]), int(m[2]), 1) for m in found if m)


def create_partition(cursor, month: date) -> str:
    """Make the partition of `month`. Rows the default partition holds for that month (the
    job did not run for months, or history older than the first partition is filled in)
    move into it first: PostgreSQL refuses the partition while they are there."""
    name, start, end = partition_name(month), month, add_months(month, 1)
    bounds = [start.isoformat(), end.isoformat()]
    held = f"SELECT EXISTS (SELECT 1 FROM {DEFAULT} WHERE observed_at >= %s AND observed_at < %s)"  # noqa: S608
    cursor.execute(held, bounds)
    if not cursor.fetchone()[0]:
        cursor.execute(
            f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)", bounds
        )
        return name
    # A standalone table, filled and then attached: moving rows this way fires no insert
    # trigger, so the daily rollups (which already count them) are not counted twice.
    cursor.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
    cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    moved = (
        f"WITH moved AS (DELETE FROM {DEFAULT} WHERE observed_at >= %s AND observed_at < %s "  # noqa: S608
        f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
    )
    cursor.execute(moved, bounds)
    cursor.execute(
        f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", bounds
    )
    return name


def ensure_partitions(*, now: datetime | None = None, ahead: int = MONTHS_AHEAD) -> list[str]:
    """Make the partitions of this month and the next `ahead`, where missing. Returns the
    names made. Nothing to do unless the table is partitioned."""
    if not is_partitioned():
        return []
    this_month = month_start(now or clock.now())
    have = set(months())
    made = []
    for month in (add_months(this_month, i) for i in range(ahead + 1)):
        if month in have:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            made.append(create_partition(cursor, month))
    if made:
        log.info("made observation partitions %s", ", ".join(made))
    return made


def retention_cutoff(now: datetime, months_kept: int) -> datetime:
    """The first moment still kept: the start of the month `months_kept` months back, so
    whole months go at once."""
    return datetime.combine(add_months(month_start(now), -months_kept), datetime.min.time(), UTC)


def drop_expired(*, now: datetime | None = None, months_kept: int | None = None) -> dict:
    """Drop the raw observations older than the retention (whole months); their daily
    rollups stay. Returns {"partitions": names dropped, "rows": rows deleted elsewhere}."""
    months_kept = months_kept or settings.GANTRY_OBSERVATION_RETENTION_MONTHS
    cutoff = retention_cutoff(now or clock.now(), months_kept)
    dropped: list[str] = []
    if not is_partitioned():
        rows, _ = Observation.objects.filter(observed_at__lt=cutoff).delete()
        return {"partitions": dropped, "rows": rows}
    for month in months():
        if add_months(month, 1) > cutoff.date():
            break
        name = partition_name(month)
        with transaction.atomic(), connection.cursor() as cursor:
            # Deferred foreign-key checks of rows written earlier in an enclosing
            # transaction would block the DROP; run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
        dropped.append(name)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {DEFAULT} WHERE observed_at < %s", [cutoff])  # noqa: S608
        rows = cursor.rowcount
    if dropped or rows:
        log.info("retention dropped %s and %s older rows", dropped or "no partition", rows)
    return {"partitions": dropped, "rows": rows}


# Snapshots are thinned a few metrics at a time: short transactions, bounded locks.
THIN_BATCH = 500


def thin_snapshots(*, now: datetime | None = None, days: int | None = None) -> int:
    """Past `days` days, keep each metric's last snapshot of each UTC day (and whatever a
    metric points at as its latest); delete the others. Returns how many were deleted."""
    days = days or settings.GANTRY_SNAPSHOT_DAILY_AFTER_DAYS
    cutoff = (now or clock.now()) - timedelta(days=days)
    by_day = MetricSnapshot.objects.annotate(day=TruncDate("computed_at", tzinfo=UTC))
    later_same_day = by_day.filter(metric=OuterRef("metric"), day=OuterRef("day")).filter(
        Q(computed_at__gt=OuterRef("computed_at"))
        | Q(computed_at=OuterRef("computed_at"), pk__gt=OuterRef("pk"))
    )
    latest = Metric.objects.filter(latest_snapshot__isnull=False).values("latest_snapshot")
    deleted = 0
    ids = list(Metric.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), THIN_BATCH):
        batch = ids[start : start + THIN_BATCH]
        doomed = (
            by_day.filter(metric_id__in=batch, computed_at__lt=cutoff)
            .exclude(pk__in=latest.filter(pk__in=batch))
            .filter(Exists(later_same_day))
        )
        count, _ = MetricSnapshot.objects.filter(pk__in=doomed.values("pk")).delete()
        deleted += count
    return deleted


def retain(*, now: datetime | None = None) -> dict:
    """The daily retention job."""
    now = now or clock.now()
    result = drop_expired(now=now)
    result["snapshots"] = thin_snapshots(now=now)
    return result
