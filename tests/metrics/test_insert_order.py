"""Deliveries of the same rows in different orders, at once, on real connections: each
waits for the other instead of deadlocking, and every row is stored once.

Needs PostgreSQL (row locks between concurrent connections).
"""

import random
import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from metrics import ingest
from metrics.models import Cohort, Observation
from tests.factories import DataFeedFactory, MetricFactory

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 4


@pytest.mark.parametrize("size", [300, ingest.COPY_FROM_ROWS + 200], ids=["statement", "copy"])
def test_shuffled_copies_of_one_batch_at_once_store_every_row_once(require_postgres, size):
    first = MetricFactory()
    metrics = [first, *(MetricFactory(initiative=first.initiative, is_primary=False) for _ in "ab")]
    feed = DataFeedFactory(initiative=first.initiative)
    start = timezone.now().replace(microsecond=0) - timedelta(days=5)
    rows = [
        (
            metrics[i % 3].pk,
            (Cohort.PILOT, Cohort.BASELINE)[i % 2],
            start + timedelta(minutes=i),
            1.0,
        )
        for i in range(size)
    ]
    errors, created = [], []
    ready = threading.Barrier(CLIENTS)

    def client(seed: int) -> None:
        mine = rows[:]
        random.Random(seed).shuffle(mine)
        try:
            ready.wait(timeout=10)
            created.append(ingest.store(feed, mine).created)
        except Exception as exc:  # any error fails the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(created) == size  # each row stored by exactly one delivery
    assert Observation.objects.filter(feed=feed).count() == size


def test_a_row_committed_by_another_delivery_mid_copy_is_counted_as_a_duplicate(
    require_postgres,
):
    """The COPY path reads which rows the feed holds, then copies the rest. Another
    connection holding one of them uncommitted makes the COPY wait on the unique key; once
    that commits, the COPY fails, and the batch is stored again skipping what is held."""
    metric = MetricFactory()
    feed = DataFeedFactory(initiative=metric.initiative)
    start = timezone.now().replace(microsecond=0) - timedelta(days=2)
    rows = [
        (metric.pk, Cohort.PILOT, start + timedelta(minutes=i), float(i))
        for i in range(ingest.COPY_FROM_ROWS + 10)
    ]
    holding, release, results, errors = threading.Event(), threading.Event(), [], []

    def other_delivery() -> None:
        try:
            with transaction.atomic():
                Observation.objects.create(
                    metric=metric, feed=feed, cohort=Cohort.PILOT,
                    observed_at=rows[500][2], value=500.0,
                )  # fmt: skip
                holding.set()
                release.wait(timeout=20)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def this_delivery() -> None:
        try:
            results.append(ingest.store(feed, rows))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    fallback = mock.patch.object(
        ingest, "_insert_skipping_held", wraps=ingest._insert_skipping_held
    )
    with fallback as skipping:
        other = threading.Thread(target=other_delivery)
        other.start()
        assert holding.wait(timeout=20)
        this = threading.Thread(target=this_delivery)
        this.start()
        time.sleep(0.5)  # long enough for the COPY to wait on the held key
        release.set()
        other.join(timeout=30)
        this.join(timeout=30)
    assert errors == []
    assert skipping.called
    [stored] = results
    assert (stored.created, stored.duplicates) == (len(rows) - 1, 1)
    assert Observation.objects.filter(feed=feed).count() == len(rows)


def test_a_resent_large_batch_is_all_duplicates_without_the_fallback(require_postgres):
    metric = MetricFactory()
    feed = DataFeedFactory(initiative=metric.initiative)
    start = timezone.now().replace(microsecond=0) - timedelta(days=2)
    rows = [
        (metric.pk, Cohort.BASELINE, start + timedelta(seconds=i), 1.0)
        for i in range(ingest.COPY_FROM_ROWS + 10)
    ]
    assert ingest.store(feed, rows[:600]).created == 600
    with mock.patch.object(ingest, "_insert_skipping_held") as skipping:
        again = ingest.store(feed, rows)
    assert (again.created, again.duplicates) == (len(rows) - 600, 600)
    assert not skipping.called
    assert Observation.objects.filter(feed=feed).count() == len(rows)
