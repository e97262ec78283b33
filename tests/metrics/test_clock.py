"""A delivery stored at `now=` is stamped with that moment, and judged against it."""

from datetime import timedelta

from django.utils import timezone

from gates import clock
from metrics import ingest, services
from metrics.models import Observation


def test_a_delivery_at_a_moment_is_ingested_then_and_refuses_what_lies_after_it(live, metric):
    feed, _ = live
    moment = timezone.now() - timedelta(days=10)
    items = [
        {"metric": metric.slug, "cohort": "pilot", "observed_at": at.isoformat(), "value": 86}
        for at in (moment - timedelta(hours=1), moment + timedelta(days=2))
    ]
    with clock.at(moment):
        batch = ingest.validate(items, feed)
    assert [p.where for p in batch.problems] == [1]  # after the moment: in the future then

    stored = services.store_delivery(feed=feed, batch=ingest.Batch(rows=batch.rows[:1]), now=moment)
    assert stored.created == 1
    row = Observation.objects.get(metric=metric)
    assert row.ingested_at == moment
    feed.refresh_from_db()
    assert feed.last_fresh_at == moment  # fresh data arrived at that moment


def test_a_feed_registered_at_a_moment_is_dated_then(initiative, manager):
    moment = timezone.now() - timedelta(days=30)
    feed, _token = services.create_feed(
        initiative=initiative,
        user=manager,
        name="Claims events",
        kind="live",
        owner=manager,
        freshness_hours=24,
        now=moment,
    )
    feed.refresh_from_db()
    assert feed.created_at == moment == feed.token_rotated_at
    assert list(feed.events.values_list("at", flat=True)) == [moment]


def test_a_replayed_delivery_can_leave_the_recompute_to_its_caller(live, metric, monkeypatch):
    feed, _ = live
    queued = []
    monkeypatch.setattr(services, "schedule_recompute", queued.append)
    at = timezone.now() - timedelta(days=1)
    item = {"metric": metric.slug, "cohort": "pilot", "observed_at": at.isoformat(), "value": 1}
    with clock.at(at):
        batch = ingest.validate([item], feed)
    services.store_delivery(feed=feed, batch=batch, now=at, schedule=False)
    assert queued == []
    item["observed_at"] = (at - timedelta(hours=1)).isoformat()
    with clock.at(at):
        batch = ingest.validate([item], feed)
    services.store_delivery(feed=feed, batch=batch, now=at)
    assert queued == [frozenset({metric.pk})]
