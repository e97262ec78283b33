"""Delivery records for observations stored without one.

Observations stored before deliveries were recorded (migration 0006 calls this with its
historical models), or written in bulk by an import or the demo, have no Delivery row, so
gate 2, the stale check and the delivery record would not see them. Each feed's rows that
share an ingestion time were one delivery: this records it (as a delivery whose rows were
all new, which is what such a row was) and, when its source is known to be the API, sets the
feed's last fresh data from it.

An upgrade cannot tell which earlier deliveries came through the API and which were CSV
uploads, so migration 0006 records them with nothing fresh: gate 2 and the stale check wait for
each feed's next API delivery rather than count a spreadsheet as a live feed.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Exists, F, Max, OuterRef, Q


def derive_deliveries(
    feed_model, observation_model, delivery_model, *, feed_ids=None, from_api: bool = True
) -> int:
    """Record the missing deliveries of the feeds (all when `feed_ids` is None) and move each
    feed's `last_fresh_at` forward to its newest delivery with fresh rows. `from_api=False`
    records them as history only, none fresh. Returns how many deliveries it recorded;
    running it again records none."""
    feeds = feed_model._base_manager.all()
    if feed_ids is not None:
        feeds = feeds.filter(pk__in=list(feed_ids))
    recorded = 0
    windows = sorted(set(feeds.values_list("freshness_hours", flat=True)))
    for hours in windows:
        ids = feeds.filter(freshness_hours=hours).values("pk")
        held = delivery_model._base_manager.filter(
            feed_id=OuterRef("feed_id"), at=OuterRef("ingested_at")
        )
        groups = (
            observation_model._base_manager.filter(feed_id__in=ids)
            .exclude(Exists(held))
            .values("feed_id", "ingested_at")
            .annotate(
                n=Count("id"),
                fresh=Count(
                    "id", filter=Q(observed_at__gt=F("ingested_at") - timedelta(hours=hours))
                ),
            )
            .order_by()
        )
        rows = [
            delivery_model(
                feed_id=g["feed_id"],
                at=g["ingested_at"],
                source="api",
                received=g["n"],
                created=g["n"],
                duplicates=0,
                fresh=g["fresh"] if from_api else 0,
            )
            for g in groups
        ]
        delivery_model._base_manager.bulk_create(rows, batch_size=2000)
        recorded += len(rows)
    newest = dict(
        delivery_model._base_manager.filter(feed__in=feeds, source="api", fresh__gt=0)
        .values("feed_id")
        .annotate(last=Max("at"))
        .order_by()
        .values_list("feed_id", "last")
    )
    for feed_id, last in newest.items():
        feed_model._base_manager.filter(pk=feed_id).filter(
            Q(last_fresh_at__isnull=True) | Q(last_fresh_at__lt=last)
        ).update(last_fresh_at=last)
    return recorded
