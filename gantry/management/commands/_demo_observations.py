"""The demo's data feeds and the observation histories they delivered.

Keyed by initiative title (see _demo_data.INITIATIVES). Every initiative from thin slice on
has a feed; the plans are chosen so that the portfolio shows every metric verdict:

- meeting, the pilot clearly beating the baseline: call summarisation and photo estimate
  (narrow launch, long enough for gate 4's window), and most wide launches;
- below: cash application (beats the baseline, misses the threshold) and transaction
  monitoring (drifted under its threshold in the last two weeks);
- insufficient data: inbound shipment ETA (three pilot observations since launch);
- stale: sanctions triage and contract clause extraction (their only live feed went quiet).

Gate 2 in the thin slice: invoice matching and email intent routing have fresh live feeds;
the new-joiner assistant has only a one-off extract (gate 2 refuses it); contract clause
extraction's live feed is stale.

Values are generated from a seeded random.Random, so the demo's numbers are the same on every
run; timestamps are counted back from the moment the command runs.

No cohort may hold exactly one observation in a metric's window on any day of the snapshot
history: on SQLite, status.recompute's sample standard deviation fails on a single value.
A series that starts inside the history therefore has at least two observations a day (with
slots a whole number of days from now, a window then always holds a multiple of that).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from metrics.models import Cohort, FeedKind

PILOT, BASELINE = Cohort.PILOT, Cohort.BASELINE
EXTRACT = FeedKind.ONE_OFF_EXTRACT


@dataclass(frozen=True)
class Series:
    """Observations of the primary metric for one cohort, `per_day` a day for `days` days."""

    cohort: Cohort
    mean: float  # the typical value when the series begins
    noise: float  # standard deviation of one observation around the typical value
    drift_to: float | None = None  # the typical value at the series' end (default: mean)
    days: int = 45
    per_day: int = 4


@dataclass(frozen=True)
class FeedPlan:
    name: str
    owner: str  # username of the person who answers for the feed
    series: tuple[Series, ...]
    kind: FeedKind = FeedKind.LIVE
    freshness_hours: int = 24
    # A live feed's last delivery, or a one-off extract's only one, this many days ago.
    silent_days: float = 0


FEEDS: dict[str, tuple[FeedPlan, ...]] = {
    # Thin slice: pilot observations only ----------------------------------------------------
    "Invoice matching": (
        FeedPlan(
            "AP matching events stream",
            owner="owner",
            series=(Series(PILOT, 84.0, 2.5, drift_to=87.5, days=30),),
        ),
    ),
    "Contract clause extraction": (
        # Retraining after the roll-back; the repository's export broke four days ago.
        FeedPlan(
            "Contract repository review log",
            owner="jonas.berg",
            silent_days=4,
            series=(Series(PILOT, 47.0, 6.0, drift_to=36.0, per_day=2),),
        ),
    ),
    "Customer email intent routing": (
        FeedPlan(
            "Email routing decisions stream",
            owner="owner",
            series=(Series(PILOT, 90.5, 2.0, drift_to=92.0),),
        ),
    ),
    "New-joiner onboarding assistant": (
        # Borrowed data: one export from the HR ticketing tool, never repeated.
        FeedPlan(
            "HR ticket export (one-off)",
            owner="jonas.berg",
            kind=EXTRACT,
            silent_days=16,
            series=(Series(PILOT, 2.3, 0.6, drift_to=1.9, days=28, per_day=1),),
        ),
    ),
    "Demand forecasting for spare parts": (
        FeedPlan(
            "Depot replenishment forecasts",
            owner="mei.chen",
            series=(Series(PILOT, 29.0, 3.0, drift_to=24.0, days=17, per_day=2),),
        ),
        FeedPlan(
            "Spreadsheet forecast history extract",
            owner="lukas.weber",
            kind=EXTRACT,
            silent_days=18,
            series=(Series(BASELINE, 35.0, 4.0, per_day=1),),
        ),
    ),
    "Complaint classification for conduct reporting": (
        FeedPlan(
            "Complaints CRM tagging stream",
            owner="mei.chen",
            series=(Series(PILOT, 92.5, 1.5, drift_to=94.0),),
        ),
    ),
    # Readiness review: the thin slice's feeds keep delivering ------------------------------
    "Subrogation opportunity detection": (
        FeedPlan(
            "Settled claims recovery flags",
            owner="mei.chen",
            series=(Series(PILOT, 15.0, 1.6, drift_to=15.6, per_day=2),),
        ),
    ),
    "Payroll query assistant": (
        FeedPlan(
            "Payroll assistant conversations",
            owner="jonas.berg",
            series=(Series(PILOT, 61.0, 4.0, drift_to=64.5, days=42),),
        ),
    ),
    "Purchase order anomaly flagging": (
        FeedPlan(
            "Purchase order approval events",
            owner="aisha.bello",
            series=(Series(PILOT, 91.5, 1.8, drift_to=92.0, per_day=2),),
        ),
        FeedPlan(
            "Manual approval checks extract",
            owner="mei.chen",
            kind=EXTRACT,
            silent_days=40,
            series=(Series(BASELINE, 64.0, 5.0, days=20, per_day=1),),
        ),
    ),
    "Agent knowledge search": (
        FeedPlan(
            "Telephony handle-time feed",
            owner="jonas.berg",
            series=(Series(PILOT, 378.0, 25.0, drift_to=368.0, days=35),),
        ),
    ),
    # Narrow launch: pilot alongside the existing process -----------------------------------
    "Contact-centre call summarisation": (
        FeedPlan(
            "CRM after-call work events",
            owner="owner",
            series=(
                Series(PILOT, 43.0, 6.0, drift_to=40.0),
                Series(BASELINE, 129.0, 12.0),
            ),
        ),
    ),
    "Motor damage photo estimate": (
        FeedPlan(
            "Claims repair authorisations",
            owner="jonas.berg",
            series=(
                Series(PILOT, 2.1, 0.4, drift_to=1.6, per_day=2),
                Series(BASELINE, 6.5, 1.2, per_day=2),
            ),
        ),
    ),
    "Cash application remittance matching": (
        FeedPlan(
            "Receivables ledger postings",
            owner="aisha.bello",
            series=(
                Series(PILOT, 74.0, 3.0, drift_to=77.0),
                Series(BASELINE, 55.5, 4.0),
            ),
        ),
    ),
    "Inbound shipment ETA prediction": (
        # The error is known only once a container arrives: three pilot arrivals so far,
        # all today.
        FeedPlan(
            "Antwerp depot arrival events",
            owner="lukas.weber",
            series=(
                Series(PILOT, 5.4, 1.3, days=1, per_day=3),
                Series(BASELINE, 14.0, 3.0, per_day=2),
            ),
        ),
    ),
    "Sanctions screening alert triage": (
        # The screening platform's upgrade five days ago broke the export.
        FeedPlan(
            "Screening platform dispositions",
            owner="daniel.okoro",
            silent_days=5,
            series=(
                Series(PILOT, 12.4, 1.5, drift_to=13.0),
                Series(BASELINE, 7.1, 1.0),
            ),
        ),
    ),
    # Wide launch: still monitored against the teams not yet widened to ---------------------
    "Claims document classification": (
        FeedPlan(
            "Mailroom indexing events",
            owner="jonas.berg",
            series=(
                Series(PILOT, 93.5, 1.8, drift_to=94.5),
                Series(BASELINE, 41.0, 4.0),
            ),
        ),
    ),
    "Invoice data capture": (
        FeedPlan(
            "AP capture audit sample",
            owner="aisha.bello",
            series=(
                Series(PILOT, 97.6, 0.6, drift_to=97.9),
                Series(BASELINE, 92.1, 1.2),
            ),
        ),
    ),
    "Order status chat assistant": (
        FeedPlan(
            "Web chat outcomes",
            owner="tomas.garcia",
            series=(
                Series(PILOT, 56.0, 3.5, drift_to=58.0),
                Series(BASELINE, 21.0, 3.0),
            ),
        ),
    ),
    "Contact-centre staffing forecast": (
        FeedPlan(
            "Telephony interval volumes",
            owner="mei.chen",
            freshness_hours=12,
            series=(
                Series(PILOT, 7.6, 1.1, drift_to=7.2),
                Series(BASELINE, 13.8, 2.0),
            ),
        ),
    ),
    "Transaction monitoring alert prioritisation": (
        # Drifting: under its 95% threshold over the last two weeks.
        FeedPlan(
            "Case management review times",
            owner="daniel.okoro",
            series=(
                Series(PILOT, 96.8, 1.1, drift_to=93.6),
                Series(BASELINE, 72.5, 3.5),
            ),
        ),
    ),
}


@dataclass(frozen=True)
class Point:
    cohort: str
    observed_at: datetime
    ingested_at: datetime
    value: float


def delivered_until(plan: FeedPlan, now: datetime) -> datetime:
    """The feed's last delivery: now for a live feed that still delivers."""
    return now - timedelta(days=plan.silent_days)


def points(title: str, plan: FeedPlan, *, unit: str, now: datetime) -> list[Point]:
    """The observations `plan` delivered, newest first in each series.

    A live feed delivers each observation a few minutes after it was observed; a one-off
    extract delivers all of them at once. Nothing is observed or delivered after `now`.
    """
    end = delivered_until(plan, now)
    result = []
    for series in plan.series:
        # A string seed is hashed with SHA-512: the same numbers on every run and machine.
        rng = random.Random(f"{title}/{plan.name}/{series.cohort}")  # noqa: S311 - not crypto
        step = timedelta(days=1) / series.per_day
        slots = series.days * series.per_day
        drift_to = series.mean if series.drift_to is None else series.drift_to
        for k in range(slots):  # k = 0 is the newest
            ago = k + rng.uniform(0.1, 0.9)
            typical = drift_to + (series.mean - drift_to) * ago / slots
            value = bounded(rng.gauss(typical, series.noise), unit=unit, typical=typical)
            observed_at = (end - step * ago).replace(microsecond=0)
            if plan.kind == FeedKind.LIVE:
                lag = timedelta(minutes=rng.uniform(2, 50))
                ingested_at = min(observed_at + lag, end)
            else:
                ingested_at = end
            result.append(Point(series.cohort, observed_at, ingested_at, value))
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
