"""The portfolio dashboard's reads: a fixed number of queries whatever the portfolio's size.

Everything is read from stored state (stages, decisions, snapshots, flags); nothing is
recomputed in the request. The page is cached in sections (`SECTIONS`), each under the
versions of the data it reads (`pages.versions`), so a write recomputes only the sections
that show it: data flowing in renews the metric status and nothing else.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from statistics import median

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    Count,
    DateTimeField,
    F,
    FilteredRelation,
    FloatField,
    IntegerField,
    Min,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from gates.models import GateDecision
from gates.stages import LAUNCHED, PATH, Stage, StopReason, Transition
from jobs import publish
from metrics.display import compared
from metrics.models import Metric, Verdict
from pages import budget, versions
from pages.listing import (
    ANY_FLAG,
    CHANGES,
    LAUNCHED_FILTER,
    NO_COST,
    NO_METRIC,
    NOT_COMPUTED,
    PROGRESS,
    quarter_bounds,
    quarter_of,
    recent_since,
    with_grouped_milestones,
)
from pages.models import Source
from pages.purgatory import stage_limits
from portfolio.models import BusinessUnit, FlagKind, Initiative, PurgatoryFlag
from readiness.queries import RunningCost, running_costs

log = logging.getLogger(__name__)


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
    """Of the initiatives that left framing: how many reached narrow and wide launch, how many
    stopped and how many are still in flight. One query, counting with the list's own
    progress filters (`pages.listing.PROGRESS`), so each figure links to its initiatives.
    Why they stopped is `stopped_reasons`, the one list of stop reasons on the dashboard."""
    return _conversion(progress_counts(base, quarters=[])[0])


def _conversion(counts: dict) -> Conversion:
    return Conversion(
        left_frame=counts["left_frame"],
        reached_narrow=counts["reached_narrow"],
        reached_wide=counts["reached_wide"],
        stopped=counts["stopped_after_frame"],
        in_flight=counts["in_flight"],
    )


def progress_counts(base: QuerySet, *, quarters: list[str]) -> tuple[dict, dict[str, dict]]:
    """The PROGRESS counts of every initiative in scope, and of each cohort (the initiatives
    that first left framing in each of `quarters`), in one query: the decisions grouped by
    initiative once, then counted with the list's progress filters."""
    rules = {key: rule for key, (_, rule) in PROGRESS.items()}
    counts = {key: Count("pk", filter=rule) for key, rule in rules.items()}
    for n, quarter in enumerate(quarters):
        start, end = quarter_bounds(quarter)
        cohort = Q(left_at__gte=start, left_at__lt=end)
        counts |= {f"q{n}_{key}": Count("pk", filter=rule & cohort) for key, rule in rules.items()}
    found = with_grouped_milestones(base).aggregate(**counts)
    overall = {key: found[key] for key in rules}
    by_quarter = {q: {key: found[f"q{n}_{key}"] for key in rules} for n, q in enumerate(quarters)}
    return overall, by_quarter


def stopped_reasons(base: QuerySet) -> list[dict]:
    """Every stopped initiative in scope by its reason, most frequent first: the one list of
    stop reasons the dashboard shows."""
    labels = dict(StopReason.choices)
    rows = base.filter(stage=Stage.STOPPED).values_list("stop_reason").annotate(n=Count("pk"))
    return sorted(
        ({"reason": r, "label": labels.get(r, "Unknown"), "count": n} for r, n in rows.order_by()),
        key=lambda item: (-item["count"], item["label"]),
    )


def duration(since, now) -> str:
    """ "111 days", "1 day", "5 hours", "under an hour"."""
    delta = now - since
    if delta.days >= 1:
        return f"{delta.days} day{'s' if delta.days != 1 else ''}"
    hours = delta.seconds // 3600
    if delta.days == 0 and hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return "under an hour"


# How long each kind of problem has lasted, as a person says it.
AGE_PHRASES = {
    FlagKind.STUCK: "{d} in {stage}",
    FlagKind.BELOW_THRESHOLD: "below threshold for {d}",
    FlagKind.BORROWED_DATA: "without fresh live data for {d}",
    FlagKind.NO_BUSINESS_OWNER: "without a business owner for {d}",
    FlagKind.NO_SUCCESS_METRIC: "without a numeric threshold for {d}",
    FlagKind.METRIC_ERROR: "status failing for {d}",
    FlagKind.BLOCKED_AT_GATE: "blocked at its gate for {d}",
    FlagKind.NO_UPKEEP: "without an upkeep budget for {d}",
}


def flag_age(flag: PurgatoryFlag, *, stage_label: str, now) -> str:
    """The age of the problem behind `flag` (not of the flag row): "111 days in thin slice"."""
    phrase = AGE_PHRASES.get(flag.kind, "flagged for {d}")
    return phrase.format(d=duration(flag.problem_since, now), stage=stage_label.lower())


def flagged(base: QuerySet, *, now, limit: int = 12) -> tuple[list, int]:
    """Flagged initiatives, worst first (most flags, then the oldest problem), and their
    count. Each initiative carries the age of its oldest problem (`oldest_age`).

    The ranking reads only the active flags, grouped by initiative, and returns ids: their
    number is the count, and only the first `limit` initiatives are then read in full.
    """
    problem_since = Coalesce("since", "raised_at")
    ranked = list(
        PurgatoryFlag.objects.filter(cleared_at__isnull=True, initiative__in=base)
        .values("initiative")
        .annotate(flag_count=Count("pk"), oldest=Min(problem_since))
        .order_by("-flag_count", "oldest", "initiative__title", "initiative")
        .values_list("initiative", flat=True)
    )
    shown = ranked[:limit]
    active = Q(flags__cleared_at__isnull=True)
    worst = (
        Initiative.objects.filter(pk__in=shown)
        .annotate(
            flag_count=Count("flags", filter=active),
            since=Min(Coalesce("flags__since", "flags__raised_at"), filter=active),
        )
        # Whom to chase: the business owner and the sponsor, in the same query.
        .select_related("business_unit", "business_owner", "sponsor")
        .prefetch_related(
            Prefetch(
                "flags",
                queryset=PurgatoryFlag.objects.filter(cleared_at__isnull=True).order_by(
                    "raised_at", "kind"
                ),
                to_attr="active_flags",
            )
        )
    )
    order = {pk: n for n, pk in enumerate(shown)}
    rows = sorted(worst, key=lambda i: order[i.pk])
    for initiative in rows:
        # Of problems as old as each other, the one a person names first: time in stage.
        oldest = min(
            initiative.active_flags,
            key=lambda f: (f.problem_since, list(AGE_PHRASES).index(f.kind)),
        )
        initiative.oldest_age = flag_age(
            oldest, stage_label=initiative.get_stage_display(), now=now
        )
    return rows, len(ranked)


def flag_counts(base: QuerySet) -> dict:
    """Initiatives with an active flag, per kind and per stage, in one query:
    {(kind, stage): count}. An initiative holds at most one active flag of a kind."""
    rows = (
        PurgatoryFlag.objects.filter(cleared_at__isnull=True, initiative__in=base)
        .values_list("kind", "initiative__stage")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(kind, stage): n for kind, stage, n in rows}


def by_kind(counts: dict) -> list[dict]:
    """Initiatives flagged per kind, in FlagKind's order, with the list filter that shows
    them; kinds nobody holds are left out."""
    totals = Counter()
    for (kind, _), n in counts.items():
        totals[kind] += n
    return [
        {"kind": kind, "label": label, "count": totals[kind], "query": f"flag={kind}"}
        for kind, label in FlagKind.choices
        if totals[kind]
    ]


def verdicts(
    base: QuerySet,
    *,
    counts: dict | None = None,
    costs: dict[int, RunningCost] | None = None,
    now=None,
    limit: int = 12,
) -> dict:
    """Primary-metric status of launched initiatives: counts per verdict, the launched
    initiatives with no primary metric, those blocked at their gate, and the worst rows
    (`launched_status`, with the blocked count from the flag counts)."""
    counts = flag_counts(base) if counts is None else counts
    return {
        **launched_status(base, costs=costs, now=now, limit=limit),
        "blocked": blocked_at_gate(counts),
    }


def blocked_at_gate(counts: dict) -> dict:
    """Launched initiatives blocked at their gate, from `flag_counts`, with their filter."""
    return {
        "label": FlagKind.BLOCKED_AT_GATE.label,
        "count": sum(counts.get((FlagKind.BLOCKED_AT_GATE, s), 0) for s in LAUNCHED),
        "query": f"stage={LAUNCHED_FILTER}&flag={FlagKind.BLOCKED_AT_GATE}",
    }


def launched_status(
    base: QuerySet, *, costs: dict[int, RunningCost] | None = None, now=None, limit: int = 12
) -> dict:
    """Counts per verdict of the launched initiatives' primary metrics, how many have no
    primary metric, and the worst `limit` rows.

    One narrow pass over the launched initiatives, each joined to its primary metric (at most
    one) and that metric's latest snapshot, worst first, yields the counts, the initiatives
    without a primary metric and which rows to show; only those rows are then read in full
    (with their snapshot, initiative and its active flags). Each row's pilot value and
    threshold are written by one precision rule (`metrics.display.compared`), with the unit on
    both and the metric's direction.
    """
    now = now or timezone.now()
    launched = base.filter(stage__in=LAUNCHED)
    costs = running_costs(launched) if costs is None else costs
    verdict = "primary_metric__latest_snapshot__verdict"
    worst_first = Case(
        # A metric whose recompute failed says nothing at all: it needs a person first.
        When(**{verdict: Verdict.ERROR}, then=Value(-1)),
        When(**{verdict: Verdict.BELOW}, then=Value(0)),
        When(**{verdict: Verdict.STALE}, then=Value(1)),
        When(primary_metric__latest_snapshot__isnull=True, then=Value(2)),
        When(**{verdict: Verdict.INSUFFICIENT_DATA}, then=Value(3)),
        default=Value(4),
        output_field=IntegerField(),
    )
    passed = list(
        launched.annotate(
            primary_metric=FilteredRelation("metrics", condition=Q(metrics__is_primary=True))
        )
        .order_by(worst_first, "title", "primary_metric__pk")
        .values_list("primary_metric__pk", verdict)
    )
    ranked = [(pk, v) for pk, v in passed if pk is not None]
    without_metric = len(passed) - len(ranked)
    per_verdict = Counter(v for _, v in ranked)
    order = {pk: n for n, (pk, _) in enumerate(ranked[:limit])}
    shown = sorted(
        Metric.objects.filter(pk__in=list(order))
        .select_related("latest_snapshot", "initiative")
        .prefetch_related(
            Prefetch(
                "initiative__flags",
                queryset=PurgatoryFlag.objects.filter(
                    cleared_at__isnull=True,
                    kind__in=[FlagKind.BLOCKED_AT_GATE, FlagKind.BELOW_THRESHOLD],
                ),
                to_attr="status_flags",
            )
        ),
        key=lambda m: order[m.pk],
    )
    labels = dict(Verdict.choices)
    verdict_counts = [
        {
            "verdict": v,
            "label": labels[v],
            "count": per_verdict.get(v, 0),
            "query": f"stage={LAUNCHED_FILTER}&verdict={v}",
        }
        for v in Verdict.values
    ]
    if per_verdict.get(None):
        verdict_counts.append(
            {
                "verdict": NOT_COMPUTED,
                "label": "Not computed",
                "count": per_verdict[None],
                "query": f"stage={LAUNCHED_FILTER}&verdict={NOT_COMPUTED}",
            }
        )
    if without_metric:
        verdict_counts.append(
            {
                "verdict": NO_METRIC,
                "label": "No primary metric",
                "count": without_metric,
                "query": f"stage={LAUNCHED_FILTER}&verdict={NO_METRIC}",
            }
        )
    return {
        "counts": verdict_counts,
        "rows": [_status_row(m, now=now, cost=costs.get(m.initiative_id)) for m in shown],
        "total": len(passed),
        "launched_query": f"stage={LAUNCHED_FILTER}",
    }


def _status_row(metric: Metric, *, now, cost: RunningCost | None = None) -> dict:
    snapshot = metric.latest_snapshot
    flags = {f.kind: f for f in metric.initiative.status_flags}
    figures = compared(
        None if snapshot is None else snapshot.pilot_value,
        metric.ship_threshold,
        unit=metric.unit,
        higher_is_better=metric.higher_is_better,
    )
    below = flags.get(FlagKind.BELOW_THRESHOLD)
    blocked = flags.get(FlagKind.BLOCKED_AT_GATE)
    return {
        "metric": metric,
        "initiative": metric.initiative,
        "snapshot": snapshot,
        "higher_is_better": metric.higher_is_better,
        "direction": metric.get_direction_display(),
        **figures,
        "below_for": None if below is None else duration(below.problem_since, now),
        "blocked": blocked,
        "cost": cost,
    }


def running_cost(costs: dict[int, RunningCost], *, launched: int) -> dict:
    """What the launched initiatives in scope cost a month to run, per currency (never one
    sum across currencies), and how many have no cost on record; each count links to the
    list of exactly those initiatives."""
    per_currency: dict[str, list] = {}
    for cost in costs.values():
        total = per_currency.setdefault(cost.currency, [0, 0])
        total[0] += cost.amount
        total[1] += 1
    missing = launched - len(costs)
    return {
        "per_currency": [
            {
                "currency": currency,
                "amount": amount,
                "count": n,
                "query": f"stage={LAUNCHED_FILTER}&running_cost={currency}",
            }
            for currency, (amount, n) in sorted(per_currency.items())
        ],
        "missing": {
            "count": missing,
            "query": f"stage={LAUNCHED_FILTER}&running_cost={NO_COST}",
        },
    }


def recent_changes(base: QuerySet, *, now) -> list[dict]:
    """How many initiatives had a gate decision, a flag raised or a flag cleared in the last
    seven days, as the list's `changed` filters select them. Two queries that read only the
    week's decisions and flags (by index), not every initiative."""
    since = recent_since(now)
    counts = GateDecision.objects.filter(initiative__in=base, decided_at__gte=since).aggregate(
        decided=Count("initiative", distinct=True)
    )
    counts |= (
        PurgatoryFlag.objects.filter(initiative__in=base)
        .filter(Q(raised_at__gte=since) | Q(cleared_at__gte=since))
        .aggregate(
            flagged=Count("initiative", distinct=True, filter=Q(raised_at__gte=since)),
            cleared=Count("initiative", distinct=True, filter=Q(cleared_at__gte=since)),
        )
    )
    return [
        {"key": key, "label": label, "count": counts[key], "query": f"changed={key}"}
        for key, (label, _) in CHANGES.items()
    ]


class MedianWholeDays(Aggregate):
    """PostgreSQL: the median of the whole days from each timestamp to `now`, the number
    Python's `statistics.median` gives for `(now - timestamp).days`."""

    template = (
        "PERCENTILE_CONT(0.5) WITHIN GROUP "
        "(ORDER BY FLOOR(EXTRACT(EPOCH FROM (%(expressions)s)) / 86400))"
    )
    arg_joiner = " - "
    output_field = FloatField()

    def __init__(self, field: str, *, now):
        super().__init__(Value(now, output_field=DateTimeField()), F(field))


def _days_in_stage(qs: QuerySet, now) -> dict[str, tuple[float | None, int]]:
    """{stage: (median whole days in it, how many)}.

    PostgreSQL computes the medians (one row per stage); elsewhere (the SQLite demo) the
    entry times come to Python, which costs a datetime per initiative.
    """
    if connection.vendor == "postgresql":
        rows = (
            qs.values("stage")
            .annotate(median=MedianWholeDays("stage_entered_at", now=now), n=Count("pk"))
            .values_list("stage", "median", "n")
            .order_by()
        )
        # statistics.median's types: an int for an odd count, a float for an even one.
        return {s: (int(m) if n % 2 else float(m), n) for s, m, n in rows}
    days: dict[str, list[int]] = {}
    for stage, entered in qs.values_list("stage", "stage_entered_at"):
        days.setdefault(stage, []).append((now - entered).days)
    return {stage: (median(values), len(values)) for stage, values in days.items()}


def time_in_stage(base: QuerySet, *, now=None) -> list[dict]:
    """Median days in the current stage, per stage, against the stage's limit."""
    days = _days_in_stage(base.exclude(stage=Stage.STOPPED), now or timezone.now())
    limits = stage_limits()
    return [
        {
            "stage": s.value,
            "label": s.label,
            "median": days.get(s.value, (None, 0))[0],
            "count": days.get(s.value, (None, 0))[1],
            "limit": limits.get(s.value),
        }
        for s in PATH
    ]


# Trends -------------------------------------------------------------------------------------
TREND_QUARTERS = 4
TREND_MONTHS = 6


def last_quarters(now, n: int = TREND_QUARTERS) -> list[str]:
    """The last `n` calendar quarters, oldest first, the current one last ("2026Q4")."""
    local = timezone.localtime(now)
    index = local.year * 4 + (local.month - 1) // 3
    return [f"{i // 4}Q{i % 4 + 1}" for i in range(index - n + 1, index + 1)]


def last_months(now, n: int = TREND_MONTHS) -> list[datetime]:
    """The first moments of the last `n` months, oldest first, the current one last."""
    local = timezone.localtime(now)
    index = local.year * 12 + local.month - 1
    tz = timezone.get_current_timezone()
    return [
        timezone.make_aware(datetime(i // 12, i % 12 + 1, 1), tz)
        for i in range(index - n + 1, index + 1)
    ]


def trends(base: QuerySet, *, now) -> dict:
    """How the portfolio moves over time, in four grouped queries whatever its size:
    `decision_trends` (cohorts and time to launch) and `flag_trend` (flags per month)."""
    return {**decision_trends(base, now=now), **flag_trend(base, now=now)}


def decision_trends(base: QuerySet, *, now, cohorts: dict[str, dict] | None = None) -> dict:
    """From the gate decisions:

    - cohorts: per quarter in which initiatives first left framing, how many of them have
      since reached narrow and wide launch or stopped, counted with the list's progress
      rules, so that each figure links to the list filtered by cohort and progress
      (`progress_counts`, unless given);
    - median days from entering framing to the first launch, per quarter of that launch, from
      the first passed review of each initiative (one grouped query).
    """
    quarters = last_quarters(now)
    start = quarter_bounds(quarters[0])[0]
    if cohorts is None:
        cohorts = progress_counts(base, quarters=quarters)[1]
    rows = []
    for quarter in quarters:
        row = cohorts[quarter]
        left = row["left_frame"]
        rows.append(
            {
                "quarter": quarter,
                "label": _quarter_label(quarter),
                "current": quarter == quarters[-1],
                "left_frame": left,
                "reached_narrow": row["reached_narrow"],
                "reached_wide": row["reached_wide"],
                "stopped": row["stopped_after_frame"],
                "in_flight": row["in_flight"],
                "launch_share": round(100 * row["reached_narrow"] / left) if left else None,
            }
        )

    launches: dict[str, list[int]] = {}
    for created, launched in (
        GateDecision.objects.filter(initiative__in=base, transition=Transition.PASS_REVIEW)
        .values("initiative")
        .annotate(launched_at=Min("decided_at"))
        .filter(launched_at__gte=start)
        .values_list("initiative__created_at", "launched_at")
    ):
        launches.setdefault(quarter_of(launched), []).append((launched - created).days)
    to_launch = [
        {
            "quarter": q,
            "label": _quarter_label(q),
            "current": q == quarters[-1],
            "launched": len(launches.get(q, [])),
            "median_days": median(launches[q]) if launches.get(q) else None,
        }
        for q in quarters
    ]
    return {"cohorts": rows, "to_launch": to_launch}


def flag_trend(base: QuerySet, *, now) -> dict:
    """Flags raised and cleared per month (flags, not initiatives: one may hold several), in
    two grouped queries."""
    months = last_months(now)
    flags = PurgatoryFlag.objects.filter(initiative__in=base)

    def per_month(field: str) -> dict:
        rows = (
            flags.filter(**{f"{field}__gte": months[0]})
            .annotate(month=TruncMonth(field))
            .values_list("month")
            .annotate(n=Count("pk"))
            .order_by()
        )
        return {(m.year, m.month): n for m, n in rows}

    raised, cleared = per_month("raised_at"), per_month("cleared_at")
    flag_months = [
        {
            "label": f"{m:%b %Y}",
            "current": m == months[-1],
            "raised": raised.get((m.year, m.month), 0),
            "cleared": cleared.get((m.year, m.month), 0),
        }
        for m in months
    ]
    most = max([1, *(f["raised"] for f in flag_months), *(f["cleared"] for f in flag_months)])
    return {"flag_months": flag_months, "flag_max": most}


def _quarter_label(quarter: str) -> str:
    """ "2026Q3" as a person writes it: "Q3 2026"."""
    year, number = quarter.split("Q")
    return f"Q{number} {year}"


def recent_decisions(base: QuerySet, limit: int = 8) -> QuerySet:
    return GateDecision.objects.filter(initiative__in=base).select_related(
        "initiative", "decided_by"
    )[:limit]


def kpis(stages: list[dict], counts: dict, total: int, launched: dict) -> list[dict]:
    """The headline figures, each with the list filter that shows exactly the initiatives it
    counts; `launched` is what `verdicts` says of the launched initiatives."""
    in_stage = {s["stage"]: s["count"] for s in stages}
    meeting = next(v for v in launched["counts"] if v["verdict"] == Verdict.MEETING)

    def flagged(kind: str) -> int:
        return sum(n for (k, _), n in counts.items() if k == kind)

    return [
        {"count": total, "label": "initiatives in this view", "query": "", "tone": ""},
        {
            "count": in_stage[Stage.WIDE_LAUNCH],
            "label": "in wide launch: in production now",
            "query": f"stage={Stage.WIDE_LAUNCH}",
            "tone": "ok",
        },
        {
            "count": meeting["count"],
            "label": f"of {launched['total']} launched meet their ship threshold",
            "query": meeting["query"],
            "tone": "ok",
        },
        {
            "count": flagged(FlagKind.STUCK),
            "label": "stuck: longer in their stage than its limit",
            "query": f"flag={FlagKind.STUCK}",
            "tone": "bad",
        },
        {
            "count": flagged(FlagKind.BLOCKED_AT_GATE),
            "label": "blocked at their next gate by overdue work or an overdue review",
            "query": f"flag={FlagKind.BLOCKED_AT_GATE}",
            "tone": "bad",
        },
        {
            "count": in_stage[Stage.STOPPED],
            "label": "stopped with a reason: decisions, not failures",
            "query": f"stage={Stage.STOPPED}",
            "tone": "",
        },
    ]


# The dashboard in sections, each cached under the versions of what it reads ---------------
def _portfolio(base: QuerySet, now) -> dict:
    """Stages, conversion, stops, time in stage and the decision trends: initiatives and
    their decisions (and the stage limits)."""
    stages = funnel(base)
    in_stage = time_in_stage(base, now=now)
    limits = [t["median"] or 0 for t in in_stage] + [t["limit"] or 0 for t in in_stage]
    overall, cohorts = progress_counts(base, quarters=last_quarters(now))
    return {
        "stages": stages,
        "total": sum(s["count"] for s in stages),
        "max_count": max(s["count"] for s in stages) or 1,
        "conversion": _conversion(overall),
        "progress_queries": {key: f"progress={key}" for key in PROGRESS},
        "stopped": stopped_reasons(base),
        "time_in_stage": in_stage,
        "max_median": max(limits) or 1,
        "decision_trends": decision_trends(base, now=now, cohorts=cohorts),
    }


def _flags(base: QuerySet, now) -> dict:
    """Counts, the worst flagged initiatives with whom to chase, the week's changes and the
    flags per month: flags, and the initiatives, people and units they name."""
    counts = flag_counts(base)
    flagged_rows, flagged_count = flagged(base, now=now)
    return {
        "counts": counts,
        "flagged": flagged_rows,
        "flagged_count": flagged_count,
        "flagged_query": f"flag={ANY_FLAG}",
        "flag_kinds": by_kind(counts),
        "recent_changes": recent_changes(base, now=now),
        "flag_trend": flag_trend(base, now=now),
    }


def _status(base: QuerySet, now) -> dict:
    """The launched initiatives' metric status and running cost: snapshots, metrics, the
    status flags, and the reviews their launch decisions passed."""
    costs = running_costs(base.filter(stage__in=LAUNCHED))
    status = launched_status(base, costs=costs, now=now)
    return {
        "verdicts": status,
        "running_cost": running_cost(costs, launched=status["total"]),
    }


def _decisions(base: QuerySet, now) -> dict:
    return {"recent_decisions": list(recent_decisions(base))}


# The launched initiatives the dashboard lists by value; the export has them all.
VALUE_ROWS = 10


def _value(base: QuerySet, now) -> dict:
    """Value realised against running cost, spend requested and approved, and requests not
    backed by a met threshold. Rows as plain values: the section is cached."""
    found = budget.value_section(base)
    found["rows"] = [
        {
            "title": initiative.title,
            "url": initiative.get_absolute_url(),
            "unit": initiative.business_unit.name,
            "value": value,
        }
        for initiative, value in found["rows"][:VALUE_ROWS]
        if value.measured
    ]
    return found


def _filters(base: QuerySet, now) -> dict:
    """The unit and sponsor filters' choices (the same in every scope)."""
    return {
        "units": list(BusinessUnit.objects.values_list("slug", "name")),
        "sponsors": [
            (pk, f"{first} {last}".strip() or username)
            for pk, first, last, username in get_user_model()
            .objects.filter(pk__in=Initiative.objects.values("sponsor"))
            .order_by("first_name", "last_name")
            .values_list("pk", "first_name", "last_name", "username")
        ],
    }


@dataclass
class Section:
    """A part of the dashboard computed and cached on its own.

    `reads` are the sources (`pages.versions`) whose versions make its cache key: any write
    to them gives a new key. `lags` are sources it may trail by up to the recompute debounce:
    the metric snapshots, which a steady flow of data renews every few seconds. The
    verdicts are themselves computed at most a debounce after the data arrived; holding the
    section that much longer keeps its cost to one computation per debounce instead of one
    per request, and never shows a snapshot more than a debounce after it was written.
    """

    compute: Callable[[QuerySet, datetime], dict]
    reads: tuple[str, ...]
    lags: tuple[str, ...] = ()
    scoped: bool = True

    def key(self, name: str, scope: str, found: dict[str, int]) -> str:
        read = ",".join(f"{source}={found[source]}" for source in sorted(self.reads))
        return f"gantry:dashboard:{name}:{scope if self.scoped else '*'}:{read}"

    def fresh(self, entry: dict, found: dict[str, int], now: datetime) -> bool:
        """Whether a cached `entry` may be shown: its lagging sources are current, or it was
        computed within the recompute debounce."""
        if all(entry["lags"][source] == found[source] for source in self.lags):
            return True
        debounce = settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS
        return (now - entry["as_of"]).total_seconds() <= debounce

    def refresh_due(self, entry: dict, found: dict[str, int], now: datetime) -> bool:
        """Whether a cached `entry`, still fit to show, trails its lagging sources and is far
        enough into the debounce that a worker should compute it again (`REFRESH_AT`)."""
        if all(entry["lags"][source] == found[source] for source in self.lags):
            return False
        debounce = settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS
        return (now - entry["as_of"]).total_seconds() > debounce * REFRESH_AT

    def run(self, base: QuerySet, now: datetime, found: dict[str, int]) -> dict:
        return {
            "as_of": now,
            "lags": {source: found[source] for source in self.lags},
            "data": self.compute(base, now),
        }


S = Source
SECTIONS = {
    "portfolio": Section(_portfolio, reads=(S.INITIATIVES, versions.DECISIONS, S.LIMITS)),
    "flags": Section(_flags, reads=(S.FLAGS, S.INITIATIVES, versions.DECISIONS, S.PEOPLE, S.UNITS)),
    "status": Section(
        _status,
        reads=(S.METRICS, S.FLAGS, S.INITIATIVES, versions.DECISIONS),
        lags=(versions.SNAPSHOTS,),
    ),
    "decisions": Section(_decisions, reads=(versions.DECISIONS, S.INITIATIVES, S.PEOPLE)),
    # Stages and running costs come with the decisions; the value model with the metrics.
    "value": Section(
        _value,
        reads=(
            S.METRICS,
            S.INITIATIVES,
            S.UNITS,
            versions.DECISIONS,
            versions.BUDGET_REQUESTS,
            versions.BUDGET_DECISIONS,
        ),
        lags=(versions.SNAPSHOTS,),
    ),
    "filters": Section(_filters, reads=(S.UNITS, S.PEOPLE, S.INITIATIVES), scoped=False),
}


def assemble(parts: dict[str, dict]) -> dict:
    """The dashboard's figures from its sections' (cached or computed) entries; the figures
    are as of the oldest section's computation."""
    portfolio, flags, status = (parts[name]["data"] for name in ("portfolio", "flags", "status"))
    launched = {**status["verdicts"], "blocked": blocked_at_gate(flags["counts"])}
    return {
        "as_of": min(part["as_of"] for part in parts.values()),
        **{key: value for key, value in portfolio.items() if key != "decision_trends"},
        "kpis": kpis(portfolio["stages"], flags["counts"], portfolio["total"], launched),
        **{key: flags[key] for key in ("flagged", "flagged_count", "flagged_query")},
        "flag_kinds": flags["flag_kinds"],
        "verdicts": launched,
        "running_cost": status["running_cost"],
        "recent_changes": flags["recent_changes"],
        "recent_decisions": parts["decisions"]["data"]["recent_decisions"],
        "value": parts["value"]["data"],
        "trends": {**portfolio["decision_trends"], **flags["flag_trend"]},
        **parts["filters"]["data"],
    }


def figures(*, unit=None, sponsor=None) -> dict:
    """Everything the dashboard shows for this scope, as plain lists and values, and the
    moment they were computed (`as_of`), computed now."""
    now = timezone.now()
    base = scoped(unit=unit, sponsor=sponsor)
    found = dict.fromkeys(
        [
            versions.DECISIONS, versions.SNAPSHOTS, versions.BUDGET_REQUESTS,
            versions.BUDGET_DECISIONS, *Source.values,
        ],
        0,
    )  # fmt: skip
    return assemble({name: s.run(base, now, found) for name, s in SECTIONS.items()})


# A section that trails new snapshots is handed to a worker (`pages.tasks`) once it is this
# share of the debounce old, so that requests keep being answered from the cache while data
# flows. A request computes it itself only when no refresh has come by the debounce's end
# (worker busy, broker away), so the bound on staleness holds either way.
REFRESH_AT = 0.5


def _scope(unit, sponsor) -> str:
    return f"{unit.pk if unit else ''}:{sponsor.pk if sponsor else ''}"


def _ask_refresh(unit, sponsor) -> None:
    """Ask a worker to compute this scope's lagging sections: at most once per half debounce
    per scope, whatever the number of requests; never in eager mode, where the task would
    run in this very request."""
    from pages import tasks  # the task module imports this one

    if tasks.refresh_dashboard.app.conf.task_always_eager:
        return
    hold = settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS * REFRESH_AT
    try:
        if not cache.add(f"gantry:dashboard:refreshing:{_scope(unit, sponsor)}", 1, hold):
            return
    except Exception:
        _cache_failed("write")
        return
    publish.send(
        tasks.refresh_dashboard,
        args=[unit.pk if unit else None, sponsor.pk if sponsor else None],
    )


def refresh_lagging(*, unit=None, sponsor=None) -> list[str]:
    """Compute this scope's sections that trail the snapshots and cache them, as a request
    would; returns their names. The versions are read before the data, so an entry never
    claims newer data than it shows."""
    now = timezone.now()
    found = versions.current()
    scope = _scope(unit, sponsor)
    base = scoped(unit=unit, sponsor=sponsor)
    lagging = {name: section for name, section in SECTIONS.items() if section.lags}
    computed = {
        section.key(name, scope, found): section.run(base, now, found)
        for name, section in lagging.items()
    }
    cache.set_many(computed, CACHE_SECONDS)
    return list(lagging)


# After a cache error, this process does without the cache for a while rather than pay
# the cache's timeout on every request while Redis is away or hung.
CACHE_SECONDS = 300  # time passing (ages, the last seven days) is seen within this
CACHE_PAUSE_SECONDS = 10
_cache_paused_until = 0.0


def _cache_failed(what: str) -> None:
    global _cache_paused_until
    _cache_paused_until = time.monotonic() + CACHE_PAUSE_SECONDS
    log.warning("dashboard cache unavailable (%s); doing without it for %ss", what,
                CACHE_PAUSE_SECONDS)  # fmt: skip


def cached_figures(*, unit=None, sponsor=None) -> dict:
    """`figures`, each section from the cache while nothing it reads has changed: one query
    for every source's version, one cache read for every section, and only the sections
    whose data changed computed again.

    A cache that is down costs only speed: the figures are then computed from the database.
    """
    if time.monotonic() < _cache_paused_until:
        return figures(unit=unit, sponsor=sponsor)
    now = timezone.now()
    found = versions.current()
    scope = _scope(unit, sponsor)
    keys = {name: section.key(name, scope, found) for name, section in SECTIONS.items()}
    try:
        cached = cache.get_many(list(keys.values()))
    except Exception:
        _cache_failed("read")
        return figures(unit=unit, sponsor=sponsor)
    base = scoped(unit=unit, sponsor=sponsor)
    parts, computed, due = {}, {}, False
    for name, section in SECTIONS.items():
        entry = cached.get(keys[name])
        if entry is None or not section.fresh(entry, found, now):
            entry = computed[keys[name]] = section.run(base, now, found)
        else:
            due = due or section.refresh_due(entry, found, now)
        parts[name] = entry
    if computed:
        try:
            cache.set_many(computed, CACHE_SECONDS)
        except Exception:
            _cache_failed("write")
    if due:
        _ask_refresh(unit, sponsor)
    return assemble(parts)
