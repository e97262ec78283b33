"""Reads that join the portfolio with the feature apps, for the pages."""

from django.db.models import Prefetch, QuerySet

from gates.models import GateDecision
from metrics.models import DataFeed, Metric
from portfolio.models import Initiative
from portfolio.queries import PEOPLE


def initiative_detail(slug: str) -> QuerySet:
    """The initiative page's initiative, with metrics and decisions prefetched."""
    return (
        Initiative.objects.select_related("business_unit", "created_by", *PEOPLE)
        .prefetch_related(
            Prefetch(
                "metrics",
                queryset=Metric.objects.select_related("latest_snapshot").order_by(
                    "-is_primary", "name"
                ),
            ),
            Prefetch("feeds", queryset=DataFeed.objects.select_related("owner")),
            Prefetch("decisions", queryset=GateDecision.objects.select_related("decided_by")),
        )
        .filter(slug=slug)
    )
