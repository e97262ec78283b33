"""The observations a demo feed delivers, and when it delivers them.

Values come from a seeded random.Random, so the demo's numbers are the same on every run and
machine; times are counted back from the moment the command runs. A live feed delivers what
was observed since its last delivery every morning (twice a day when its freshness window is
shorter than a day; weekly far back, see delivery_times), and once more at the end of its
life; a one-off extract delivers all of its rows at once.

No cohort may hold exactly one observation in a metric's window on any day: on SQLite,
status.recompute's sample standard deviation fails on a single value, so every series has at
least two observations a day or arrives in one extract.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gantry.management.commands._demo_spec import FeedPlan, Series

# A live feed's scheduled delivery: early morning, before anyone decides on its data.
DELIVERY_HOUR = 6
# The weekday (Monday) of the weekly delivery that stands for the daily ones far back.
WEEKLY = 0


@dataclass(frozen=True)
class Point:
    cohort: str
    observed_at: datetime
    value: float


def points(title: str, plan: FeedPlan, *, unit: str, start: datetime, end: datetime) -> list[Point]:
    """Every observation `plan` delivers between its registration (`start`) and `end`."""
    result = []
    for series in plan.series:
        first = end - timedelta(days=series.days) if series.days else start
        if plan.kind == "live":  # nothing is observed through a feed before it exists
            first = max(first, start)
        result += _series(f"{title}/{plan.name}/{series.cohort}", series, unit, first, end)
    return sorted(result, key=lambda p: p.observed_at)


def _series(seed: str, series: Series, unit: str, first: datetime, end: datetime) -> list[Point]:
    # A string seed is hashed with SHA-512: the same numbers on every run and machine.
    rng = random.Random(seed)  # noqa: S311 - not cryptography
    step = timedelta(days=1) / series.per_day
    slots = max(1, int((end - first) / step))
    drift_to = series.mean if series.drift_to is None else series.drift_to
    result = []
    for k in range(slots):  # k = 0 is the newest
        ago = k + rng.uniform(0.1, 0.9)
        typical = drift_to + (series.mean - drift_to) * ago / slots
        value = bounded(rng.gauss(typical, series.noise), unit=unit, typical=typical)
        result.append(Point(series.cohort, (end - step * ago).replace(microsecond=0), value))
    return result


def delivery_times(
    plan: FeedPlan, *, start: datetime, end: datetime, daily: Callable[[datetime], bool]
) -> list[datetime]:
    """When the feed delivers: on schedule after `start`, and last at `end`.

    On the days `daily` names (recent weeks, the days before a decision) every scheduled
    delivery is made; further back, one a week, on WEEKLY, stands for them and carries the
    week's observations, so the demo loads in seconds rather than minutes.
    """
    if plan.kind != "live":
        return [end]
    hours = 24 if plan.freshness_hours >= 24 else plan.freshness_hours / 2
    every = timedelta(hours=hours)
    moment = start.replace(hour=DELIVERY_HOUR, minute=0, second=0, microsecond=0) + every
    times = []
    while moment < end:
        if daily(moment) or moment.weekday() == WEEKLY:
            times.append(moment)
        moment += every
    return [*times, end]


def batches(points: list[Point], times: list[datetime]) -> list[tuple[datetime, list[Point]]]:
    """Each delivery with what was observed since the delivery before it (empty ones left out).

    A delivery carries what was observed before its moment: a point observed at that very
    second goes with the next one, or it would be stored as observed when it was ingested.
    """
    result, i = [], 0
    for at in times:
        batch = []
        while i < len(points) and points[i].observed_at < at:
            batch.append(points[i])
            i += 1
        if batch:
            result.append((at, batch))
    return result


def bounded(value: float, *, unit: str, typical: float) -> float:
    """A value the metric's unit allows: a percentage in 0-100, anything else positive."""
    decimals = 1 if abs(typical) >= 10 else 2
    value = round(value, decimals)
    if unit.strip() == "%":
        value = min(100.0, max(0.0, value))
    else:
        value = max(value, round(abs(typical) * 0.05, decimals) or 10.0**-decimals)
    return value
