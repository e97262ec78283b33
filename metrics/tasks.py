"""Celery tasks: thin wrappers around metrics.status, safe to run twice."""

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from metrics import services, status

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
    # Release first: a delivery arriving while this runs queues a recompute of its own.
    services.release_debounce(metric_ids)
    count = status.recompute(metric_ids=metric_ids)
    log.info("recomputed %s metrics", count)
    return count


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
