"""Writes of the metrics app: feeds' life cycle and tokens, ingestion, scheduling recomputes.

Every change to a feed takes the initiative's row lock first (gates.locks), so gate
decisions never read a feed that changes under them, and is recorded as a FeedEvent sealed
in the initiative's audit chain in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from gates import audit, clock, effects
from gates.locks import lock_initiative
from gates.stages import Transition
from jobs import publish
from metrics import ingest, recompute_queue
from metrics.models import (
    DataFeed,
    DeliverySource,
    FeedAction,
    FeedEvent,
    FeedStatus,
)
from portfolio.permissions import may_manage_feeds

log = logging.getLogger(__name__)

TOKEN_PREFIX = "gf_"  # noqa: S105 - a visible prefix, not a secret
# What a retired feed's token_hash becomes: random, so the unique constraint holds, and not
# hexadecimal, so that no token's SHA-256 digest can ever equal it.
REVOKED_PREFIX = "revoked-"
MAX_REASON = 500
NOT_ALLOWED = "Only programme managers and this initiative's owners manage feeds."


class FeedStateError(ValidationError):
    """The feed's status does not allow the change (e.g. resuming a retired feed)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, str, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token), token[:10]


def _revoked_hash() -> str:
    return REVOKED_PREFIX + secrets.token_hex(28)


def _allowed(initiative, user) -> None:
    if not may_manage_feeds(initiative, user):
        raise PermissionDenied(NOT_ALLOWED)


def clean_reason(reason: str | None, *, required: bool = True) -> str:
    """The reason stripped; ValidationError when it is blank (and required), too long or
    holds a NUL (which PostgreSQL cannot store)."""
    reason = (reason or "").strip()
    if required and not reason:
        raise ValidationError({"reason": "Say why: the reason is kept with the feed's history."})
    if len(reason) > MAX_REASON:
        raise ValidationError({"reason": f"Keep the reason to {MAX_REASON} characters."})
    if "\x00" in reason:
        raise ValidationError({"reason": "The reason holds a NUL character."})
    return reason


def _record(feed: DataFeed, *, action: str, user, at: datetime, reason: str = "") -> FeedEvent:
    """Append the feed's event and seal it in the audit chain (inside the caller's lock)."""
    event = FeedEvent.objects.create(feed=feed, action=action, by=user, at=at, reason=reason)
    what = {
        FeedAction.CREATED: f"Registered the {feed.get_kind_display().lower()} “{feed.name}”",
        FeedAction.ROTATED: f"Rotated the token of the feed “{feed.name}”",
        FeedAction.PAUSED: f"Paused the feed “{feed.name}”",
        FeedAction.RESUMED: f"Resumed the feed “{feed.name}”",
        FeedAction.RETIRED: f"Retired the feed “{feed.name}” and revoked its token",
    }[action]
    audit.record(
        initiative_id=feed.initiative_id,
        kind="feed_event",
        actor=user,
        at=at,
        summary=f"{what}: {reason}" if reason else f"{what}.",
        obj=event,
    )
    return event


@clock.accepts_now
def create_feed(*, initiative, user, name: str, kind: str, owner, freshness_hours: int):
    """Create a feed; returns (feed, token). The token is shown once and never stored."""
    _allowed(initiative, user)
    token, digest, hint = _new_token()
    with transaction.atomic():
        _allowed(lock_initiative(initiative.pk), user)
        # Checked under the lock: two people registering the same name at once get a field
        # error, not a unique-constraint failure.
        if DataFeed.objects.filter(initiative=initiative, name__iexact=name.strip()).exists():
            raise ValidationError({"name": "This initiative already has a feed of that name."})
        now = clock.now()
        feed = DataFeed.objects.create(
            initiative=initiative,
            name=name,
            kind=kind,
            owner=owner,
            freshness_hours=freshness_hours,
            token_hash=digest,
            token_hint=hint,
            token_rotated_at=now,
        )
        _record(feed, action=FeedAction.CREATED, user=user, at=now)
    return feed, token


@clock.accepts_now
def rotate_token(*, feed: DataFeed, user, reason: str = "") -> str:
    """Give the feed a new token; the old one stops working at once. Not for a retired feed,
    whose token is revoked for good (FeedStateError)."""
    _allowed(feed.initiative, user)
    reason = clean_reason(reason, required=False)
    token, digest, hint = _new_token()
    with transaction.atomic():
        _allowed(lock_initiative(feed.initiative_id), user)
        current = DataFeed.objects.get(pk=feed.pk)
        if current.status == FeedStatus.RETIRED:
            raise FeedStateError(
                f"“{current.name}” is retired: its token is revoked for good and cannot be "
                "replaced. Register a new feed instead."
            )
        now = clock.now()
        DataFeed.objects.filter(pk=feed.pk).update(
            token_hash=digest, token_hint=hint, token_rotated_at=now
        )
        _record(current, action=FeedAction.ROTATED, user=user, at=now, reason=reason)
    feed.token_hash, feed.token_hint, feed.token_rotated_at = digest, hint, now
    return token


# The life cycle: which status each action leaves from, and where it leads.
_MOVES = {
    FeedAction.PAUSED: ({FeedStatus.ACTIVE}, FeedStatus.PAUSED),
    FeedAction.RESUMED: ({FeedStatus.PAUSED}, FeedStatus.ACTIVE),
    FeedAction.RETIRED: ({FeedStatus.ACTIVE, FeedStatus.PAUSED}, FeedStatus.RETIRED),
}


def _refused(feed: DataFeed, action: str) -> str:
    if feed.status == FeedStatus.RETIRED:
        return f"“{feed.name}” is retired, which is final: it cannot be paused or resumed again."
    if action == FeedAction.PAUSED:
        return f"“{feed.name}” is already paused."
    return f"“{feed.name}” is active, not paused."


def _move(feed: DataFeed, *, action: str, user, reason: str, at=None, check=True) -> FeedEvent:
    sources, target = _MOVES[action]
    with transaction.atomic():
        initiative = lock_initiative(feed.initiative_id)
        if check:
            _allowed(initiative, user)
        # Read under the lock: two people pausing at once, or a pause racing a retirement,
        # see each other's result instead of both writing.
        current = DataFeed.objects.get(pk=feed.pk)
        if current.status not in sources:
            raise FeedStateError(_refused(current, action))
        event = _record(current, action=action, user=user, at=at or clock.now(), reason=reason)
        # A feed that is not expected to deliver is not stale; a resumed one gets a full
        # window before the stale check may flag it.
        changes = {"status": target, "status_event": event, "is_stale": False}
        if target == FeedStatus.RETIRED:
            changes.update(token_hash=_revoked_hash(), token_hint="")
        DataFeed.objects.filter(pk=feed.pk).update(**changes)
    for name, value in changes.items():
        setattr(feed, name, value)
    log.info("feed %s %s by %s", feed.pk, action, getattr(user, "pk", user))
    return event


@clock.accepts_now
def pause_feed(*, feed: DataFeed, user, reason: str) -> FeedEvent:
    """Pause an active feed: its token is refused (409) and its uploads too until resumed."""
    _allowed(feed.initiative, user)
    return _move(feed, action=FeedAction.PAUSED, user=user, reason=clean_reason(reason))


@clock.accepts_now
def resume_feed(*, feed: DataFeed, user, reason: str) -> FeedEvent:
    """Resume a paused feed; a retired one cannot be (FeedStateError)."""
    _allowed(feed.initiative, user)
    return _move(feed, action=FeedAction.RESUMED, user=user, reason=clean_reason(reason))


@clock.accepts_now
def retire_feed(*, feed: DataFeed, user, reason: str) -> FeedEvent:
    """Retire an active or paused feed for good; its token is revoked at once."""
    _allowed(feed.initiative, user)
    return _move(feed, action=FeedAction.RETIRED, user=user, reason=clean_reason(reason))


@effects.on(Transition.REFRAME)
def recompute_after_reframe(initiative, decision) -> None:
    """A new success definition: the primary metric's status is recomputed against it once
    the reframe commits (gate 4 waits for that snapshot)."""
    schedule_recompute(initiative.metrics.filter(is_primary=True).values_list("pk", flat=True))


@effects.on(Transition.STOP)
def pause_feeds_of_stopped_initiative(initiative, decision) -> None:
    """Stopping an initiative pauses its active feeds, in the decision's transaction, in the
    decider's name. Reopening resumes none of them: that is a person's decision."""
    reason = f"Initiative stopped: {decision.rationale}"
    for feed in DataFeed.objects.filter(initiative_id=initiative.pk, status=FeedStatus.ACTIVE):
        _move(
            feed,
            action=FeedAction.PAUSED,
            user=decision.decided_by,
            reason=reason,
            at=decision.decided_at,
            check=False,
        )


def authenticate_feed(feed_id: int, authorization: str) -> DataFeed | None:
    """The feed if `authorization` is "Bearer <its token>", else None (a retired feed's
    token is revoked, so it never authenticates)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    feed = DataFeed.objects.select_related("initiative").filter(pk=feed_id).first()
    # Compare digests in constant time; an unknown feed costs the same hash.
    digest = hash_token(token.strip())
    if feed is None or not hmac.compare_digest(digest, feed.token_hash):
        return None
    if feed.status == FeedStatus.RETIRED:
        return None
    return feed


@clock.accepts_now
def store_delivery(
    *,
    feed: DataFeed,
    batch: ingest.Batch,
    source: str = DeliverySource.API,
    uploaded_by=None,
    schedule: bool = True,
) -> ingest.Stored:
    """Store a validated batch and schedule the recompute of the metrics it touched.

    `schedule=False` leaves the recompute to the caller: a replay of past deliveries runs the
    periodic jobs itself, at the moments they ran. Raises ingest.FeedNotActive (nothing
    stored) when the feed is paused or retired.
    """
    # One transaction: the metrics are marked for their recompute with the data that
    # changed them, or neither is written.
    with transaction.atomic():
        stored = ingest.store(feed, batch.rows, source=source, uploaded_by=uploaded_by)
        if schedule and stored.created:
            schedule_recompute(stored.metric_ids)
    log.info(
        "feed %s delivered %s observations by %s: %s new (%s fresh), %s duplicate",
        feed.pk,
        len(batch.rows),
        source,
        stored.created,
        stored.fresh,
        stored.duplicates,
    )
    return stored


def schedule_recompute(metric_ids: Iterable[int]) -> None:
    """Mark these metrics for a recompute in the current transaction, and ask a worker to
    run it shortly after the transaction commits.

    The mark is what counts: if the broker is down or the task is lost, the next tick's sweep
    recomputes the metric. A metric already marked is not queued again, so a burst of
    batches costs one recompute per metric. The task is handed to a background thread, so a
    slow or hung broker never holds up the delivery.
    """
    fresh = recompute_queue.mark(metric_ids)
    if not fresh:
        return

    def enqueue() -> None:
        from metrics.tasks import recompute_metrics

        publish.send(
            recompute_metrics, args=[fresh], countdown=settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS
        )

    transaction.on_commit(enqueue)
