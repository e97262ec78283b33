"""The durable queue of recomputes: marks in the database, claimed by whoever recomputes.

A change to a metric's data marks the metric in the same transaction (`mark`). A recompute
claims marks (`claim`: a row lock skipping those another worker holds, and a lease that a
dead worker's claim runs out of), computes, and clears each mark only if no change came in
meanwhile (`finish`). Celery tasks only say "look now": the sweep, a periodic job run on
every tick, claims whatever is marked, so a lost task, a killed worker or a broker outage
delays a recompute and never loses it. A metric already marked is not queued again: the
debounce lives here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from gates import clock
from metrics import status
from metrics.models import RecomputeMark

log = logging.getLogger(__name__)

# How many marks one run claims: the sweep works through a backlog in runs of this size.
CLAIM_LIMIT = 2000


def mark(metric_ids: Iterable[int]) -> list[int]:
    """Mark the metrics as behind their data, in the caller's transaction. Returns those that
    were not marked yet: only they need a task to be queued."""
    ids = sorted(set(metric_ids))  # one lock order for every writer: no deadlock
    if not ids:
        return []
    already = set(RecomputeMark.objects.filter(metric_id__in=ids).values_list("metric", flat=True))
    RecomputeMark.objects.bulk_create(
        [RecomputeMark(metric_id=pk, dirty_since=clock.now(), token=uuid.uuid4()) for pk in ids],
        update_conflicts=True,
        unique_fields=["metric"],
        update_fields=["token"],  # dirty_since stays the oldest change's
    )
    return [pk for pk in ids if pk not in already]


def claim(
    metric_ids: Iterable[int] | None = None, *, limit: int = CLAIM_LIMIT, settled: bool = False
) -> dict:
    """Claim marked metrics nobody holds (or whose holder's lease ran out): {metric id: the
    token claimed}. Committed before returning, so other workers see the claim.

    `settled` leaves out marks younger than the debounce: their own task is still due, and
    taking them early would split a burst of deliveries into several recomputes.
    """
    now = clock.now()
    lease = timedelta(seconds=settings.GANTRY_RECOMPUTE_LEASE_SECONDS)
    free = RecomputeMark.objects.filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - lease))
    if metric_ids is not None:
        free = free.filter(metric_id__in=sorted(set(metric_ids)))
    if settled:
        debounce = timedelta(seconds=settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS)
        free = free.filter(dirty_since__lte=now - debounce)
    with transaction.atomic():
        claimed = dict(
            free.select_for_update(skip_locked=True)
            .order_by("metric_id")
            .values_list("metric", "token")[:limit]
        )
        if claimed:
            RecomputeMark.objects.filter(metric_id__in=claimed).update(claimed_at=now)
    return claimed


def finish(claimed: dict) -> list[int]:
    """Clear the claimed marks no change has touched since; release the others. Returns the
    metrics still marked (changed while they were computed)."""
    if not claimed:
        return []
    unchanged = Q()
    for pk, token in claimed.items():
        unchanged |= Q(metric_id=pk, token=token)
    with transaction.atomic():
        RecomputeMark.objects.filter(unchanged).delete()
        pending = RecomputeMark.objects.filter(metric_id__in=claimed)
        left = sorted(pending.values_list("metric", flat=True))
        pending.update(claimed_at=None)
    return left


def release(claimed: dict) -> None:
    RecomputeMark.objects.filter(metric_id__in=claimed).update(claimed_at=None)


def recompute_marked(
    metric_ids: Iterable[int] | None = None, *, settled: bool = False
) -> tuple[int, list[int]]:
    """Recompute the marked metrics among `metric_ids` (all marked ones when None) that no
    one else is computing. Returns (snapshots written, metrics changed meanwhile)."""
    claimed = claim(metric_ids, settled=settled)
    if not claimed:
        return 0, []
    try:
        count = status.recompute(metric_ids=list(claimed))
    except Exception:
        # Give the marks back for the next run; if even that fails, the lease runs out.
        try:
            release(claimed)
        except Exception:
            log.warning("could not release recompute claims of %s", sorted(claimed))
        raise
    return count, finish(claimed)


def sweep() -> int:
    """The periodic job: recompute every settled mark, whether or not its task arrived.
    Returns how many metrics it recomputed."""
    total = 0
    while True:
        count, _ = recompute_marked(settled=True)
        total += count
        if count < CLAIM_LIMIT:
            return total
