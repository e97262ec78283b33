"""Gate criteria measured from data: gate 2's live, fresh feed and gate 4's numbers.

Registered into gates.criteria's registry when the metrics app is ready, replacing the
"not available yet" placeholders under the same keys.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django.utils.timesince import timesince

from gates.criteria import Result, registry
from gates.stages import Transition as T
from metrics.models import FeedKind, Observation, Verdict
from metrics.status import confidence_text


def _live_feeds_with_owner(initiative) -> list:
    return [f for f in initiative.feeds.all() if f.kind == FeedKind.LIVE and f.owner_id]


@registry.register(T.SUBMIT_FOR_REVIEW, key="live_feed", label="Live data feed with an owner")
def live_feed(initiative) -> Result:
    feeds = list(initiative.feeds.all())
    owned = _live_feeds_with_owner(initiative)
    if owned:
        names = ", ".join(f"“{f.name}” (owner {f.owner})" for f in owned)
        return Result(True, f"Live feed: {names}.")
    if any(f.kind == FeedKind.LIVE for f in feeds):
        return Result(False, "The live feed has no named owner.")
    if feeds:
        return Result(False, "Only one-off extracts are registered; the pilot needs a live feed.")
    return Result(False, "No data feed is registered.")


@registry.register(T.SUBMIT_FOR_REVIEW, key="fresh_data", label="Fresh data of the primary metric")
def fresh_data(initiative) -> Result:
    metric = initiative.primary_metric
    if metric is None:
        return Result(False, "No primary metric, so no data of it can be fresh.")
    feeds = {f.pk: f for f in _live_feeds_with_owner(initiative)}
    if not feeds:
        return Result(False, "No live feed with an owner delivers data.")
    last = dict(
        Observation.objects.filter(metric=metric, feed_id__in=feeds)
        .values("feed_id")
        .annotate(last=Max("ingested_at"))
        .order_by()
        .values_list("feed_id", "last")
    )
    now = timezone.now()
    for feed_id, delivered in sorted(last.items(), key=lambda item: item[1], reverse=True):
        feed = feeds[feed_id]
        if now - delivered <= feed.freshness_window and not feed.is_stale:
            return Result(
                True,
                f"“{feed.name}” delivered {metric.name} data {timesince(delivered, now)} ago "
                f"(window {feed.freshness_hours} h).",
            )
    if not last:
        return Result(False, f"No live feed has delivered any {metric.name} data yet.")
    newest_feed = max(last, key=last.get)
    return Result(
        False,
        f"No live data feed has delivered {metric.name} data in the last "
        f"{feeds[newest_feed].freshness_hours} h; the last delivery was "
        f"{timesince(last[newest_feed], now)} ago.",
    )


def _snapshot(initiative):
    metric = initiative.primary_metric
    if metric is None:
        return None, None
    return metric, metric.latest_snapshot


@registry.register(T.WIDEN, key="pilot_meets_threshold", label="Pilot meets the ship threshold")
def pilot_meets_threshold(initiative) -> Result:
    metric, snapshot = _snapshot(initiative)
    if metric is None:
        return Result(False, "No primary metric is defined.")
    if snapshot is None:
        return Result(False, f"No status of {metric.name} has been computed yet.")
    if snapshot.computed_at < initiative.stage_entered_at:
        return Result(
            False, "The metric's status predates the narrow launch; awaiting a recompute."
        )
    if snapshot.verdict == Verdict.MEETING:
        return Result(True, f"{metric.name}: {snapshot.summary}.")
    return Result(
        False, f"{metric.name}: {snapshot.get_verdict_display().lower()} — {snapshot.summary}"
    )


@registry.register(T.WIDEN, key="pilot_beats_baseline", label="Pilot beats the baseline")
def pilot_beats_baseline(initiative) -> Result:
    metric, snapshot = _snapshot(initiative)
    if metric is None or snapshot is None:
        return Result(False, "No computed comparison of the pilot with the baseline yet.")
    if snapshot.computed_at < initiative.stage_entered_at:
        # A comparison from before this launch (thin slice, or a launch since rolled back)
        # says nothing about the narrow launch the gate is judging.
        return Result(False, "The comparison predates the narrow launch; awaiting a recompute.")
    needed = settings.GANTRY_GATE_CONFIDENCE
    if snapshot.confidence is None:
        return Result(
            False,
            f"Too few observations to compare: {snapshot.pilot_count} pilot, "
            f"{snapshot.baseline_count} baseline.",
        )
    lift = "" if snapshot.lift is None else f"{snapshot.lift:+.1%}, "
    if snapshot.confidence >= needed:
        return Result(
            True,
            f"The pilot beats the baseline: {lift}{confidence_text(snapshot.confidence)} "
            f"confidence (n = {snapshot.pilot_count} and {snapshot.baseline_count}).",
        )
    return Result(
        False,
        f"The pilot does not beat the baseline with {needed:.0%} confidence: {lift}"
        f"{confidence_text(snapshot.confidence)} (n = {snapshot.pilot_count} and "
        f"{snapshot.baseline_count}).",
    )
