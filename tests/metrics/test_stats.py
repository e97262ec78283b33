"""metrics.stats against values computed independently: by hand and with `statistics`.

Welch's t and its degrees of freedom are computed here from the raw samples with the
standard library, and the one-sided p-value by integrating Student's t density numerically,
so a mistake in how metrics.stats calls scipy (tail, variance, n) cannot hide behind scipy.
"""

import math
import statistics

import pytest

from metrics.models import Aggregation
from metrics.stats import CohortStats, compare, lift, welch_confidence

PILOT = [91.0, 88.5, 93.2, 90.1, 87.9, 92.4, 89.7, 94.0]
BASELINE = [84.1, 86.3, 82.7, 85.0, 88.2, 83.9, 81.5, 86.8, 84.4, 85.6]


def cohort(values: list[float]) -> CohortStats:
    """What the database's GROUP BY hands metrics.stats for these observations."""
    return CohortStats(
        count=len(values),
        mean=statistics.fmean(values) if values else None,
        total=math.fsum(values) if values else None,
        stddev=statistics.stdev(values) if len(values) > 1 else None,
        last=values[-1] if values else None,
    )


def t_sf(t: float, df: float, steps: int = 20_000) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom, by Simpson's rule on the density."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def density(x: float) -> float:
        return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))

    h = abs(t) / steps
    area = density(0) + density(abs(t))
    area += sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    half = area * h / 3  # P(0 < T < |t|)
    return 0.5 - half if t >= 0 else 0.5 + half


def welch_by_hand(pilot: list[float], baseline: list[float]) -> tuple[float, float]:
    """(t, Welch-Satterthwaite degrees of freedom) of pilot minus baseline."""
    v1, v2 = statistics.variance(pilot) / len(pilot), statistics.variance(baseline) / len(baseline)
    t = (statistics.fmean(pilot) - statistics.fmean(baseline)) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / (len(pilot) - 1) + v2**2 / (len(baseline) - 1))
    return t, df


# Aggregates --------------------------------------------------------------------------------------
def test_cohort_value_is_the_mean_total_or_last_value_as_the_metric_aggregates():
    stats = cohort([4.0, 1.0, 7.0])
    assert stats.value(Aggregation.MEAN) == pytest.approx(4.0)
    assert stats.value(Aggregation.SUM) == pytest.approx(12.0)
    assert stats.value(Aggregation.LAST) == 7.0


@pytest.mark.parametrize("aggregation", Aggregation.values)
def test_a_cohort_without_observations_has_no_value_whatever_the_aggregation(aggregation):
    assert CohortStats().value(aggregation) is None
    # Even if stray figures came along with a zero count.
    assert CohortStats(count=0, mean=1.0, total=1.0, last=1.0).value(aggregation) is None


# Lift --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pilot", "baseline", "expected"),
    [
        (90.0, 80.0, 0.125),  # 10 / 80
        (70.0, 80.0, -0.125),
        (80.0, 80.0, 0.0),
        (-90.0, -100.0, 0.1),  # relative to |baseline|: still an improvement upwards
        (-110.0, -100.0, -0.1),
        (0.0, 4.0, -1.0),
    ],
)
def test_lift_is_the_change_relative_to_the_absolute_baseline(pilot, baseline, expected):
    assert lift(pilot, baseline) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("pilot", "baseline"),
    [(90.0, 0.0), (90.0, None), (None, 80.0), (None, None)],
    ids=["zero-baseline", "no-baseline", "no-pilot", "neither"],
)
def test_lift_is_undefined_without_both_values_or_with_a_zero_baseline(pilot, baseline):
    assert lift(pilot, baseline) is None


# Welch's test ------------------------------------------------------------------------------------
def test_the_hand_computation_agrees_with_a_textbook_case():
    """The helpers themselves: t with 1 degree of freedom is the Cauchy distribution."""
    assert t_sf(1.0, 1) == pytest.approx(0.25, abs=1e-9)
    assert t_sf(0.0, 7) == pytest.approx(0.5, abs=1e-12)
    assert welch_by_hand([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])[0] == 0.0


def test_welch_confidence_matches_the_hand_computed_one_sided_test():
    t, df = welch_by_hand(PILOT, BASELINE)
    p_expected = t_sf(t, df)
    # By hand: means 90.85 and 84.85; variances 33.98 / 7 and 35.225 / 9;
    # t = 6 / sqrt(0.606786 + 0.391389) and Welch-Satterthwaite df from the same terms.
    assert t == pytest.approx(6.0055, abs=1e-3)
    assert df == pytest.approx(14.3115, abs=1e-3)

    p_value, confidence = welch_confidence(
        cohort(PILOT), cohort(BASELINE), higher_is_better=True, min_count=5
    )

    assert p_value == pytest.approx(p_expected, rel=1e-6)
    assert confidence == pytest.approx(1 - p_expected, rel=1e-9)
    assert 0.9999 < confidence < 1


def test_welch_uses_unequal_variances_not_the_pooled_test():
    # Very different spreads and sizes: the pooled test would give a different p-value.
    pilot = [10.0, 30.0, 5.0, 40.0, 15.0]
    baseline = [12.0, 12.5, 11.8, 12.2, 12.1, 11.9, 12.4, 12.0, 12.3, 11.7, 12.6, 12.2]
    t, df = welch_by_hand(pilot, baseline)
    pooled_var = (
        (len(pilot) - 1) * statistics.variance(pilot)
        + (len(baseline) - 1) * statistics.variance(baseline)
    ) / (len(pilot) + len(baseline) - 2)
    t_pooled = (statistics.fmean(pilot) - statistics.fmean(baseline)) / math.sqrt(
        pooled_var * (1 / len(pilot) + 1 / len(baseline))
    )
    pooled = t_sf(t_pooled, len(pilot) + len(baseline) - 2)

    p_value, _ = welch_confidence(
        cohort(pilot), cohort(baseline), higher_is_better=True, min_count=5
    )

    assert p_value == pytest.approx(t_sf(t, df), rel=1e-6)
    assert p_value != pytest.approx(pooled, rel=1e-2)


def test_a_pilot_worse_than_the_baseline_gets_a_low_confidence():
    p_value, confidence = welch_confidence(
        cohort(BASELINE), cohort(PILOT), higher_is_better=True, min_count=5
    )
    t, df = welch_by_hand(BASELINE, PILOT)
    assert t < 0
    assert p_value == pytest.approx(t_sf(t, df), rel=1e-6)
    assert confidence < 0.001


def test_lower_is_better_uses_the_opposite_tail():
    pilot, baseline = cohort(BASELINE), cohort(PILOT)  # the pilot's mean is lower
    p_lower, confidence_lower = welch_confidence(
        pilot, baseline, higher_is_better=False, min_count=5
    )
    p_higher, _ = welch_confidence(pilot, baseline, higher_is_better=True, min_count=5)

    t, df = welch_by_hand(BASELINE, PILOT)
    assert p_lower == pytest.approx(t_sf(-t, df), rel=1e-6)  # P(T < t)
    assert p_lower == pytest.approx(1 - p_higher, rel=1e-9)
    assert confidence_lower > 0.9999


@pytest.mark.parametrize(
    ("pilot_n", "baseline_n", "min_count"),
    [
        (4, 10, 5),
        (10, 4, 5),
        (0, 10, 5),
        (10, 0, 5),
        (0, 0, 5),
        (1, 1, 1),  # a standard deviation needs two observations, whatever the setting
        (1, 10, 0),
        (29, 30, 30),
    ],
)
def test_too_few_observations_give_no_confidence_never_a_guess(pilot_n, baseline_n, min_count):
    pilot = cohort([90.0 + i % 3 for i in range(pilot_n)])
    baseline = cohort([80.0 + i % 4 for i in range(baseline_n)])

    assert welch_confidence(pilot, baseline, higher_is_better=True, min_count=min_count) == (
        None,
        None,
    )
    comparison = compare(
        pilot, baseline, aggregation=Aggregation.MEAN, higher_is_better=True, min_count=min_count
    )
    assert comparison.p_value is None
    assert comparison.confidence is None


def test_exactly_the_minimum_number_of_observations_is_enough():
    pilot, baseline = cohort(PILOT[:5]), cohort(BASELINE[:5])
    p_value, confidence = welch_confidence(pilot, baseline, higher_is_better=True, min_count=5)
    t, df = welch_by_hand(PILOT[:5], BASELINE[:5])
    assert p_value == pytest.approx(t_sf(t, df), rel=1e-6)
    assert confidence is not None


# Zero variance -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pilot", "baseline", "higher_is_better", "expected"),
    [
        (90.0, 80.0, True, (0.0, 1.0)),  # constant and better: certain
        (70.0, 80.0, True, (1.0, 0.0)),  # constant and worse
        (80.0, 80.0, True, (1.0, 0.0)),  # equal is not better
        (70.0, 80.0, False, (0.0, 1.0)),  # lower is better
        (90.0, 80.0, False, (1.0, 0.0)),
        (80.0, 80.0, False, (1.0, 0.0)),
    ],
)
def test_constant_cohorts_give_an_exact_answer_not_a_division_by_zero(
    pilot, baseline, higher_is_better, expected
):
    p_value, confidence = welch_confidence(
        cohort([pilot] * 6),
        cohort([baseline] * 7),
        higher_is_better=higher_is_better,
        min_count=5,
    )
    assert (p_value, confidence) == expected


def test_one_constant_cohort_reduces_to_a_one_sample_test_against_it():
    """With s1 = 0 Welch's t is (m1 - m2) / (s2 / sqrt(n2)) with n2 - 1 degrees of freedom."""
    constant = [86.0] * 6
    varying = [84.1, 86.3, 82.7, 85.0, 88.2, 83.9, 81.5, 86.8]
    t = (86.0 - statistics.fmean(varying)) / (statistics.stdev(varying) / math.sqrt(len(varying)))
    expected = t_sf(t, len(varying) - 1)

    p_value, confidence = welch_confidence(
        cohort(constant), cohort(varying), higher_is_better=True, min_count=5
    )

    assert welch_by_hand(constant, varying)[1] == pytest.approx(len(varying) - 1)
    assert p_value == pytest.approx(expected, rel=1e-6)
    assert confidence == pytest.approx(1 - expected, rel=1e-9)


def test_a_missing_standard_deviation_counts_as_zero_variance():
    # The database's STDDEV_SAMP of identical values may come back as 0 or NULL.
    pilot = CohortStats(count=6, mean=90.0, total=540.0, stddev=None, last=90.0)
    baseline = CohortStats(count=6, mean=80.0, total=480.0, stddev=0.0, last=80.0)
    assert welch_confidence(pilot, baseline, higher_is_better=True, min_count=5) == (0.0, 1.0)


# compare() ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("aggregation", "expected_lift"),
    [
        (Aggregation.MEAN, statistics.fmean(PILOT) / statistics.fmean(BASELINE) - 1),
        (Aggregation.SUM, math.fsum(PILOT) / math.fsum(BASELINE) - 1),
        (Aggregation.LAST, PILOT[-1] / BASELINE[-1] - 1),
    ],
)
def test_compare_lifts_the_aggregated_values_and_tests_the_means(aggregation, expected_lift):
    t, df = welch_by_hand(PILOT, BASELINE)
    comparison = compare(
        cohort(PILOT),
        cohort(BASELINE),
        aggregation=aggregation,
        higher_is_better=True,
        min_count=5,
    )
    assert comparison.lift == pytest.approx(expected_lift)
    assert comparison.p_value == pytest.approx(t_sf(t, df), rel=1e-6)
    assert comparison.confidence == pytest.approx(1 - t_sf(t, df), rel=1e-9)
