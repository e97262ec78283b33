"""Value realised: what a launched initiative's measured improvement is worth a month.

The improvement is the difference of the cohorts' means on the primary metric, pilot
against baseline, from the metric's latest snapshot: the statistics that decide gate 4. Its
90% confidence interval (Welch, `metrics.stats.welch_interval`) carries through to the money,
so a figure is never shown without its uncertainty; with too few observations there is no
figure, only "insufficient data". Money is Decimal throughout and never leaves its currency:
net value is given only when the running cost is in the value's currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from django.db.models import Prefetch, QuerySet, prefetch_related_objects

from gates.stages import LAUNCHED
from metrics.models import Metric, Verdict
from metrics.stats import CohortStats, welch_interval
from metrics.status import min_observations
from readiness.queries import RunningCost, running_costs

LEVEL = 0.90
CENT = Decimal("0.01")


class Status:
    MEASURED = "measured"
    NOT_LAUNCHED = "not_launched"
    NO_METRIC = "no_metric"
    NO_VALUE_MODEL = "no_value_model"
    NOT_COMPUTED = "not_computed"
    UNRELIABLE = "unreliable"  # stale data, a failed recompute, or a superseded definition
    INSUFFICIENT_DATA = "insufficient_data"


LABELS = {
    Status.MEASURED: "Measured",
    Status.NOT_LAUNCHED: "Not launched",
    Status.NO_METRIC: "No primary metric",
    Status.NO_VALUE_MODEL: "No value model",
    Status.NOT_COMPUTED: "Not computed yet",
    Status.UNRELIABLE: "No reliable measurement",
    Status.INSUFFICIENT_DATA: "Insufficient data",
}


@dataclass(frozen=True)
class Realised:
    status: str
    currency: str = ""
    monthly: Decimal | None = None  # the point estimate
    low: Decimal | None = None  # the interval, at LEVEL
    high: Decimal | None = None
    running_cost: Decimal | None = None
    running_cost_currency: str = ""
    snapshot_id: int | None = None
    computed_at: datetime | None = None
    note: str = ""

    @property
    def label(self) -> str:
        return LABELS[self.status]

    @property
    def measured(self) -> bool:
        return self.status == Status.MEASURED

    @property
    def nets(self) -> bool:
        """Net value is defined: measured, and the running cost in the same currency."""
        return (
            self.measured
            and self.running_cost is not None
            and self.running_cost_currency == self.currency
        )

    @property
    def net(self) -> Decimal | None:
        return self.monthly - self.running_cost if self.nets else None

    @property
    def net_low(self) -> Decimal | None:
        return self.low - self.running_cost if self.nets else None

    @property
    def net_high(self) -> Decimal | None:
        return self.high - self.running_cost if self.nets else None

    def as_evidence(self) -> dict:
        """JSON-safe, exact: money as strings, times in ISO format."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, Decimal):
                data[key] = f"{value:f}"
            elif isinstance(value, datetime):
                data[key] = value.isoformat()
        data["level"] = LEVEL
        data["label"] = self.label
        data["net"] = None if self.net is None else f"{self.net:f}"
        data["net_low"] = None if self.net_low is None else f"{self.net_low:f}"
        data["net_high"] = None if self.net_high is None else f"{self.net_high:f}"
        return data


def _money(figure: float, metric: Metric) -> Decimal:
    """An improvement in the metric's unit, as money a month: exact from the float's
    shortest representation on, rounded to the cent once at the end."""
    return (Decimal(repr(figure)) * metric.unit_value * metric.monthly_volume).quantize(
        CENT, rounding=ROUND_HALF_EVEN
    )


def value_of(initiative, metric: Metric | None, cost: RunningCost | None) -> Realised:
    """The value `initiative` realises a month, judged from `metric` (its primary metric,
    with `latest_snapshot` loaded) and its running cost."""
    running = {
        "running_cost": cost.amount if cost else None,
        "running_cost_currency": cost.currency if cost else "",
    }
    if initiative.stage not in LAUNCHED:
        return Realised(Status.NOT_LAUNCHED, **running)
    if metric is None:
        return Realised(Status.NO_METRIC, **running)
    if not metric.has_value_model:
        return Realised(Status.NO_VALUE_MODEL, **running)
    snapshot = metric.latest_snapshot
    found = {"currency": metric.value_currency, **running}
    if snapshot is None:
        return Realised(Status.NOT_COMPUTED, **found)
    found |= {"snapshot_id": snapshot.pk, "computed_at": snapshot.computed_at}
    if snapshot.verdict in (Verdict.STALE, Verdict.ERROR) or not snapshot.judged_on(metric):
        return Realised(Status.UNRELIABLE, note=snapshot.summary, **found)
    pilot = CohortStats(snapshot.pilot_count, snapshot.pilot_mean, None, snapshot.pilot_stddev)
    baseline = CohortStats(
        snapshot.baseline_count, snapshot.baseline_mean, None, snapshot.baseline_stddev
    )
    interval = welch_interval(pilot, baseline, level=LEVEL, min_count=min_observations())
    if interval is None:
        return Realised(
            Status.INSUFFICIENT_DATA,
            note=(
                f"{snapshot.pilot_count} pilot and {snapshot.baseline_count} baseline "
                f"observations; at least {max(min_observations(), 2)} of each are needed."
            ),
            **found,
        )
    # An improvement is a gain in the metric's better direction.
    sign = 1 if metric.higher_is_better else -1
    low, high = sorted((sign * interval[0], sign * interval[1]))
    point = sign * (snapshot.pilot_mean - snapshot.baseline_mean)
    return Realised(
        Status.MEASURED,
        monthly=_money(point, metric),
        low=_money(low, metric),
        high=_money(high, metric),
        **found,
    )


def _primary() -> Prefetch:
    return Prefetch(
        "metrics",
        queryset=Metric.objects.filter(is_primary=True).select_related("latest_snapshot"),
        to_attr="primary_metrics",
    )


def with_primary(initiatives: QuerySet) -> QuerySet:
    """`initiatives` with their primary metric and its latest snapshot read in one more
    query; `primary_of` gives it."""
    return initiatives.prefetch_related(_primary())


def primary_of(initiative) -> Metric | None:
    return next(iter(initiative.primary_metrics), None)


def realised(initiatives: Iterable) -> dict[int, Realised]:
    """{initiative id: value realised} for `initiatives` (a queryset, or initiatives already
    loaded): three queries whatever their number, two for loaded ones."""
    rows = list(initiatives)
    prefetch_related_objects(rows, _primary())
    costs = running_costs([i.pk for i in rows])
    return {i.pk: value_of(i, primary_of(i), costs.get(i.pk)) for i in rows}
