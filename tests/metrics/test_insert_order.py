"""Deliveries of the same rows in different orders, at once, on real connections: each
waits for the other instead of deadlocking, and every row is stored once.

Needs PostgreSQL (row locks between concurrent connections).
"""

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection
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
