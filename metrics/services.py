"""Writes of the metrics app: feeds and their tokens, ingestion, scheduling recomputes."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from gates.permissions import may_manage_feeds
from metrics import ingest as ingestion
from metrics.models import DataFeed

log = logging.getLogger(__name__)

TOKEN_PREFIX = "gf_"  # noqa: S105 - a visible prefix, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, str, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token), token[:10]


def create_feed(*, initiative, user, name: str, kind: str, owner, freshness_hours: int):
    """Create a feed; returns (feed, token). The token is shown once and never stored."""
    if not may_manage_feeds(initiative, user):
        raise PermissionDenied("Only programme managers and this initiative's owners manage feeds.")
    token, digest, hint = _new_token()
    feed = DataFeed.objects.create(
        initiative=initiative,
        name=name,
        kind=kind,
        owner=owner,
        freshness_hours=freshness_hours,
        token_hash=digest,
        token_hint=hint,
        token_rotated_at=timezone.now(),
    )
    return feed, token


def rotate_token(*, feed: DataFeed, user) -> str:
    """Give the feed a new token; the old one stops working at once."""
    if not may_manage_feeds(feed.initiative, user):
        raise PermissionDenied("Only programme managers and this initiative's owners manage feeds.")
    token, digest, hint = _new_token()
    feed.token_hash, feed.token_hint, feed.token_rotated_at = digest, hint, timezone.now()
    feed.save(update_fields=["token_hash", "token_hint", "token_rotated_at"])
    return token


def authenticate_feed(feed_id: int, authorization: str) -> DataFeed | None:
    """The feed if `authorization` is "Bearer <its token>", else None."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    feed = DataFeed.objects.select_related("initiative").filter(pk=feed_id).first()
    # Compare digests in constant time; an unknown feed costs the same hash.
    digest = hash_token(token.strip())
    if feed is None or not hmac.compare_digest(digest, feed.token_hash):
        return None
    return feed


def ingest(*, feed: DataFeed, batch: ingestion.Batch) -> ingestion.Stored:
    """Store a validated batch and schedule the recompute of the metrics it touched."""
    stored = ingestion.store(feed, batch.rows)
    schedule_recompute(stored.metric_ids)
    log.info(
        "feed %s delivered %s observations: %s new, %s duplicate",
        feed.pk,
        len(batch.rows),
        stored.created,
        stored.duplicates,
    )
    return stored


def schedule_recompute(metric_ids: Iterable[int]) -> None:
    """Recompute these metrics shortly after the current transaction commits.

    Debounced: a metric already waiting for a recompute is not queued again, so a burst of
    batches costs one recompute per metric. If the cache or broker is down the work is left
    to the periodic recompute rather than failing the delivery.
    """
    ids = sorted(set(metric_ids))
    if not ids:
        return

    def enqueue() -> None:
        from metrics.tasks import recompute_metrics

        delay = settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS
        try:
            fresh = [pk for pk in ids if cache.add(_debounce_key(pk), 1, timeout=delay + 60)]
            if fresh:
                recompute_metrics.apply_async(args=[fresh], countdown=delay)
        except Exception:  # a missing cache or broker must not lose the delivery
            log.warning("could not queue recompute of metrics %s; beat will catch up", ids)

    transaction.on_commit(enqueue)


def release_debounce(metric_ids: Iterable[int]) -> None:
    cache.delete_many([_debounce_key(pk) for pk in metric_ids])


def _debounce_key(metric_id: int) -> str:
    return f"gantry:recompute:{metric_id}"
