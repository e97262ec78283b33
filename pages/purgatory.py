"""Pilot-purgatory detection: which initiatives look stuck, and why, and since when.

`findings` computes every rule for every initiative in a fixed number of queries, each with
its reason and the moment the problem began; `sync_flags` stores them as PurgatoryFlag rows,
raising new flags, rewording or redating live ones and clearing those whose rule no longer
holds. Running it twice changes nothing the second time.

"Blocked at gate" is a flag kind like the others rather than a state the pages derive on
each request: the job reads its evidence (the pre-launch work items' due dates, the open
review's age) in the same pass, so the flag is raised and cleared with a history, dated from
when the work fell overdue, filtered in the list like every other flag, and read by the
dashboard from stored rows in a fixed number of queries, its cached sections told of every
change (`pages.versions`). A derived state would need the same rule written twice (the
dashboard's count and the list's filter) and would have no history.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, DateTimeField, Exists, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from gates import events
from gates.criteria import registry
from gates.models import GateDecision
from gates.stages import LAUNCHED, NEXT_GATE, Stage, Transition
from metrics.models import DataFeed, FeedKind, FeedStatus, Metric, MetricSnapshot, Verdict
from pages import versions
from pages.models import Source
from portfolio.models import FlagKind, FramingChange, Initiative, PurgatoryFlag, StageLimit
from readiness.models import PreLaunchWorkItem, ReadinessReview, ReviewOutcome, WorkStatus
from value.models import BudgetKind, BudgetLine

log = logging.getLogger(__name__)

DEFAULT_STAGE_LIMITS = {
    Stage.FRAME: 30,
    Stage.THIN_SLICE: 90,
    Stage.READINESS_REVIEW: 30,
    Stage.NARROW_LAUNCH: 60,
}
PAST_FRAME = [Stage.THIN_SLICE, Stage.READINESS_REVIEW, Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The criteria that make a gate wait on pre-launch work and on the open readiness review.
WORK_ITEMS_CRITERION = "no_open_work_items"
REVIEW_CRITERION = "checklist_complete"


class Finding(NamedTuple):
    reason: str
    since: datetime  # when the problem began


def stage_limits() -> dict[str, int]:
    return {**DEFAULT_STAGE_LIMITS, **dict(StageLimit.objects.values_list("stage", "days"))}


def below_threshold_days() -> int:
    return getattr(settings, "GANTRY_BELOW_THRESHOLD_DAYS", 14)


def detect(*, now: datetime | None = None) -> dict[int, dict[str, str]]:
    """{initiative_id: {flag kind: reason}} for every initiative with at least one flag."""
    return {
        initiative_id: {kind: found.reason for kind, found in kinds.items()}
        for initiative_id, kinds in findings(now=now).items()
    }


def _latest(*moments):
    present = [m for m in moments if m is not None]
    return max(present) if present else None


def findings(*, now: datetime | None = None) -> dict[int, dict[str, Finding]]:
    """{initiative_id: {flag kind: Finding}} for every initiative with at least one flag."""
    now = now or timezone.now()
    limits = stage_limits()
    primary = Metric.objects.filter(initiative=OuterRef("pk"), is_primary=True)
    # Paused and retired feeds deliver nothing: only active live feeds count as integrated.
    live = Q(feeds__kind=FeedKind.LIVE, feeds__status=FeedStatus.ACTIVE)
    changes = FramingChange.objects.filter(initiative=OuterRef("pk")).order_by("-changed_at")
    left_frame = GateDecision.objects.filter(
        initiative=OuterRef("pk"), transition=Transition.APPROVE_FRAME
    ).order_by("-decided_at")
    rows = (
        Initiative.objects.exclude(stage=Stage.STOPPED)
        .annotate(
            has_metric=Exists(primary.filter(ship_threshold__isnull=False)),
            live_feeds=Count("feeds", filter=live),
            stale_feeds=Count("feeds", filter=live & Q(feeds__is_stale=True)),
            # When the last live feed stopped delivering by a person's hand.
            live_feed_stopped_at=Max(
                "feeds__status_event__at",
                filter=Q(feeds__kind=FeedKind.LIVE) & ~Q(feeds__status=FeedStatus.ACTIVE),
            ),
            left_frame_at=Subquery(left_frame.values("decided_at")[:1]),
            owner_changed_at=Subquery(
                changes.filter(field="business_owner").values("changed_at")[:1]
            ),
            threshold_changed_at=Subquery(
                changes.filter(field="metric.ship_threshold").values("changed_at")[:1]
            ),
        )
        .values(
            "pk", "stage", "stage_entered_at", "created_at", "business_owner_id", "has_metric",
            "live_feeds", "stale_feeds", "live_feed_stopped_at", "left_frame_at",
            "owner_changed_at", "threshold_changed_at",
        )
    )  # fmt: skip
    stale_since = _stale_since()
    flags: dict[int, dict[str, Finding]] = {}
    for row in rows:
        found = {}
        past_frame = row["stage"] in PAST_FRAME
        # Past frame, a missing owner, metric or feed dates from leaving framing, or from the
        # later change that took it away.
        left = row["left_frame_at"] or row["created_at"]
        if past_frame and row["business_owner_id"] is None:
            found[FlagKind.NO_BUSINESS_OWNER] = Finding(
                "No business owner is named, yet it left framing.",
                _latest(left, row["owner_changed_at"]),
            )
        if past_frame and not row["has_metric"]:
            found[FlagKind.NO_SUCCESS_METRIC] = Finding(
                "No primary success metric with a numeric ship threshold.",
                _latest(left, row["threshold_changed_at"]),
            )
        if past_frame and row["live_feeds"] == 0:
            found[FlagKind.BORROWED_DATA] = Finding(
                "No live data feed: its data is borrowed, not integrated.",
                _latest(left, row["live_feed_stopped_at"]),
            )
        elif past_frame and row["stale_feeds"]:
            found[FlagKind.BORROWED_DATA] = Finding(
                f"{row['stale_feeds']} of {row['live_feeds']} live feed(s) missed their "
                "freshness window.",
                stale_since.get(row["pk"], row["stage_entered_at"]),
            )
        limit = limits.get(row["stage"])
        days = (now - row["stage_entered_at"]).days
        if limit is not None and days > limit:
            label = Stage(row["stage"]).label.lower()
            found[FlagKind.STUCK] = Finding(
                f"{days} days in {label}; the limit is {limit}.", row["stage_entered_at"]
            )
        if found:
            flags[row["pk"]] = found
    for initiative_id, finding in _below_threshold(now).items():
        flags.setdefault(initiative_id, {})[FlagKind.BELOW_THRESHOLD] = finding
    for initiative_id, finding in _metric_errors().items():
        flags.setdefault(initiative_id, {})[FlagKind.METRIC_ERROR] = finding
    for initiative_id, finding in _blocked_at_gate(now, limits).items():
        flags.setdefault(initiative_id, {})[FlagKind.BLOCKED_AT_GATE] = finding
    for initiative_id, finding in _no_upkeep(now).items():
        flags.setdefault(initiative_id, {})[FlagKind.NO_UPKEEP] = finding
    return flags


def _no_upkeep(now: datetime) -> dict[int, Finding]:
    """Launched initiatives with no approved run / upkeep budget line covering today.
    Dated from the launch (the latest passed review), or from the day after the last run
    line ended when that is later."""
    today = timezone.localdate(now)
    lines = BudgetLine.objects.filter(initiative=OuterRef("pk"), kind=BudgetKind.RUN)
    launch = GateDecision.objects.filter(
        initiative=OuterRef("pk"), transition=Transition.PASS_REVIEW
    ).order_by("-decided_at")
    rows = (
        Initiative.objects.filter(stage__in=LAUNCHED)
        .exclude(Exists(lines.filter(starts_on__lte=today, ends_on__gte=today)))
        .annotate(
            launched_at=Subquery(launch.values("decided_at")[:1]),
            last_ended=Subquery(
                lines.filter(ends_on__lt=today).order_by("-ends_on").values("ends_on")[:1]
            ),
        )
        .values_list("pk", "launched_at", "last_ended", "stage_entered_at")
    )
    result = {}
    for pk, launched_at, last_ended, entered in rows:
        since = launched_at or entered
        reason = "Launched with no approved run / upkeep budget line for today."
        if last_ended is not None:
            ran_out = datetime.combine(
                last_ended + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
            )
            since = max(since, ran_out)
            reason = (
                f"Its last run / upkeep budget line ended on {last_ended:%Y-%m-%d}; no approved "
                "line covers today."
            )
        result[pk] = Finding(reason, since)
    return result


def _stale_since() -> dict[int, datetime]:
    """{initiative_id: when its first stale live feed missed its window}: the window counts
    from the last fresh delivery, or from the feed's creation or resumption, whichever is
    later (as `metrics.status.mark_stale_feeds` judges it)."""
    feeds = DataFeed.objects.filter(
        kind=FeedKind.LIVE, status=FeedStatus.ACTIVE, is_stale=True
    ).values_list("initiative_id", "last_fresh_at", "created_at", "status_event__at",
                  "freshness_hours")  # fmt: skip
    result: dict[int, datetime] = {}
    for initiative_id, fresh_at, created_at, resumed_at, hours in feeds:
        missed = _latest(fresh_at or created_at, resumed_at) + timedelta(hours=hours)
        result[initiative_id] = min(missed, result.get(initiative_id, missed))
    return result


def _metric_errors() -> dict[int, Finding]:
    """Initiatives whose primary metric's latest recompute failed: nobody can judge it until
    a person looks at its data. Dated from the first failure after the last good recompute."""
    snapshots = MetricSnapshot.objects.filter(metric=OuterRef("pk"))
    last_good = snapshots.exclude(verdict=Verdict.ERROR).order_by("-computed_at")
    rows = (
        Metric.objects.filter(is_primary=True, latest_snapshot__verdict=Verdict.ERROR)
        .exclude(initiative__stage=Stage.STOPPED)
        .annotate(
            last_good=Coalesce(
                Subquery(last_good.values("computed_at")[:1]),
                Value(EPOCH, output_field=DateTimeField()),
            )
        )
        .annotate(
            failing_since=Subquery(
                snapshots.filter(verdict=Verdict.ERROR, computed_at__gt=OuterRef("last_good"))
                .order_by("computed_at")
                .values("computed_at")[:1]
            )
        )
        .values_list(
            "initiative_id", "name", "latest_snapshot__summary", "failing_since",
            "latest_snapshot__computed_at",
        )
    )  # fmt: skip
    return {
        initiative_id: Finding(f"The status of {name} {summary}"[:300], since or latest)
        for initiative_id, name, summary, since, latest in rows
    }


def _below_threshold(now: datetime) -> dict[int, Finding]:
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
            result[initiative_id] = Finding(
                f"The primary metric has been below its ship threshold for "
                f"{days} days (limit {limit}).",
                start,
            )
    return result


def stages_whose_gate_waits_on(criterion: str) -> list[str]:
    """The stages whose next gate has `criterion` among its blocking criteria, as the gates'
    registry has them: the flag follows the gates rather than a list of its own."""
    return [
        stage
        for stage, gate in NEXT_GATE.items()
        if any(c.key == criterion and not c.advisory for c in registry.criteria_for(gate))
    ]


def _blocked_at_gate(now: datetime, limits: dict[str, int]) -> dict[int, Finding]:
    """Initiatives whose next gate waits on pre-launch work past its due date, or on a
    readiness review open for longer than its stage's limit. Work not yet due is planned
    work, not a block. Two queries, whatever the portfolio's size."""
    today = timezone.localdate(now)
    overdue = (
        PreLaunchWorkItem.objects.filter(
            status=WorkStatus.OPEN,
            due_date__lt=today,
            initiative__stage__in=stages_whose_gate_waits_on(WORK_ITEMS_CRITERION),
        )
        .order_by("initiative_id", "due_date", "pk")
        .values_list(
            "initiative_id", "initiative__stage", "title", "due_date", "assignee__first_name",
            "assignee__last_name", "assignee__username",
        )
    )  # fmt: skip
    items: dict[int, list] = {}
    for initiative_id, stage, *item in overdue:
        items.setdefault(initiative_id, []).append((stage, *item))
    result = {}
    for initiative_id, rows in items.items():
        stage, title, due, first, last, username = rows[0]
        who = f"{first or ''} {last or ''}".strip() or username or "nobody assigned"
        gate = Transition(NEXT_GATE[stage]).label
        count = len(rows)
        others = f" and {count - 1} more" if count > 1 else ""
        reason = (
            f"{gate} waits on {count} overdue pre-launch work item{'s' if count > 1 else ''}: "
            f"“{title}” ({who}), due {due.day} {due:%b %Y}{others}."
        )
        # Overdue from the start of the day after the due date.
        since = datetime.combine(due + timedelta(days=1), time.min, timezone.get_current_timezone())
        result[initiative_id] = Finding(reason[:300], since)

    for stage in stages_whose_gate_waits_on(REVIEW_CRITERION):
        limit = limits.get(stage)
        if limit is None:
            continue
        reviews = (
            ReadinessReview.objects.filter(
                outcome=ReviewOutcome.OPEN,
                initiative__stage=stage,
                # Whole days past the limit, as the stuck rule counts them.
                opened_at__lte=now - timedelta(days=limit + 1),
            )
            .annotate(
                total=Count("items"), unchecked=Count("items", filter=Q(items__checked=False))
            )
            .values_list("initiative_id", "opened_at", "total", "unchecked")
        )
        for initiative_id, opened_at, total, unchecked in reviews:
            gate = Transition(NEXT_GATE[stage]).label
            days = (now - opened_at).days
            waiting = (
                f"{unchecked} of {total} checklist items unchecked"
                if unchecked
                else "every item checked, the decision not taken"
            )
            result[initiative_id] = Finding(
                f"{gate} waits on a readiness review open {days} days (limit {limit}): {waiting}.",
                opened_at,
            )
    return result


def _insert_new(flags: list[PurgatoryFlag]) -> list[tuple[int, int, str]]:
    """Insert the flags, skipping any that a concurrent run raised first; returns (id,
    initiative id, kind) of those inserted. INSERT ... ON CONFLICT DO NOTHING RETURNING
    (PostgreSQL, and SQLite from 3.35) answers with the inserted rows only, which
    bulk_create(ignore_conflicts=True) does not report."""
    fields = [f for f in PurgatoryFlag._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(PurgatoryFlag._meta.db_table)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    inserted = []
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
                "ON CONFLICT DO NOTHING RETURNING id, initiative_id, kind",
                params,
            )
            inserted += cursor.fetchall()
    return inserted


def sync_flags(*, now: datetime | None = None) -> dict[str, int]:
    """Store what `findings` found. Returns counts of raised, updated and cleared flags; a
    flag is updated when its reason or the start of its problem changed."""
    now = now or timezone.now()
    wanted = findings(now=now)
    raised = updated = cleared = 0
    with transaction.atomic():
        active = {
            (f.initiative_id, f.kind): f
            for f in PurgatoryFlag.objects.select_for_update().filter(cleared_at__isnull=True)
        }
        new = []
        for initiative_id, kinds in wanted.items():
            for kind, (reason, since) in kinds.items():
                flag = active.pop((initiative_id, kind), None)
                if flag is None:
                    new.append(
                        PurgatoryFlag(
                            initiative_id=initiative_id,
                            kind=kind,
                            reason=reason,
                            raised_at=now,
                            since=since,
                        )
                    )
                elif flag.reason != reason or flag.since != since:
                    PurgatoryFlag.objects.filter(pk=flag.pk).update(reason=reason, since=since)
                    updated += 1
        # A second run at the same moment may have raised the same flag: keep the first,
        # and count only the flags this run inserted.
        inserted = _insert_new(new)
        raised = len(inserted)
        reasons = {(f.initiative_id, f.kind): f.reason for f in new}
        said = [
            _flag_event("flag_raised", pk, initiative_id, kind, reasons[initiative_id, kind], now)
            for pk, initiative_id, kind in inserted
        ]
        if active:
            cleared = PurgatoryFlag.objects.filter(pk__in=[f.pk for f in active.values()]).update(
                cleared_at=now
            )
            said += [
                _flag_event("flag_cleared", f.pk, f.initiative_id, f.kind, f.reason, now)
                for f in active.values()
            ]
        events.emit(*said)
        if raised or updated or cleared:
            # A flag reworded or redated keeps its id: the dashboard's sections learn of it
            # here, with the flags, rather than from the flag rows.
            versions.changed(Source.FLAGS)
    log.info("purgatory flags: %s raised, %s updated, %s cleared", raised, updated, cleared)
    return {"raised": raised, "updated": updated, "cleared": cleared}


def _flag_event(kind: str, pk: int, initiative_id: int, flag_kind: str, reason: str, at):
    return events.Event(
        kind=kind,
        key=f"flag:{pk}:{'raised' if kind == 'flag_raised' else 'cleared'}",
        at=at,
        initiative_id=initiative_id,
        data={
            "flag": pk,
            "flag_kind": flag_kind,
            "label": FlagKind(flag_kind).label,
            "reason": reason,
        },
    )
