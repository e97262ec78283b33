"""The durable queue of recomputes: marks in the database, claimed by whoever recomputes.

A change to a metric's data marks the metric in the same transaction (`mark`). A recompute
claims marks (`claim`), computes, and clears each mark only if no change came in meanwhile
(`finish`). Celery tasks only say "look now": the sweep, a periodic job run on every tick,
claims whatever is marked, so a lost task, a killed worker or a broker outage delays a
recompute and never loses it. A metric already marked is not queued again: the debounce
lives here.

On PostgreSQL a claim is a session-level advisory lock per metric, held by the claiming
database connection: another worker skips it, and it is gone the moment that connection is
(a worker process killed mid-recompute, a database restart), so a dead holder frees its
metrics at once instead of after a lease. Deliveries never wait on a claim: they write the
mark's row, which no recompute locks. Elsewhere (SQLite, one process) claims are not needed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import connection
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


# The advisory-lock key of a metric: its id in a key space of its own (ids below 2**48).
LOCK_SPACE = 0x4D52 << 48


def claim(
    metric_ids: Iterable[int] | None = None, *, limit: int = CLAIM_LIMIT, settled: bool = False
) -> dict:
    """Claim marked metrics nobody else is computing: {metric id: the token claimed}. The
    claim lasts until `finish` or `release`, or until this database connection ends.

    `settled` leaves out marks younger than the debounce: their own task is still due, and
    taking them early would split a burst of deliveries into several recomputes.
    """
    marks = RecomputeMark.objects.all()
    if metric_ids is not None:
        marks = marks.filter(metric_id__in=sorted(set(metric_ids)))
    if settled:
        debounce = timedelta(seconds=settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS)
        marks = marks.filter(dirty_since__lte=clock.now() - debounce)
    held: list[int] = []
    after = 0
    while len(held) < limit:  # past the marks other workers hold, up to `limit` of ours
        ids = list(
            marks.filter(metric_id__gt=after)
            .order_by("metric_id")
            .values_list("metric", flat=True)[: limit - len(held)]
        )
        if not ids:
            break
        held += _lock(ids)
        after = ids[-1]
    # The tokens are read once the locks are held: a change committed after this read
    # leaves a new token, and so a mark that `finish` keeps.
    claimed = dict(RecomputeMark.objects.filter(metric_id__in=held).values_list("metric", "token"))
    _unlock(set(held) - set(claimed))  # recomputed by someone else meanwhile
    return claimed


def finish(claimed: dict) -> list[int]:
    """Clear the claimed marks no change has touched since and give up the claims. Returns
    the metrics still marked (changed while they were computed)."""
    if not claimed:
        return []
    unchanged = Q()
    for pk, token in claimed.items():
        unchanged |= Q(metric_id=pk, token=token)
    try:
        RecomputeMark.objects.filter(unchanged).delete()
        return sorted(
            RecomputeMark.objects.filter(metric_id__in=claimed).values_list("metric", flat=True)
        )
    finally:
        release(claimed)


def release(claimed: Iterable[int]) -> None:
    """Give up the claims (best effort: a connection that is gone holds none anyway)."""
    try:
        _unlock(list(claimed))
    except Exception:
        log.warning("could not give up recompute claims of %s", sorted(claimed))


def _lock(ids: list[int]) -> list[int]:
    """The ids whose advisory lock this connection took; the others are held elsewhere."""
    if not ids or connection.vendor != "postgresql":
        return ids
    with connection.cursor() as cursor:
        # Evaluated once per id, with no LIMIT: no lock is taken for a row not returned. The
        # lock is re-entrant, so one this connection holds already counts as taken elsewhere
        # (CASE fixes the order: the check runs before the lock is tried).
        cursor.execute(
            """
            SELECT id FROM unnest(%(ids)s::bigint[]) AS id
            WHERE CASE
                WHEN %(space)s + id IN (
                    SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
                    WHERE locktype = 'advisory' AND objsubid = 1 AND pid = pg_backend_pid()
                ) THEN false
                ELSE pg_try_advisory_lock(%(space)s + id)
            END
            """,
            {"ids": ids, "space": LOCK_SPACE},
        )
        return [row[0] for row in cursor.fetchall()]


def _unlock(ids: Iterable[int]) -> None:
    ids = list(ids)
    if not ids or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_unlock(%(space)s + id) FROM unnest(%(ids)s::bigint[]) AS id",
            {"ids": ids, "space": LOCK_SPACE},
        )


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
        release(claimed)  # the marks stay for the next run
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
