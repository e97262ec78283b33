"""A metric's latest snapshot only moves forward: a recompute computed for an earlier moment
that commits after a later one does not point the metric back at its older snapshot.

Needs PostgreSQL: the two recomputes run at once on real connections.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from metrics import status
from metrics.models import Metric
from tests.factories import MetricFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _wait_for_waiters(count: int) -> None:
    deadline = time.monotonic() + 10
    while _waiting_on_locks() < count:
        assert time.monotonic() < deadline, f"{count} recompute(s) never queued on the lock"
        time.sleep(0.02)


def _in_thread(target, errors: list) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except Exception as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_the_older_recompute_committing_last_leaves_the_newer_snapshot(require_postgres):
    metric = MetricFactory()
    later = timezone.now().replace(microsecond=0)
    earlier = later - timedelta(minutes=5)
    errors: list = []
    held, release = threading.Event(), threading.Event()

    def hold_the_metric_row() -> None:
        # The lock an UPDATE of the row takes, not the one a snapshot's foreign key takes:
        # both recomputes write their snapshot, then queue on the row in a known order.
        with transaction.atomic():
            Metric.objects.select_for_update(no_key=True).get(pk=metric.pk)
            held.set()
            release.wait(timeout=20)

    threads = [_in_thread(hold_the_metric_row, errors)]
    assert held.wait(timeout=10)
    threads.append(_in_thread(lambda: status.recompute(metric_ids=[metric.pk], now=later), errors))
    _wait_for_waiters(1)
    threads.append(
        _in_thread(lambda: status.recompute(metric_ids=[metric.pk], now=earlier), errors)
    )
    _wait_for_waiters(2)
    release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    metric.refresh_from_db()
    assert metric.snapshots.count() == 2
    assert metric.latest_snapshot.computed_at == later
    assert metric.latest_verdict == metric.latest_snapshot.verdict


def test_concurrent_recomputes_of_many_metrics_end_on_the_newest(require_postgres):
    first = MetricFactory()
    metrics = [first, *(MetricFactory(initiative=first.initiative, is_primary=False) for _ in "ab")]
    ids = [m.pk for m in metrics]
    base = timezone.now().replace(microsecond=0)
    moments = [base - timedelta(seconds=s) for s in range(8)]
    errors: list = []
    start = threading.Barrier(len(moments))

    def recompute(at) -> None:
        start.wait(timeout=10)
        status.recompute(metric_ids=ids, now=at)

    threads = [_in_thread(lambda at=at: recompute(at), errors) for at in moments]
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    for metric in Metric.objects.filter(pk__in=ids).select_related("latest_snapshot"):
        assert metric.latest_snapshot.computed_at == base
        assert metric.latest_verdict == metric.latest_snapshot.verdict
