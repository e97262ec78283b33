"""The portfolio dashboard's reads: a fixed number of queries whatever the portfolio's size.

Everything is read from stored state (stages, decisions, snapshots, flags); nothing is
recomputed in the request.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from statistics import median

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Aggregate,
    Case,
    Count,
    DateTimeField,
    F,
    FloatField,
    IntegerField,
    Min,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from gates.models import GateDecision
from gates.stages import LAUNCHED, PATH, Stage, StopReason
from gates.stages import Transition as T
from metrics.models import Metric, MetricSnapshot, Verdict
from pages.purgatory import stage_limits
from portfolio.models import BusinessUnit, Initiative, PurgatoryFlag

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
    """Of the initiatives that left framing: how many launched, went wide, or stopped (why).

    One query over the milestone decisions, grouped by stage and stop reason (a handful of
    rows). Every way out of framing but a stop is approve_frame, so an initiative that passed
    a review or widened has also left framing.
    """

    def reached(transition: str) -> Count:
        return Count("pk", distinct=True, filter=Q(decisions__transition=transition))

    rows = list(
        base.filter(decisions__transition__in=[T.APPROVE_FRAME, T.PASS_REVIEW, T.WIDEN])
        .values("stage", "stop_reason")
        .annotate(
            left=reached(T.APPROVE_FRAME),
            narrow=reached(T.PASS_REVIEW),
            wide=reached(T.WIDEN),
        )
        .order_by()
    )
    stopped = [row for row in rows if row["stage"] == Stage.STOPPED and row["left"]]
    result = Conversion(
        left_frame=sum(row["left"] for row in rows),
        reached_narrow=sum(row["narrow"] for row in rows),
        reached_wide=sum(row["wide"] for row in rows),
        stopped=sum(row["left"] for row in stopped),
    )
    result.in_flight = result.left_frame - result.stopped - result.reached_wide
    labels = dict(StopReason.choices)
    # Grouped by stage and reason, each stop reason is one row of the stopped stage.
    result.stop_reasons = sorted(
        (
            {
                "reason": r["stop_reason"],
                "label": labels.get(r["stop_reason"], "Unknown"),
                "count": r["left"],
            }
            for r in stopped
        ),
        key=lambda item: (-item["count"], item["label"]),
    )
    return result


def stopped_reasons(base: QuerySet) -> list[dict]:
    labels = dict(StopReason.choices)
    rows = base.filter(stage=Stage.STOPPED).values_list("stop_reason").annotate(n=Count("pk"))
    return sorted(
        ({"reason": r, "label": labels.get(r, "Unknown"), "count": n} for r, n in rows.order_by()),
        key=lambda item: (-item["count"], item["label"]),
    )


def flagged(base: QuerySet, limit: int = 12) -> tuple[list, int]:
    """Flagged initiatives, worst first (most flags, then flagged longest), and their count.

    The ranking reads only the active flags, grouped by initiative, and returns ids: their
    number is the count, and only the first `limit` initiatives are then read in full.
    """
    ranked = list(
        PurgatoryFlag.objects.filter(cleared_at__isnull=True, initiative__in=base)
        .values("initiative")
        .annotate(flag_count=Count("pk"), since=Min("raised_at"))
        .order_by("-flag_count", "since", "initiative__title", "initiative")
        .values_list("initiative", flat=True)
    )
    shown = ranked[:limit]
    active = Q(flags__cleared_at__isnull=True)
    worst = (
        Initiative.objects.filter(pk__in=shown)
        .annotate(
            flag_count=Count("flags", filter=active), since=Min("flags__raised_at", filter=active)
        )
        # Whom to chase: the business owner and the sponsor, in the same query.
        .select_related("business_unit", "business_owner", "sponsor")
        .prefetch_related(
            Prefetch(
                "flags",
                queryset=PurgatoryFlag.objects.filter(cleared_at__isnull=True).order_by(
                    "raised_at"
                ),
                to_attr="active_flags",
            )
        )
    )
    order = {pk: n for n, pk in enumerate(shown)}
    return sorted(worst, key=lambda i: order[i.pk]), len(ranked)


def verdicts(base: QuerySet, limit: int = 12) -> dict:
    """Primary-metric status of launched initiatives: counts per verdict and the worst rows.

    One narrow pass, worst first, yields both the counts and which rows to show; only those
    rows are then read in full (with their snapshot and initiative).
    """
    metrics = Metric.objects.filter(is_primary=True, initiative__in=base.filter(stage__in=LAUNCHED))
    worst_first = Case(
        # A metric whose recompute failed says nothing at all: it needs a person first.
        When(latest_snapshot__verdict=Verdict.ERROR, then=Value(-1)),
        When(latest_snapshot__verdict=Verdict.BELOW, then=Value(0)),
        When(latest_snapshot__verdict=Verdict.STALE, then=Value(1)),
        When(latest_snapshot__isnull=True, then=Value(2)),
        When(latest_snapshot__verdict=Verdict.INSUFFICIENT_DATA, then=Value(3)),
        default=Value(4),
        output_field=IntegerField(),
    )
    ranked = list(
        metrics.order_by(worst_first, "initiative__title", "pk").values_list(
            "pk", "latest_snapshot__verdict"
        )
    )
    counts = Counter(verdict for _, verdict in ranked)
    order = {pk: n for n, (pk, _) in enumerate(ranked[:limit])}
    rows = sorted(
        Metric.objects.filter(pk__in=list(order)).select_related("latest_snapshot", "initiative"),
        key=lambda m: order[m.pk],
    )
    labels = dict(Verdict.choices)
    return {
        "counts": [
            {"verdict": v, "label": labels[v], "count": counts.get(v, 0)} for v in Verdict.values
        ]
        + (
            [{"verdict": "none", "label": "Not computed", "count": counts[None]}]
            if counts.get(None)
            else []
        ),
        "rows": rows,
        "total": len(ranked),
    }


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


def time_in_stage(base: QuerySet) -> list[dict]:
    """Median days in the current stage, per stage, against the stage's limit."""
    days = _days_in_stage(base.exclude(stage=Stage.STOPPED), timezone.now())
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


def recent_decisions(base: QuerySet, limit: int = 8) -> QuerySet:
    return GateDecision.objects.filter(initiative__in=base).select_related(
        "initiative", "decided_by"
    )[:limit]


# The whole dashboard, cached ----------------------------------------------------------------
CACHE_SECONDS = 300


def version() -> str:
    """A fingerprint of what the dashboard shows, in one cheap query: any new decision,
    snapshot or flag, a cleared flag, or an edited, added or removed initiative changes it.
    What it misses (a renamed business unit, time passing) the cache's lifetime covers."""
    tables = {
        "decision": GateDecision._meta.db_table,
        "snapshot": MetricSnapshot._meta.db_table,
        "flag": PurgatoryFlag._meta.db_table,
        "initiative": Initiative._meta.db_table,
    }
    sql = (
        f"SELECT (SELECT MAX(id) FROM {tables['decision']}),"  # noqa: S608 - our own tables
        f" (SELECT MAX(id) FROM {tables['snapshot']}),"
        f" (SELECT MAX(id) FROM {tables['flag']}),"
        f" (SELECT MAX(cleared_at) FROM {tables['flag']}),"
        f" (SELECT MAX(updated_at) FROM {tables['initiative']}),"
        f" (SELECT COUNT(*) FROM {tables['initiative']})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return hashlib.sha1(repr(row).encode(), usedforsecurity=False).hexdigest()[:16]


def figures(*, unit=None, sponsor=None) -> dict:
    """Everything the dashboard shows for this scope, as plain lists and values."""
    base = scoped(unit=unit, sponsor=sponsor)
    stages = funnel(base)
    flagged_rows, flagged_count = flagged(base)
    in_stage = time_in_stage(base)
    limits = [t["median"] or 0 for t in in_stage] + [t["limit"] or 0 for t in in_stage]
    return {
        "stages": stages,
        "total": sum(s["count"] for s in stages),
        "max_count": max(s["count"] for s in stages) or 1,
        "stopped_total": next(s["count"] for s in stages if s["stage"] == Stage.STOPPED),
        "conversion": conversion(base),
        "stopped": stopped_reasons(base),
        "flagged": flagged_rows,
        "flagged_count": flagged_count,
        "verdicts": verdicts(base),
        "time_in_stage": in_stage,
        "max_median": max(limits) or 1,
        "recent_decisions": list(recent_decisions(base)),
        "units": list(BusinessUnit.objects.values_list("slug", "name")),
        "sponsors": [
            (pk, f"{first} {last}".strip() or username)
            for pk, first, last, username in get_user_model()
            .objects.filter(pk__in=Initiative.objects.values("sponsor"))
            .order_by("first_name", "last_name")
            .values_list("pk", "first_name", "last_name", "username")
        ],
    }


# After a cache error, this process does without the cache for a while rather than pay
# the cache's timeout on every request while Redis is away or hung.
CACHE_PAUSE_SECONDS = 10
_cache_paused_until = 0.0


def _cache_failed(what: str) -> None:
    global _cache_paused_until
    _cache_paused_until = time.monotonic() + CACHE_PAUSE_SECONDS
    log.warning("dashboard cache unavailable (%s); doing without it for %ss", what,
                CACHE_PAUSE_SECONDS)  # fmt: skip


def cached_figures(*, unit=None, sponsor=None) -> dict:
    """`figures`, from the cache while nothing it shows has changed.

    A cache that is down costs only speed: the figures are then computed from the database.
    """
    if time.monotonic() < _cache_paused_until:
        return figures(unit=unit, sponsor=sponsor)
    scope = f"{unit.pk if unit else ''}:{sponsor.pk if sponsor else ''}"
    key = f"gantry:dashboard:{version()}:{scope}"
    try:
        data = cache.get(key)
    except Exception:
        _cache_failed("read")
        return figures(unit=unit, sponsor=sponsor)
    if data is None:
        data = figures(unit=unit, sponsor=sponsor)
        try:
            cache.set(key, data, CACHE_SECONDS)
        except Exception:
            _cache_failed("write")
    return data
