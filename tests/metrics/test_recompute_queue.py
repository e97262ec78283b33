"""The durable recompute queue: a mark is written with the data, survives a lost task, is
claimed by one worker at a time, and is cleared only by a recompute that saw every change.

The tests of concurrent claims use real connections on PostgreSQL (row locks with SKIP
LOCKED); the rest run on any database.
"""

import threading
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
    assert mark.claimed_at is None
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
    mark = RecomputeMark.objects.get(metric=metric)
    assert mark.claimed_at is None  # released: the next run takes it
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


@pytest.mark.django_db
def test_a_claim_held_by_a_dead_worker_runs_out_after_the_lease(metric, settings):
    with transaction.atomic():
        recompute_queue.mark([metric.pk])
    died_at = timezone.now() - timedelta(seconds=settings.GANTRY_RECOMPUTE_LEASE_SECONDS - 30)
    with clock.at(died_at):
        assert list(recompute_queue.claim()) == [metric.pk]  # and the worker was killed
    assert recompute_queue.claim() == {}  # still leased
    with clock.at(died_at + timedelta(seconds=settings.GANTRY_RECOMPUTE_LEASE_SECONDS + 1)):
        assert list(recompute_queue.claim()) == [metric.pk]


@pytest.mark.django_db
def test_a_failed_recompute_gives_its_claims_back(metric):
    with transaction.atomic():
        recompute_queue.mark([metric.pk])
    with (
        mock.patch.object(recompute_queue.status, "recompute", side_effect=RuntimeError("db")),
        pytest.raises(RuntimeError),
    ):
        recompute_queue.recompute_marked()
    assert RecomputeMark.objects.get(metric=metric).claimed_at is None
    assert recompute_queue.recompute_marked() == (1, [])


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
    start = threading.Barrier(2)

    def worker():
        try:
            start.wait(timeout=10)
            got = {}
            while batch := recompute_queue.claim(limit=3):
                got |= batch
            claims.append(got)
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


@pytest.mark.django_db(transaction=True)
def test_a_claim_skips_a_mark_another_worker_has_locked(require_postgres):
    metric = MetricFactory()
    with transaction.atomic():
        recompute_queue.mark([metric.pk])
    locked, release = threading.Event(), threading.Event()

    def holder():
        try:
            with transaction.atomic():
                list(RecomputeMark.objects.select_for_update().filter(metric=metric))
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert locked.wait(timeout=10)
        assert recompute_queue.claim() == {}  # skipped at once, not waited for
    finally:
        release.set()
        thread.join(timeout=10)
    assert list(recompute_queue.claim()) == [metric.pk]


def test_every_tick_sweeps_the_queue():
    sweep = registry.registered()["recompute-sweep"]
    assert sweep.run == recompute_queue.sweep
    assert sweep.every == 0
