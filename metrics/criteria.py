"""Gate criteria measured from data: gate 2's live, fresh feed and gate 4's numbers.

Registered into gates.criteria's registry when the metrics app is ready. Their `order` puts
them among the gates' own: gate 2's before logging and security (30, 40), gate 4's after the
comparison window (10) and before readiness' open work items (40).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils.timesince import timesince

from gates import clock
from gates.criteria import Result, registry
from gates.stages import Transition as T
from metrics.models import Delivery, DeliverySource, FeedKind, Observation, Verdict
from metrics.status import confidence_text, fmt, lift_text


def _live_feeds_with_owner(initiative) -> list:
    """Active live feeds with a named owner: the only feeds gate 2 counts."""
    return [
        f for f in initiative.feeds.all() if f.kind == FeedKind.LIVE and f.owner_id and f.is_active
    ]


@registry.register(
    T.SUBMIT_FOR_REVIEW, key="live_feed", label="Live data feed with an owner", order=10
)
def live_feed(initiative) -> Result:
    feeds = list(initiative.feeds.all())
    owned = _live_feeds_with_owner(initiative)
    if owned:
        names = ", ".join(f"“{f.name}” (owner {f.owner})" for f in owned)
        return Result(True, f"Live feed: {names}.")
    live = [f for f in feeds if f.kind == FeedKind.LIVE]
    if any(f.is_active for f in live):
        return Result(False, "The live feed has no named owner.")
    if live:
        halted = "; ".join(f"“{f.name}” is {f.status_sentence()}" for f in live)
        return Result(False, f"No live feed is active: {halted}.")
    if feeds:
        return Result(False, "Only one-off extracts are registered; the pilot needs a live feed.")
    return Result(False, "No data feed is registered.")


@registry.register(
    T.SUBMIT_FOR_REVIEW, key="fresh_data", label="Fresh data of the primary metric", order=20
)
def fresh_data(initiative) -> Result:
    """Fresh from data, not arrival: an active live feed with an owner whose API delivery,
    within its freshness window, brought primary-metric observations Gantry did not hold,
    observed within that window. Duplicates, back-dated rows and CSV uploads never count."""
    metric = initiative.primary_metric
    if metric is None:
        return Result(False, "No primary metric, so no data of it can be fresh.")
    feeds = {f.pk: f for f in _live_feeds_with_owner(initiative)}
    if not feeds:
        return Result(False, "No active live feed with an owner delivers data.")
    now = clock.now()
    # From the delivery times themselves, not the beat job's is_stale flag: that flag is
    # written without the initiative's lock, and says nothing the times do not.
    fresh = [
        f for f in feeds.values() if f.last_fresh_at and now - f.last_fresh_at <= f.freshness_window
    ]
    if fresh:
        carried = _fresh_deliveries_of(metric, fresh, now)
        if carried:
            feed_id = max(carried, key=carried.get)
            feed = feeds[feed_id]
            return Result(
                True,
                f"“{feed.name}” delivered fresh {metric.name} data "
                f"{timesince(carried[feed_id], now)} ago (window {feed.freshness_hours} h).",
            )
        names = ", ".join(f"“{f.name}”" for f in fresh)
        return Result(False, f"{names} delivered fresh data, but none of {metric.name}.")
    newest = max(feeds.values(), key=lambda f: (f.last_fresh_at is not None, f.last_fresh_at))
    last = max((f.last_delivery_at for f in feeds.values() if f.last_delivery_at), default=None)
    nothing_new = (
        f"; the last delivery, {timesince(last, now)} ago, brought no new observations from "
        "inside the freshness window"
        if last and (newest.last_fresh_at is None or last > newest.last_fresh_at)
        else ""
    )
    if newest.last_fresh_at is None:
        return Result(False, f"No live feed has delivered fresh data yet{nothing_new}.")
    return Result(
        False,
        f"No live data feed has delivered fresh {metric.name} data in the last "
        f"{newest.freshness_hours} h; the last fresh data came "
        f"{timesince(newest.last_fresh_at, now)} ago{nothing_new}.",
    )


def _fresh_deliveries_of(metric, feeds: list, now: datetime) -> dict[int, datetime]:
    """{feed id: its newest API delivery inside its window that brought new observations of
    `metric` observed inside the window of that delivery}, in one query.

    An observation's ingested_at is the time of the delivery that first stored it (re-sent
    rows are not stored again), so it joins the Delivery row that brought it.
    """
    by_window: dict[int, list[int]] = {}
    for feed in feeds:
        by_window.setdefault(feed.freshness_hours, []).append(feed.pk)
    in_window = Q()
    for hours, ids in by_window.items():
        window = timedelta(hours=hours)
        in_window |= Q(
            feed_id__in=ids,
            ingested_at__gt=now - window,
            observed_at__gt=F("ingested_at") - window,
        )
    by_api = Delivery.objects.filter(
        feed_id=OuterRef("feed_id"), at=OuterRef("ingested_at"), source=DeliverySource.API
    )
    return dict(
        Observation.objects.filter(in_window, Exists(by_api), metric=metric)
        .values("feed_id")
        .annotate(last=Max("ingested_at"))
        .order_by()
        .values_list("feed_id", "last")
    )


def _day(moment) -> str:
    return f"{moment.day} {moment:%b %Y}"


def _definition_in_force(initiative):
    """The decision that put the success definition in force: the newest reframe, else the
    approval of the framing (gate 1). None for an initiative whose history predates Gantry."""
    return (
        initiative.decisions.filter(transition__in=[T.APPROVE_FRAME, T.REFRAME])
        .order_by("-decided_at", "-id")
        .first()
    )


def _judged_snapshot(initiative, noun: str, subject: str):
    """(metric, snapshot, anchor, refusal): the primary metric's latest snapshot if gate 4 may
    judge on it, else a failing Result saying why.

    A snapshot counts only when it was computed during this narrow launch, after the latest
    reframe, and against the definition in force now (a recompute that read the metric just
    before a reframe committed is not judged on the new threshold).
    """
    metric = initiative.primary_metric
    snapshot = metric.latest_snapshot if metric is not None else None
    anchor = None
    if metric is None:
        refusal = Result(False, "No primary metric is defined.")
    elif snapshot is None:
        refusal = Result(False, f"No {noun} of {metric.name} has been computed yet.")
    elif snapshot.computed_at < initiative.stage_entered_at:
        # A status from before this launch (thin slice, or a launch since rolled back) says
        # nothing about the narrow launch the gate is judging.
        refusal = Result(False, f"{subject} predates the narrow launch; awaiting a recompute.")
    else:
        anchor = _definition_in_force(initiative)
        reframed = anchor is not None and anchor.transition == T.REFRAME
        if (reframed and snapshot.computed_at < anchor.decided_at) or not snapshot.judged_on(
            metric
        ):
            since = f" of {_day(anchor.decided_at)}" if reframed else ""
            refusal = Result(
                False,
                f"{subject} predates the reframe{since}; awaiting a recompute against the "
                "new definition.",
            )
        else:
            refusal = None
    return metric, snapshot, anchor, refusal


@registry.register(
    T.WIDEN, key="pilot_meets_threshold", label="Pilot meets the ship threshold", order=20
)
def pilot_meets_threshold(initiative) -> Result:
    """Judged on a snapshot computed against the success definition in force now. The
    sentence says which threshold it judged against and since when."""
    metric = initiative.primary_metric
    if metric is not None and metric.ship_threshold is None:
        return Result(False, f"{metric.name} has no ship threshold.")
    metric, snapshot, anchor, refusal = _judged_snapshot(
        initiative, "status", "The metric's status"
    )
    if refusal is not None:
        return refusal
    since = ""
    if anchor is not None:
        how = "reframe" if anchor.transition == T.REFRAME else "gate 1"
        since = (
            f" (threshold {fmt(float(metric.ship_threshold))} in force since "
            f"{_day(anchor.decided_at)}, {how})"
        )
    if snapshot.verdict == Verdict.MEETING:
        return Result(True, f"{metric.name}: {snapshot.summary}{since}.")
    return Result(
        False,
        f"{metric.name}: {snapshot.get_verdict_display().lower()} — {snapshot.summary}{since}",
    )


@registry.register(T.WIDEN, key="pilot_beats_baseline", label="Pilot beats the baseline", order=30)
def pilot_beats_baseline(initiative) -> Result:
    metric, snapshot, _, refusal = _judged_snapshot(initiative, "comparison", "The comparison")
    if refusal is not None:
        return refusal
    needed = settings.GANTRY_GATE_CONFIDENCE
    if snapshot.confidence is None:
        return Result(
            False,
            f"Too few observations to compare: {snapshot.pilot_count} pilot, "
            f"{snapshot.baseline_count} baseline.",
        )
    # The lift beside the confidence is the lift of the means the test compared; a total's or
    # latest value's own lift is stated too, labelled, so the sentence never pairs a figure
    # with a confidence about another one.
    lifts = lift_text(snapshot.aggregation or metric.aggregation, snapshot.lift, snapshot.mean_lift)
    lift = f"{lifts}, " if lifts else ""
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


@registry.register(
    T.ROLL_BACK,
    key="numbers_no_longer_hold",
    label="Primary metric below its threshold",
    advisory=True,
    order=10,
)
def numbers_no_longer_hold(initiative) -> Result:
    """Whether the measured data supports stepping back: advisory, since a person may roll
    back for a reason the data does not show (the rationale says which)."""
    metric = initiative.primary_metric
    snapshot = metric.latest_snapshot if metric is not None else None
    if snapshot is None:
        return Result(False, "No status of the primary metric has been computed.")
    if snapshot.verdict == Verdict.BELOW:
        return Result(True, f"{metric.name} is below its ship threshold: {snapshot.summary}.")
    if snapshot.verdict == Verdict.MEETING:
        return Result(
            False,
            f"{metric.name} still meets its ship threshold ({snapshot.summary}); a roll back "
            "needs a reason of its own.",
        )
    return Result(
        False, f"{metric.name}: {snapshot.get_verdict_display().lower()} — {snapshot.summary}."
    )
