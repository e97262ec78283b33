"""Celery task of the metrics app: a trigger, safe to run twice or not at all.

The periodic work (the sweep of the recompute queue, the hourly recompute, stale feeds) is
registered with the jobs app in MetricsConfig.ready and runs on the tick.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from jobs import publish
from metrics import recompute_queue

log = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    # Only a lost database connection is worth retrying; anything else is a bug to see.
    # Whatever the retries do not finish, the sweep does: the marks stay in the database.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def recompute_metrics(metric_ids: list[int]) -> int:
    """Recompute those of these metrics still marked; queue again those changed meanwhile."""
    count, changed = recompute_queue.recompute_marked(metric_ids)
    if changed:
        publish.send(
            recompute_metrics, args=[changed], countdown=settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS
        )
    log.info("recomputed %s metrics; %s changed meanwhile", count, len(changed))
    return count
