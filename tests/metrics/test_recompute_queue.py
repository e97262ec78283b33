"""The durable recompute queue: a mark is written with the data, survives a lost task, is
claimed by one worker at a time, and is cleared only by a recompute that saw every change.

The tests of concurrent claims use real connections on PostgreSQL (row locks with SKIP
LOCKED); the rest run on any database.
"""

import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from gates import clock
from jobs import publish, registry
from metrics import ingest, recompute_queue, services, tasks
from metrics.models import MetricSnapshot, Observation, RecomputeMark
from tests.factories import MetricFactory

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture(autouse=True)
def _no_claims_left_over():
    """A test that claims and never finishes must not hand its claims to the next test,
    which runs on the same database connection."""
    yield
    if connection.vendor == "postgresql" and connection.connection is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock_all()")


def deliver(feed, metric, *, hours_ago: float = 1, value: float = 90.0):
    at = NOW - timedelta(hours=hours_ago)
    item = {"metric": metric.slug, "cohort": "pilot", "observed_at": at.isoformat(), "value": value}
    return services.store_delivery(feed=feed, batch=ingest.validate([item], feed))


@pytest.mark.django_db
def test_a_delivery_marks_its_metrics_with_the_data_in_one_transaction(live, metric):
    feed, _ = live
    with mock.patch("metrics.tasks.recompute_metrics.apply_async"):
        deliver(feed, metric)
    mark = RecomputeMark.objects.get(metric=metric)
    assert mark.dirty_since <= timezone.now()

    # A delivery that fails after storing rolls back its mark with its rows.
    RecomputeMark.objects.all().delete()
    with (
        mock.patch.object(ingest.Delivery.objects, "create", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        deliver(feed, metric, hours_ago=2)
    assert not RecomputeMark.objects.exists()
    assert Observation.objects.filter(metric=metric).count() == 1


@pytest.mark.django_db
def test_only_duplicates_mark_nothing(live, metric):
    feed, _ = live
    with mock.patch("metrics.tasks.recompute_metrics.apply_async"):
        deliver(feed, metric)
        RecomputeMark.objects.all().delete()
        deliver(feed, metric)  # the same row again
    assert not RecomputeMark.objects.exists()


@pytest.mark.django_db
def test_a_lost_task_costs_latency_not_the_recompute(live, metric, settings):
    feed, _ = live
    with mock.patch("metrics.tasks.recompute_metrics.apply_async"):  # the task never arrives
        deliver(feed, metric)
        assert publish.flush()
    assert not MetricSnapshot.objects.filter(metric=metric).exists()
    # Its own task is still due within the debounce: the sweep leaves the mark to it.
    assert recompute_queue.sweep() == 0
    later = timezone.now() + timedelta(seconds=settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS + 1)
    with clock.at(later):
        assert recompute_queue.sweep() == 1
    assert MetricSnapshot.objects.filter(metric=metric).count() == 1
    assert not RecomputeMark.objects.exists()
    with clock.at(later):
        assert recompute_queue.sweep() == 0  # nothing left to do


@pytest.mark.django_db
def test_a_change_during_the_recompute_keeps_the_mark_for_another_run(live, metric):
    feed, _ = live
    real = recompute_queue.status.recompute

    def recompute_while_a_delivery_arrives(**kwargs):
        count = real(**kwargs)
        with mock.patch("metrics.tasks.recompute_metrics.apply_async"):
            deliver(feed, metric, hours_ago=3)  # after the recompute read the data
        return count

    with mock.patch("metrics.tasks.recompute_metrics.apply_async"):
        deliver(feed, metric)
    with mock.patch.object(
        recompute_queue.status, "recompute", side_effect=recompute_while_a_delivery_arrives
    ):
        count, changed = recompute_queue.recompute_marked()
    assert (count, changed) == (1, [metric.pk])
    assert RecomputeMark.objects.filter(metric=metric).exists()
    assert recompute_queue.recompute_marked() == (1, [])
    latest = MetricSnapshot.objects.filter(metric=metric).latest("computed_at", "id")
    assert latest.pilot_count == 2


@pytest.mark.django_db
def test_the_task_queues_again_what_changed_while_it_ran(live, metric, settings):
    feed, _ = live
    with mock.patch("metrics.tasks.recompute_metrics.apply_async"):
        deliver(feed, metric)
    with (
        mock.patch.object(recompute_queue, "finish", return_value=[metric.pk]),
        mock.patch("metrics.tasks.recompute_metrics.apply_async") as again,
    ):
        tasks.recompute_metrics([metric.pk])
        assert publish.flush()
    again.assert_called_once_with(
        args=[[metric.pk]], countdown=settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS
    )


def advisory_locks_held_here() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_failed_recompute_gives_its_claims_back(metric):
    with transaction.atomic():
        recompute_queue.mark([metric.pk])
    with (
        mock.patch.object(recompute_queue.status, "recompute", side_effect=RuntimeError("db")),
        pytest.raises(RuntimeError),
    ):
        recompute_queue.recompute_marked()
    if connection.vendor == "postgresql":
        assert advisory_locks_held_here() == 0
    assert recompute_queue.recompute_marked() == (1, [])
    if connection.vendor == "postgresql":
        assert advisory_locks_held_here() == 0  # finished: nothing left held


@pytest.mark.django_db
def test_a_burst_keeps_the_oldest_change_and_queues_once(metric):
    with transaction.atomic():
        assert recompute_queue.mark([metric.pk]) == [metric.pk]
    first = RecomputeMark.objects.get(metric=metric)
    with transaction.atomic():
        assert recompute_queue.mark([metric.pk]) == []
    again = RecomputeMark.objects.get(metric=metric)
    assert again.dirty_since == first.dirty_since
    assert again.token != first.token


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_claim_the_same_mark(require_postgres):
    metrics = [MetricFactory() for _ in range(40)]
    with transaction.atomic():
        recompute_queue.mark([m.pk for m in metrics])
    claims: list[dict] = []
    start, end = threading.Barrier(2), threading.Barrier(2)

    def worker():
        try:
            start.wait(timeout=10)
            got = {}
            while batch := recompute_queue.claim(limit=3):
                got |= batch
            claims.append(got)
            end.wait(timeout=10)  # a claim lasts as long as its connection: keep both open
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(claims) == 2
    assert not set(claims[0]) & set(claims[1])
    assert set(claims[0]) | set(claims[1]) == {m.pk for m in metrics}


class Holder:
    """Another worker, on its own connection: it claims what is marked and keeps it."""

    def __init__(self):
        self.claimed: dict = {}
        self.pid = None
        self.ready, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()
        assert self.ready.wait(timeout=10)

    def run(self):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.claimed = recompute_queue.claim()
            self.ready.set()
            self.done.wait(timeout=20)
        finally:
            connection.close()

    def stop(self):
        """Close the connection and wait until the server has ended its session: a backend
        releases its locks on the way out, a moment after the client has gone."""
        self.done.set()
        self.thread.join(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [self.pid])
                if not cursor.fetchone()[0]:
                    return
            time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_a_claim_skips_what_another_worker_holds_and_deliveries_do_not_wait(require_postgres):
    metric = MetricFactory()
    with transaction.atomic():
        recompute_queue.mark([metric.pk])
    holder = Holder()
    try:
        assert list(holder.claimed) == [metric.pk]
        assert recompute_queue.claim() == {}  # skipped at once, not waited for
        # A delivery marks the metric again while it is being computed: no waiting.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '1s'")
        with transaction.atomic():
            assert recompute_queue.mark([metric.pk]) == []
    finally:
        holder.stop()
    assert list(recompute_queue.claim()) == [metric.pk]  # its connection ended: free again


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_recompute_frees_its_claims_at_once(require_postgres):
    metrics = [MetricFactory() for _ in range(3)]
    with transaction.atomic():
        recompute_queue.mark([m.pk for m in metrics])
    holder = Holder()
    try:
        assert recompute_queue.claim() == {}
        # What a kill -9 of the worker process does to its database session.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [holder.pid])
        deadline = time.monotonic() + 5
        while not (claimed := recompute_queue.claim()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(claimed) == sorted(m.pk for m in metrics)
    finally:
        holder.stop()


def test_every_tick_sweeps_the_queue():
    sweep = registry.registered()["recompute-sweep"]
    assert sweep.run == recompute_queue.sweep
    assert sweep.every == 0
