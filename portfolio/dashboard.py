"""The portfolio dashboard's reads: a fixed number of queries whatever the portfolio's size.

Everything is read from stored state (stages, decisions, snapshots, flags); nothing is
recomputed in the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from gates.models import GateDecision
from gates.stages import PATH, Stage, StopReason
from gates.stages import Transition as T
from metrics.models import Metric, Verdict
from portfolio.models import Initiative, PurgatoryFlag
from portfolio.purgatory import stage_limits

LAUNCHED = [Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH]


def scoped(*, unit=None, sponsor=None) -> QuerySet:
    qs = Initiative.objects.all()
    if unit is not None:
        qs = qs.filter(business_unit=unit)
    if sponsor is not None:
        qs = qs.filter(sponsor=sponsor)
    return qs


def funnel(base: QuerySet) -> list[dict]:
    counts = dict(base.values_list("stage").annotate(n=Count("id")).order_by())
    return [
        {"stage": s.value, "label": s.label, "count": counts.get(s.value, 0)}
        for s in [*PATH, Stage.STOPPED]
    ]


@dataclass
class Conversion:
    left_frame: int = 0
    reached_narrow: int = 0
    reached_wide: int = 0
    stopped: int = 0
    in_flight: int = 0
    stop_reasons: list[dict] = field(default_factory=list)

    def share(self, n: int) -> int:
        return round(100 * n / self.left_frame) if self.left_frame else 0

    @property
    def narrow_share(self) -> int:
        return self.share(self.reached_narrow)

    @property
    def wide_share(self) -> int:
        return self.share(self.reached_wide)

    @property
    def stopped_share(self) -> int:
        return self.share(self.stopped)

    @property
    def in_flight_share(self) -> int:
        return self.share(self.in_flight)


def conversion(base: QuerySet) -> Conversion:
    """Of the initiatives that left framing: how many launched, went wide, or stopped (why)."""

    def took(transition: str):
        return Exists(GateDecision.objects.filter(initiative=OuterRef("pk"), transition=transition))

    left = base.filter(took(T.APPROVE_FRAME))
    figures = left.annotate(narrow=took(T.PASS_REVIEW), wide=took(T.WIDEN)).aggregate(
        left_frame=Count("pk"),
        reached_narrow=Count("pk", filter=Q(narrow=True)),
        reached_wide=Count("pk", filter=Q(wide=True)),
        stopped=Count("pk", filter=Q(stage=Stage.STOPPED)),
    )
    reasons = dict(
        left.filter(stage=Stage.STOPPED)
        .values_list("stop_reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    result = Conversion(**figures)
    result.in_flight = result.left_frame - result.stopped - result.reached_wide
    labels = dict(StopReason.choices)
    result.stop_reasons = sorted(
        ({"reason": r, "label": labels.get(r, "Unknown"), "count": n} for r, n in reasons.items()),
        key=lambda item: -item["count"],
    )
    return result


def stopped_reasons(base: QuerySet) -> list[dict]:
    labels = dict(StopReason.choices)
    rows = base.filter(stage=Stage.STOPPED).values_list("stop_reason").annotate(n=Count("pk"))
    return sorted(
        ({"reason": r, "label": labels.get(r, "Unknown"), "count": n} for r, n in rows.order_by()),
        key=lambda item: -item["count"],
    )


def flagged(base: QuerySet, limit: int = 12) -> tuple[list, int]:
    """Flagged initiatives, worst first (most flags, then flagged longest), and their count."""
    active = Q(flags__cleared_at__isnull=True)
    live = PurgatoryFlag.objects.filter(initiative=OuterRef("pk"), cleared_at__isnull=True)
    ranked = (
        base.filter(Exists(live))
        .annotate(
            flag_count=Count("flags", filter=active), since=Min("flags__raised_at", filter=active)
        )
        .order_by("-flag_count", "since", "title")
    )
    worst = list(
        ranked.select_related("business_unit").prefetch_related(
            Prefetch(
                "flags",
                queryset=PurgatoryFlag.objects.filter(cleared_at__isnull=True).order_by(
                    "raised_at"
                ),
                to_attr="active_flags",
            )
        )[:limit]
    )
    return worst, ranked.count()


def verdicts(base: QuerySet, limit: int = 12) -> dict:
    """Primary-metric status of launched initiatives: counts per verdict and the worst rows."""
    metrics = Metric.objects.filter(is_primary=True, initiative__in=base.filter(stage__in=LAUNCHED))
    counts = dict(
        metrics.values_list("latest_snapshot__verdict").annotate(n=Count("pk")).order_by()
    )
    labels = dict(Verdict.choices)
    worst_first = Case(
        When(latest_snapshot__verdict=Verdict.BELOW, then=Value(0)),
        When(latest_snapshot__verdict=Verdict.STALE, then=Value(1)),
        When(latest_snapshot__isnull=True, then=Value(2)),
        When(latest_snapshot__verdict=Verdict.INSUFFICIENT_DATA, then=Value(3)),
        default=Value(4),
        output_field=IntegerField(),
    )
    rows = metrics.select_related("latest_snapshot", "initiative").order_by(
        worst_first, "initiative__title"
    )[:limit]
    return {
        "counts": [
            {"verdict": v, "label": labels[v], "count": counts.get(v, 0)} for v in Verdict.values
        ]
        + (
            [{"verdict": "", "label": "Not computed", "count": counts[None]}]
            if counts.get(None)
            else []
        ),
        "rows": list(rows),
        "total": sum(counts.values()),
    }


def time_in_stage(base: QuerySet) -> list[dict]:
    """Median days in the current stage, per stage, against the stage's limit."""
    now = timezone.now()
    days: dict[str, list[int]] = {}
    for stage, entered in base.exclude(stage=Stage.STOPPED).values_list(
        "stage", "stage_entered_at"
    ):
        days.setdefault(stage, []).append((now - entered).days)
    limits = stage_limits()
    return [
        {
            "stage": s.value,
            "label": s.label,
            "median": median(days[s.value]) if days.get(s.value) else None,
            "count": len(days.get(s.value, [])),
            "limit": limits.get(s.value),
        }
        for s in PATH
    ]


def recent_decisions(base: QuerySet, limit: int = 8) -> QuerySet:
    return GateDecision.objects.filter(initiative__in=base).select_related(
        "initiative", "decided_by"
    )[:limit]
