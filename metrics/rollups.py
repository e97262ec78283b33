"""Window statistics from the daily rollups, and daily series for the trend chart.

A metric's comparison window is (now - N days, now]. Its whole UTC days are read from the
rollups (kept by the database, see migration 0012); only the partial first and last day
come from the raw observations. Per metric and cohort, the parts combine exactly as one
aggregate over the raw rows would: counts and sums add up, and the spread by Chan's formula,

    M2 = Σ m2ᵢ + Σ nᵢ · (meanᵢ - mean)²,

which stays accurate where a plain sum of squares would cancel (on PostgreSQL, merged pair
by pair by the database's own `float8_combine`, see migration 0016). One query covers every
metric asked for, whatever their windows (plus one for metrics judged on their last value).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import DataError, connection
from django.db.models import Count, F, Q, Sum, Variance, Window
from django.db.models.functions import RowNumber

from metrics.models import Aggregation, Cohort, DailyRollup, Metric, Observation
from metrics.stats import CohortStats

COMPARED = [Cohort.PILOT, Cohort.BASELINE]


@dataclass(frozen=True)
class Split:
    """One window length's split at `now`: raw rows in (start, first_day) and
    [today, now]; rollups of the days in [first_day, today)."""

    days: int
    start: datetime
    first_day: datetime  # midnight UTC after `start`
    today: datetime  # midnight UTC before `now`
    now: datetime

    @classmethod
    def of(cls, days: int, now: datetime) -> Split:
        start = now - timedelta(days=days)
        first_day = datetime.combine(start.astimezone(UTC).date(), time(), UTC) + timedelta(days=1)
        today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
        return cls(days=days, start=start, first_day=min(first_day, today), today=today, now=now)

    def raw(self) -> Q:
        return Q(observed_at__gt=self.start, observed_at__lt=self.first_day) | Q(
            observed_at__gte=self.today, observed_at__lte=self.now
        )

    def whole_days(self) -> Q:
        return Q(day__gte=self.first_day.date(), day__lt=self.today.date())


def _splits(metrics: list[Metric], now: datetime) -> list[Split]:
    return [Split.of(days, now) for days in sorted({m.comparison_window_days for m in metrics})]


def _raw_part(metrics: list[Metric], splits: list[Split], *, filtered: bool):
    in_window = Q()
    ranges = set()
    for split in splits:
        in_window |= Q(metric__comparison_window_days=split.days) & split.raw()
        ranges |= {("gt", split.start, split.first_day), ("gte", split.today, split.now)}
    partial_days = Q()
    for low, start, end in sorted(ranges, key=lambda r: r[1]):
        if end > start or (low == "gte" and end == start):  # [now, now] holds `now`
            upper = "lt" if low == "gt" else "lte"
            partial_days |= Q(**{f"observed_at__{low}": start, f"observed_at__{upper}": end})
    rows = Observation.objects.filter(
        in_window,
        # The same time ranges again, apart from the metrics' windows: a handful of partial
        # days the planner prunes partitions by and reads through the time index, instead
        # of every row of the widest window.
        partial_days,
        cohort__in=COMPARED,
    )
    if filtered:
        rows = rows.filter(metric_id__in=[m.pk for m in metrics])
    return rows


def _rollup_part(metrics: list[Metric], splits: list[Split], *, filtered: bool):
    in_window = Q()
    for split in splits:
        in_window |= Q(metric__comparison_window_days=split.days) & split.whole_days()
    rows = DailyRollup.objects.filter(in_window, cohort__in=COMPARED)
    if filtered:
        rows = rows.filter(metric_id__in=[m.pk for m in metrics])
    return rows


def window_stats(metrics: list[Metric], now: datetime, *, filtered: bool) -> dict:
    """{(metric_id, cohort): CohortStats} over each metric's own comparison window.

    Raises DataError naming an overflow when a rollup in a window could not be summed (a
    value beyond ±1e50, stored before ingestion bounded values), as the raw aggregate would:
    the recompute's containment then isolates the metric."""
    splits = _splits(metrics, now)
    raw = (
        _raw_part(metrics, splits, filtered=filtered)
        .values("metric_id", "cohort")
        .annotate(n=Count("id"), s=Sum("value"), m2=Variance("value", sample=False) * Count("id"))
        .order_by()
    )
    days = (
        _rollup_part(metrics, splits, filtered=filtered)
        .values("metric_id", "cohort")
        .annotate(n=F("count"), s=F("total"), m2=F("sum_sq_dev"))
        .order_by()
    )
    raw_sql, raw_params = raw.query.sql_with_params()
    days_sql, days_params = days.query.sql_with_params()
    parts = f"""
        SELECT metric_id, cohort, n, s, m2 FROM ({days_sql}) AS whole_days
        UNION ALL
        SELECT metric_id, cohort, n, s, m2 FROM ({raw_sql}) AS partial_days
    """  # noqa: S608 - both parts are compiled by the ORM, every value is a parameter
    sql = (_COMBINED_PG if connection.vendor == "postgresql" else _COMBINED_PORTABLE).format(
        parts=parts
    )
    result: dict = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, (*days_params, *raw_params))
        rows = cursor.fetchall()
    for metric_id, cohort, n, total, m2, unsummed in rows:
        if unsummed:
            raise DataError("value out of range: overflow")
        result[(metric_id, cohort)] = CohortStats(
            count=n,
            mean=total / n,
            total=total,
            stddev=_sample_sd(m2, n),
        )
    last_metrics = [m for m in metrics if m.aggregation == Aggregation.LAST]
    if last_metrics:
        with_last(result, _last_values(last_metrics, splits))
    return result


# Per metric and cohort: count, sum, M2 of the union of the parts, and how many parts could
# not be summed. On PostgreSQL in one pass, by the aggregate of migration 0016 (Chan's
# pairwise merge, in C); a part's NULL sum is counted, and merged as zero, since the merge
# refuses a NULL.
_COMBINED_PG = """
    SELECT metric_id, cohort, CAST(n AS BIGINT), moments[2], moments[3], unsummed FROM (
        SELECT metric_id, cohort, SUM(n) AS n,
            gantry_moments(ARRAY[n, COALESCE(s, 0), COALESCE(m2, 0)]::float8[]) AS moments,
            SUM(CASE WHEN s IS NULL THEN 1 ELSE 0 END) AS unsummed
        FROM ({parts}) AS parts GROUP BY metric_id, cohort
    ) AS combined
"""
# Elsewhere in plain SQL: each group's mean first, then each part's deviation from it (two
# hash aggregates and a hash join, where a window function would sort every part).
_COMBINED_PORTABLE = """
    WITH parts AS ({parts}),
    groups AS (
        SELECT metric_id, cohort, CAST(SUM(n) AS BIGINT) AS n,
            SUM(s) AS s, SUM(CASE WHEN s IS NULL THEN 1 ELSE 0 END) AS unsummed
        FROM parts GROUP BY metric_id, cohort
    )
    SELECT g.metric_id, g.cohort, g.n, g.s,
        SUM(p.m2 + p.n * (p.s / p.n - g.s / g.n) * (p.s / p.n - g.s / g.n)), g.unsummed
    FROM parts p JOIN groups g ON g.metric_id = p.metric_id AND g.cohort = p.cohort
    GROUP BY g.metric_id, g.cohort, g.n, g.s, g.unsummed
"""


def with_last(stats: dict, last: dict) -> None:
    """Set each (metric_id, cohort)'s last value in `stats` from `last`."""
    for key, value in last.items():
        stats[key] = dataclasses.replace(stats[key], last=value)


def last_rows(rows):
    """(metric_id, cohort, observed_at, id, value) of the last row, by observed_at then id,
    of each metric and cohort among `rows` (observations)."""
    return (
        rows.annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("metric_id"), F("cohort")],
                order_by=[F("observed_at").desc(), F("id").desc()],
            )
        )
        .filter(rank=1)
        .values_list("metric_id", "cohort", "observed_at", "id", "value")
    )


def _sample_sd(m2: float | None, n: int) -> float | None:
    if m2 is None or n < 2:
        return None
    return math.sqrt(max(m2, 0.0) / (n - 1))


def _last_values(metrics: list[Metric], splits: list[Split]) -> dict:
    """{(metric_id, cohort): the value observed last in the window}: the latest of each
    whole day's last value and of the raw rows' last."""
    candidates: dict = {}

    def offer(key, at, pk, value) -> None:
        if key not in candidates or (at, pk) > candidates[key][:2]:
            candidates[key] = (at, pk, value)

    for metric_id, cohort, at, pk, value in _rollup_part(
        metrics, splits, filtered=True
    ).values_list("metric_id", "cohort", "last_at", "last_id", "last_value"):
        offer((metric_id, cohort), at, pk, value)
    ranked = last_rows(_raw_part(metrics, splits, filtered=True))
    for metric_id, cohort, at, pk, value in ranked:
        offer((metric_id, cohort), at, pk, value)
    return {key: value for key, (_, _, value) in candidates.items()}


# Daily series ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Day:
    day: date
    count: int
    value: float | None  # the day's figure as the metric aggregates


def daily(metric: Metric, *, cohort: str = Cohort.PILOT, days: int, now: datetime) -> list[Day]:
    """The metric's figure per UTC day over the last `days` days (today included), oldest
    first; days without observations are left out."""
    today = now.astimezone(UTC).date()
    rows = DailyRollup.objects.filter(
        metric=metric, cohort=cohort, day__gt=today - timedelta(days=days), day__lte=today
    ).order_by("day")
    return [Day(day=r.day, count=r.count, value=r.value(metric.aggregation)) for r in rows]


def dailies(
    metrics: Iterable[Metric], *, cohorts=(Cohort.PILOT,), days: int, now: datetime
) -> dict[int, dict[str, list[Day]]]:
    """`daily` for several metrics and cohorts in one query: {metric id: {cohort: days}}."""
    by_id = {m.pk: m for m in metrics}
    today = now.astimezone(UTC).date()
    rows = DailyRollup.objects.filter(
        metric_id__in=list(by_id),
        cohort__in=list(cohorts),
        day__gt=today - timedelta(days=days),
        day__lte=today,
    ).order_by("metric_id", "cohort", "day")
    result: dict[int, dict[str, list[Day]]] = {pk: {c: [] for c in cohorts} for pk in by_id}
    for r in rows:
        aggregation = by_id[r.metric_id].aggregation
        result[r.metric_id][r.cohort].append(
            Day(day=r.day, count=r.count, value=r.value(aggregation))
        )
    return result
