"""Small helpers shared by the metrics tests."""

from datetime import timedelta

from django.utils import timezone

from metrics.models import DataFeed, Observation

API = "/api/v1/feeds/{}/observations"


def item(metric, /, *, cohort="pilot", hours_ago: float = 1, value=90.0, **overrides) -> dict:
    """One valid observation of `metric`, as the API takes it."""
    data = {
        "metric": metric.slug,
        "cohort": cohort,
        "observed_at": (timezone.now() - timedelta(hours=hours_ago)).isoformat(),
        "value": value,
    }
    data.update(overrides)
    return data


def stored() -> int:
    return Observation.objects.count()


def last_delivery(feed):
    return DataFeed.objects.get(pk=feed.pk).last_delivery_at
