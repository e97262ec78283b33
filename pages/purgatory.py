"""Pilot-purgatory detection: which initiatives look stuck, and why.

`detect` computes every rule for every initiative in a fixed number of queries; `sync_flags`
stores the result as PurgatoryFlag rows, raising new flags, rewording live ones and clearing
those whose rule no longer holds. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, DateTimeField, Exists, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from gates.models import GateDecision
from gates.stages import LAUNCHED, Stage, Transition
from metrics.models import FeedKind, FeedStatus, Metric, MetricSnapshot, Verdict
from portfolio.models import FlagKind, Initiative, PurgatoryFlag, StageLimit

log = logging.getLogger(__name__)

DEFAULT_STAGE_LIMITS = {
    Stage.FRAME: 30,
    Stage.THIN_SLICE: 90,
    Stage.READINESS_REVIEW: 30,
    Stage.NARROW_LAUNCH: 60,
}
PAST_FRAME = [Stage.THIN_SLICE, Stage.READINESS_REVIEW, Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def stage_limits() -> dict[str, int]:
    return {**DEFAULT_STAGE_LIMITS, **dict(StageLimit.objects.values_list("stage", "days"))}


def below_threshold_days() -> int:
    return getattr(settings, "GANTRY_BELOW_THRESHOLD_DAYS", 14)


def detect(*, now: datetime | None = None) -> dict[int, dict[str, str]]:
    """{initiative_id: {flag kind: reason}} for every initiative with at least one flag."""
    now = now or timezone.now()
    limits = stage_limits()
    primary = Metric.objects.filter(initiative=OuterRef("pk"), is_primary=True)
    # Paused and retired feeds deliver nothing: only active live feeds count as integrated.
    live = Q(feeds__kind=FeedKind.LIVE, feeds__status=FeedStatus.ACTIVE)
    rows = (
        Initiative.objects.exclude(stage=Stage.STOPPED)
        .annotate(
            has_metric=Exists(primary.filter(ship_threshold__isnull=False)),
            live_feeds=Count("feeds", filter=live),
            stale_feeds=Count("feeds", filter=live & Q(feeds__is_stale=True)),
        )
        .values(
            "pk", "stage", "stage_entered_at", "business_owner_id", "has_metric", "live_feeds",
            "stale_feeds",
        )
    )  # fmt: skip
    flags: dict[int, dict[str, str]] = {}
    for row in rows:
        found = {}
        past_frame = row["stage"] in PAST_FRAME
        if past_frame and row["business_owner_id"] is None:
            found[FlagKind.NO_BUSINESS_OWNER] = "No business owner is named, yet it left framing."
        if past_frame and not row["has_metric"]:
            found[FlagKind.NO_SUCCESS_METRIC] = (
                "No primary success metric with a numeric ship threshold."
            )
        if past_frame and row["live_feeds"] == 0:
            found[FlagKind.BORROWED_DATA] = (
                "No live data feed: its data is borrowed, not integrated."
            )
        elif past_frame and row["stale_feeds"]:
            found[FlagKind.BORROWED_DATA] = (
                f"{row['stale_feeds']} of {row['live_feeds']} live feed(s) missed their "
                "freshness window."
            )
        limit = limits.get(row["stage"])
        days = (now - row["stage_entered_at"]).days
        if limit is not None and days > limit:
            label = Stage(row["stage"]).label.lower()
            found[FlagKind.STUCK] = f"{days} days in {label}; the limit is {limit}."
        if found:
            flags[row["pk"]] = found
    for initiative_id, reason in _below_threshold(now).items():
        flags.setdefault(initiative_id, {})[FlagKind.BELOW_THRESHOLD] = reason
    for initiative_id, reason in _metric_errors().items():
        flags.setdefault(initiative_id, {})[FlagKind.METRIC_ERROR] = reason
    return flags


def _metric_errors() -> dict[int, str]:
    """Initiatives whose primary metric's latest recompute failed: nobody can judge it until
    a person looks at its data."""
    rows = (
        Metric.objects.filter(is_primary=True, latest_snapshot__verdict=Verdict.ERROR)
        .exclude(initiative__stage=Stage.STOPPED)
        .values_list("initiative_id", "name", "latest_snapshot__summary")
    )
    return {
        initiative_id: f"The status of {name} {summary}"[:300]
        for initiative_id, name, summary in rows
    }


def _below_threshold(now: datetime) -> dict[int, str]:
    """Launched initiatives whose primary metric has been below its threshold for too long.

    The run of "below" verdicts starts at the first below snapshot after the last snapshot
    that said anything else; one query finds it for every metric. Only the time in launch
    counts: a run that began in thin slice is counted from the launch (the latest passed
    readiness review), so a pilot that was below while it was being built is not flagged on
    its first day in narrow launch. Narrow and wide launch count as one period.
    """
    limit = below_threshold_days()
    snapshots = MetricSnapshot.objects.filter(metric=OuterRef("pk"))
    # A failed recompute says nothing either way: it neither starts nor ends a run.
    last_other = snapshots.exclude(verdict__in=[Verdict.BELOW, Verdict.ERROR]).order_by(
        "-computed_at"
    )
    run_start = snapshots.filter(
        verdict=Verdict.BELOW, computed_at__gt=OuterRef("last_other")
    ).order_by("computed_at")
    launch = GateDecision.objects.filter(
        initiative=OuterRef("initiative"), transition=Transition.PASS_REVIEW
    ).order_by("-decided_at")
    metrics = (
        Metric.objects.filter(
            is_primary=True,
            initiative__stage__in=LAUNCHED,
            latest_snapshot__verdict=Verdict.BELOW,
        )
        .annotate(
            last_other=Coalesce(
                Subquery(last_other.values("computed_at")[:1]),
                Value(EPOCH, output_field=DateTimeField()),
            )
        )
        .annotate(
            run_start=Subquery(run_start.values("computed_at")[:1]),
            launched_at=Subquery(launch.values("decided_at")[:1]),
        )
        .values_list("initiative_id", "run_start", "launched_at")
    )
    result = {}
    for initiative_id, run_start_at, launched_at in metrics:
        if run_start_at is None:
            continue
        start = max(run_start_at, launched_at) if launched_at else run_start_at
        days = (now - start).days
        if days > limit:
            result[initiative_id] = (
                f"The primary metric has been below its ship threshold for "
                f"{days} days (limit {limit})."
            )
    return result


def _insert_new(flags: list[PurgatoryFlag]) -> int:
    """Insert the flags, skipping any that a concurrent run raised first; returns how many
    were inserted. INSERT ... ON CONFLICT DO NOTHING RETURNING (PostgreSQL, and SQLite from
    3.35) answers with the inserted rows only, which bulk_create(ignore_conflicts=True) does
    not report."""
    fields = [f for f in PurgatoryFlag._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(PurgatoryFlag._meta.db_table)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    inserted = 0
    with connection.cursor() as cursor:
        for start in range(0, len(flags), 500):
            chunk = flags[start : start + 500]
            params = [
                f.get_db_prep_save(f.pre_save(flag, add=True), connection)
                for flag in chunk
                for f in fields
            ]
            values = ", ".join([row] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608 - our names
                "ON CONFLICT DO NOTHING RETURNING 1",
                params,
            )
            inserted += len(cursor.fetchall())
    return inserted


def sync_flags(*, now: datetime | None = None) -> dict[str, int]:
    """Store what `detect` found. Returns counts of raised, updated and cleared flags."""
    now = now or timezone.now()
    wanted = detect(now=now)
    raised = updated = cleared = 0
    with transaction.atomic():
        active = {
            (f.initiative_id, f.kind): f
            for f in PurgatoryFlag.objects.select_for_update().filter(cleared_at__isnull=True)
        }
        new = []
        for initiative_id, kinds in wanted.items():
            for kind, reason in kinds.items():
                flag = active.pop((initiative_id, kind), None)
                if flag is None:
                    new.append(
                        PurgatoryFlag(
                            initiative_id=initiative_id, kind=kind, reason=reason, raised_at=now
                        )
                    )
                elif flag.reason != reason:
                    PurgatoryFlag.objects.filter(pk=flag.pk).update(reason=reason)
                    updated += 1
        # A second run at the same moment may have raised the same flag: keep the first,
        # and count only the flags this run inserted.
        raised = _insert_new(new)
        if active:
            cleared = PurgatoryFlag.objects.filter(pk__in=[f.pk for f in active.values()]).update(
                cleared_at=now
            )
    log.info("purgatory flags: %s raised, %s reworded, %s cleared", raised, updated, cleared)
    return {"raised": raised, "updated": updated, "cleared": cleared}
