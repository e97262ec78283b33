"""Value realised: the measured difference, its Welch interval, and money in Decimal."""

import math
from decimal import Decimal

import numpy as np
import pytest
from scipy import stats

from gates.stages import Stage
from metrics.models import Direction, Verdict
from metrics.stats import CohortStats, welch_interval
from readiness.queries import RunningCost
from tests.factories import InitiativeFactory, MetricFactory, MetricSnapshotFactory
from value.realised import LEVEL, Status, realised, value_of

pytestmark = pytest.mark.django_db


def summary(sample) -> CohortStats:
    sample = np.asarray(sample, dtype=float)
    return CohortStats(len(sample), float(sample.mean()), None, float(sample.std(ddof=1)))


def scipy_interval(pilot, baseline, level):
    result = stats.ttest_ind(pilot, baseline, equal_var=False)
    return tuple(result.confidence_interval(level))


# Interval against scipy ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pilot", "baseline"),
    [
        ([10, 12, 11, 13, 12], [9, 9, 10, 8, 11]),
        ([1.5, 1.7, 1.6, 1.9, 1.4, 1.8], [2.0, 2.4, 2.1, 2.6, 2.2]),
        ([100, 100.5, 99.5, 101, 100, 99], [100, 150, 50, 120, 80, 100, 90]),
    ],
    ids=["pilot better", "pilot worse", "unequal spread"],
)
def test_interval_equals_scipy_on_hand_cases(pilot, baseline):
    ours = welch_interval(summary(pilot), summary(baseline), level=LEVEL, min_count=5)
    assert ours == pytest.approx(scipy_interval(pilot, baseline, LEVEL), rel=1e-9, abs=1e-12)


def test_interval_equals_scipy_on_random_cases():
    rng = np.random.default_rng(20261205)
    for _ in range(300):
        pilot = rng.normal(rng.uniform(-50, 50), rng.uniform(0.1, 20), rng.integers(5, 200))
        baseline = rng.normal(rng.uniform(-50, 50), rng.uniform(0.1, 20), rng.integers(5, 200))
        level = float(rng.choice([0.8, 0.9, 0.95]))
        ours = welch_interval(summary(pilot), summary(baseline), level=level, min_count=5)
        assert ours == pytest.approx(scipy_interval(pilot, baseline, level), rel=1e-9)


def test_too_few_observations_give_no_interval():
    five = summary([1, 2, 3, 4, 5])
    four = summary([1, 2, 3, 4])
    assert welch_interval(five, four, level=LEVEL, min_count=5) is None
    assert welch_interval(four, five, level=LEVEL, min_count=5) is None
    assert welch_interval(five, five, level=LEVEL, min_count=5) is not None


def test_constant_cohorts_give_an_exact_difference():
    assert welch_interval(
        CohortStats(5, 7.0, None, 0.0), CohortStats(6, 4.0, None, 0.0), level=LEVEL, min_count=5
    ) == (3.0, 3.0)


# Value realised -----------------------------------------------------------------------------
def launched_metric(**fields):
    initiative = InitiativeFactory(stage=Stage.NARROW_LAUNCH)
    defaults = {
        "unit_value": Decimal("38"),
        "value_currency": "EUR",
        "monthly_volume": Decimal("1200"),
    }
    return MetricFactory(initiative=initiative, **(defaults | fields))


def read(metric, cost=None):
    metric.refresh_from_db()
    return value_of(metric.initiative, metric, cost)


def test_value_is_the_difference_times_unit_value_and_volume_with_its_interval():
    metric = launched_metric()
    snapshot = MetricSnapshotFactory(
        metric=metric, pilot_mean=90.0, baseline_mean=80.0, pilot_stddev=5.0,
        baseline_stddev=6.0, pilot_count=20, baseline_count=25, latest=True,
    )  # fmt: skip

    value = read(metric)

    low, high = welch_interval(
        CohortStats(20, 90.0, None, 5.0), CohortStats(25, 80.0, None, 6.0), level=0.9, min_count=5
    )
    assert value.status == Status.MEASURED
    assert value.currency == "EUR"
    assert value.monthly == Decimal("456000.00")  # 10 x 38 x 1,200
    assert value.low == (Decimal(repr(low)) * 38 * 1200).quantize(Decimal("0.01"))
    assert value.high == (Decimal(repr(high)) * 38 * 1200).quantize(Decimal("0.01"))
    assert value.low < value.monthly < value.high
    assert all(isinstance(v, Decimal) for v in (value.monthly, value.low, value.high))
    assert value.snapshot_id == snapshot.pk


def test_lower_is_better_counts_a_fall_as_value_and_flips_the_interval():
    metric = launched_metric(direction=Direction.LOWER, ship_threshold=Decimal("12"))
    MetricSnapshotFactory(
        metric=metric, pilot_value=10.0, baseline_value=14.0, pilot_stddev=2.0,
        baseline_stddev=2.0, latest=True,
    )  # fmt: skip

    value = read(metric)

    assert value.monthly == Decimal("182400.00")  # 4 minutes saved x 38 x 1,200
    assert value.low < value.monthly < value.high
    assert value.low > 0


def test_a_pilot_worse_than_the_baseline_realises_negative_value():
    metric = launched_metric()
    MetricSnapshotFactory(metric=metric, pilot_value=75.0, baseline_value=80.0, latest=True)

    value = read(metric)

    assert value.monthly == Decimal("-228000.00")
    assert value.high < 0


def test_net_value_subtracts_the_running_cost_in_the_same_currency():
    metric = launched_metric()
    MetricSnapshotFactory(metric=metric, latest=True)

    value = read(metric, RunningCost(Decimal("6000.00"), "EUR", 1))

    assert value.net == Decimal("450000.00")
    assert value.net_low == value.low - Decimal("6000.00")
    assert value.net_high == value.high - Decimal("6000.00")


def test_net_value_is_never_computed_across_currencies():
    metric = launched_metric()
    MetricSnapshotFactory(metric=metric, latest=True)

    value = read(metric, RunningCost(Decimal("6000.00"), "USD", 1))

    assert value.measured
    assert value.net is None and value.net_low is None


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"pilot_count": 4}, Status.INSUFFICIENT_DATA),
        ({"baseline_count": 0, "baseline_mean": None}, Status.INSUFFICIENT_DATA),
        ({"verdict": Verdict.STALE}, Status.UNRELIABLE),
        ({"verdict": Verdict.ERROR}, Status.UNRELIABLE),
    ],
    ids=["few pilot", "no baseline", "stale", "error"],
)
def test_no_figure_without_enough_reliable_data(fields, status):
    metric = launched_metric()
    MetricSnapshotFactory(metric=metric, latest=True, **fields)

    value = read(metric)

    assert value.status == status
    assert value.monthly is None and value.low is None and value.high is None


def test_a_snapshot_of_a_superseded_definition_is_not_used():
    metric = launched_metric()
    MetricSnapshotFactory(metric=metric, latest=True, ship_threshold=70.0, aggregation="mean",
                          direction="higher")  # fmt: skip

    assert read(metric).status == Status.UNRELIABLE  # judged against 70, the metric says 85


@pytest.mark.parametrize(
    ("stage", "fields", "status"),
    [
        (Stage.THIN_SLICE, {}, Status.NOT_LAUNCHED),
        (Stage.WIDE_LAUNCH, {"unit_value": None}, Status.NO_VALUE_MODEL),
        (Stage.WIDE_LAUNCH, {}, Status.NOT_COMPUTED),
    ],
)
def test_statuses_before_a_measurement(stage, fields, status):
    metric = launched_metric(**fields)
    type(metric.initiative).objects.filter(pk=metric.initiative_id).update(stage=stage)
    metric.initiative.refresh_from_db()

    assert read(metric).status == status


def test_realised_reads_any_number_of_initiatives_in_three_queries(django_assert_num_queries):
    for _ in range(3):
        MetricSnapshotFactory(metric=launched_metric(), latest=True)
    from portfolio.models import Initiative

    with django_assert_num_queries(3):
        found = realised(Initiative.objects.all())
    assert len(found) == 3
    assert all(v.measured for v in found.values())


def test_evidence_is_exact_json():
    metric = launched_metric()
    MetricSnapshotFactory(metric=metric, latest=True)

    evidence = read(metric, RunningCost(Decimal("6000.00"), "EUR", 1)).as_evidence()

    assert evidence["monthly"] == "456000.00"
    assert evidence["net"] == "450000.00"
    assert evidence["level"] == 0.9
    assert Decimal(evidence["low"]) < Decimal(evidence["high"])
    assert not math.isnan(float(evidence["high"]))
