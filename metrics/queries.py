"""Reads of the metrics app: a fixed number of queries whatever the number of metrics."""

import json
from datetime import UTC, datetime, time, timedelta

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from metrics.models import DataFeed, Delivery, DeliverySource, FeedKind


def delivery_record(initiative, *, days: int = 14) -> list[dict]:
    """Per live feed, the fresh observations its API deliveries brought on each of the last
    `days` days (oldest first): the readiness review's evidence of a reliable pipeline.

    Fresh as gate 2 counts it: new observations from inside the feed's freshness window, by
    the API. Re-sent and back-dated rows and CSV uploads (one-off extracts) count nothing.
    The shape readiness's record had: [{"feed", "days": [{"date", "count"}], "delivered_days"}].
    Two queries whatever the number of feeds and days.
    """
    first = timezone.localdate() - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    feeds = list(DataFeed.objects.filter(initiative=initiative, kind=FeedKind.LIVE))
    counts = {
        (row["feed_id"], row["day"]): row["fresh"]
        for row in Delivery.objects.filter(
            feed__in=feeds, source=DeliverySource.API, at__gte=since, fresh__gt=0
        )
        .annotate(day=TruncDate("at"))
        .values("feed_id", "day")
        .annotate(fresh=Sum("fresh"))
        .order_by()
    }
    dates = [first + timedelta(days=i) for i in range(days)]
    return [
        {
            "feed": feed,
            "days": [{"date": d, "count": counts.get((feed.pk, d), 0)} for d in dates],
            "delivered_days": sum(1 for d in dates if counts.get((feed.pk, d))),
        }
        for feed in feeds
    ]


def sample_delivery(initiative) -> str:
    """A one-item JSON batch to paste into a first delivery: the primary metric, now, and a
    value in the metric's own unit (its ship threshold, or baseline)."""
    metric = next((m for m in initiative.metrics.all() if m.is_primary), None)
    value = 1.0
    if metric is not None and metric.ship_threshold is not None:
        value = float(metric.ship_threshold)
    elif metric is not None and metric.baseline is not None:
        value = float(metric.baseline)
    item = {
        "metric": metric.slug if metric is not None else "metric-slug",
        "cohort": "pilot",
        "observed_at": timezone.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "value": value,
    }
    return json.dumps([item])
