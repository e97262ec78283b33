"""Statistics of a metric's window: aggregates of each cohort and the pilot-vs-baseline test.

The aggregates themselves are computed in the database (see metrics.status); this module
turns them into a value per cohort, lifts and a confidence. The comparison is Welch's
t-test on the observations' means (unequal variances, one-sided in the metric's better
direction), from summary statistics so no observation is loaded into Python. The lift quoted
beside the confidence is therefore the lift of the means, whatever the metric's aggregation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.special import stdtr, stdtrit

from metrics.models import Aggregation


@dataclass(frozen=True)
class CohortStats:
    count: int = 0
    mean: float | None = None
    total: float | None = None
    stddev: float | None = None  # sample standard deviation (n - 1)
    last: float | None = None

    def value(self, aggregation: str) -> float | None:
        if self.count == 0:
            return None
        if aggregation == _SUM:
            return self.total
        if aggregation == _LAST:
            return self.last
        return self.mean


# Plain strings: compared once per cohort of every metric in a full recompute, where the
# enum's attribute lookup costs more than the comparison.
_SUM, _LAST = str(Aggregation.SUM.value), str(Aggregation.LAST.value)


@dataclass(frozen=True)
class Comparison:
    lift: float | None  # of the aggregated values (mean, total or latest)
    p_value: float | None
    confidence: float | None
    # Of the means: the difference the test is about, so the lift to quote beside the
    # confidence. Equal to `lift` for a mean metric; for a total it may even differ in sign
    # (a pilot with fewer, better observations has a smaller total but a higher mean).
    mean_lift: float | None = None


def lift(pilot: float | None, baseline: float | None) -> float | None:
    """Relative change of the pilot against the baseline; None when undefined."""
    if pilot is None or baseline is None or baseline == 0:
        return None
    return (pilot - baseline) / abs(baseline)


def welch_confidence(
    pilot: CohortStats, baseline: CohortStats, *, higher_is_better: bool, min_count: int
) -> tuple[float | None, float | None]:
    """(p_value, confidence) that the pilot's mean beats the baseline's, one-sided.

    None, None with fewer than `min_count` observations in either cohort: never a guess.
    """
    least = min_count if min_count > 2 else 2
    if pilot.count < least or baseline.count < least:
        return None, None
    sd_p, sd_b = pilot.stddev or 0.0, baseline.stddev or 0.0
    if sd_p == 0 and sd_b == 0:
        # Constant values on both sides: the difference is exact, not estimated.
        better = pilot.mean > baseline.mean if higher_is_better else pilot.mean < baseline.mean
        p_value = 0.0 if better else 1.0
        return p_value, 1.0 - p_value
    # Welch's t statistic and Welch-Satterthwaite degrees of freedom, then the one-sided tail
    # from scipy's Student t distribution function (stdtr): the same figures as
    # scipy.stats.ttest_ind_from_stats(equal_var=False) at a small fraction of its cost,
    # which matters when every metric of a portfolio is recomputed.
    var_p, var_b = sd_p**2 / pilot.count, sd_b**2 / baseline.count
    se = math.sqrt(var_p + var_b)
    t = (pilot.mean - baseline.mean) / se
    df = (var_p + var_b) ** 2 / (var_p**2 / (pilot.count - 1) + var_b**2 / (baseline.count - 1))
    p_value = float(stdtr(df, -t) if higher_is_better else stdtr(df, t))
    if math.isnan(p_value):
        return None, None
    return p_value, 1.0 - p_value


def welch_interval(
    pilot: CohortStats, baseline: CohortStats, *, level: float, min_count: int
) -> tuple[float, float] | None:
    """The two-sided `level` confidence interval of pilot mean - baseline mean, by Welch's
    method (unequal variances): the same statistics as `welch_confidence`, so the interval
    and the confidence that decides gate 4 never disagree about the data.

    None with fewer than `min_count` observations in either cohort, as for the test.
    """
    if pilot.count < max(min_count, 2) or baseline.count < max(min_count, 2):
        return None
    if pilot.mean is None or baseline.mean is None:
        return None
    difference = pilot.mean - baseline.mean
    sd_p, sd_b = pilot.stddev or 0.0, baseline.stddev or 0.0
    var_p, var_b = sd_p**2 / pilot.count, sd_b**2 / baseline.count
    if var_p + var_b == 0:
        return difference, difference  # constant values: the difference is exact
    df = (var_p + var_b) ** 2 / (var_p**2 / (pilot.count - 1) + var_b**2 / (baseline.count - 1))
    half = float(stdtrit(df, 0.5 + level / 2)) * math.sqrt(var_p + var_b)
    if not math.isfinite(half):
        return None
    return difference - half, difference + half


def compare(
    pilot: CohortStats,
    baseline: CohortStats,
    *,
    aggregation: str,
    higher_is_better: bool,
    min_count: int,
) -> Comparison:
    p_value, confidence = welch_confidence(
        pilot, baseline, higher_is_better=higher_is_better, min_count=min_count
    )
    return Comparison(
        lift=lift(pilot.value(aggregation), baseline.value(aggregation)),
        p_value=p_value,
        confidence=confidence,
        mean_lift=lift(pilot.mean, baseline.mean) if pilot.count and baseline.count else None,
    )
