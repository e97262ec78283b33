"""Celery tasks: thin wrappers around metrics.status, safe to run twice."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from metrics import recompute_queue, status

log = logging.getLogger(__name__)

RETRY = {
    "acks_late": True,
    # Only a lost database connection is worth retrying; anything else is a bug to see.
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(**RETRY)
def recompute_metrics(metric_ids: list[int]) -> int:
    """Recompute those of these metrics still marked; queue again those changed meanwhile."""
    count, changed = recompute_queue.recompute_marked(metric_ids)
    if changed:
        recompute_metrics.apply_async(
            args=[changed], countdown=settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS
        )
    log.info("recomputed %s metrics; %s changed meanwhile", count, len(changed))
    return count


@shared_task(**RETRY)
def sweep_recompute() -> int:
    """Every minute: whatever is marked and unclaimed, whether or not its task arrived."""
    total = 0
    while True:
        count, _ = recompute_queue.recompute_marked()
        total += count
        if count < recompute_queue.CLAIM_LIMIT:
            break
    if total:
        log.info("sweep recomputed %s marked metrics", total)
    return total


@shared_task(**RETRY)
def recompute_all_metrics() -> int:
    count = status.recompute()
    log.info("recomputed all %s metrics", count)
    return count


@shared_task(**RETRY)
def mark_stale_feeds() -> list[int]:
    stale, fresh = status.mark_stale_feeds()
    log.info("feeds: %s newly stale, %s fresh again", stale, fresh)
    return [stale, fresh]
