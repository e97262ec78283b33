"""Reads for portfolio pages: each returns what a page needs in a fixed number of queries."""

from django.db.models import Prefetch, Q, QuerySet

from gates.models import GateDecision
from metrics.models import DataFeed, Metric
from portfolio.models import Initiative

PEOPLE = ("sponsor", "business_owner", "operational_owner", "delivery_lead")


def initiative_list(*, stage: str | None = None, business_unit: str | None = None) -> QuerySet:
    qs = Initiative.objects.select_related("business_unit", *PEOPLE).order_by("title")
    if stage:
        qs = qs.filter(stage=stage)
    if business_unit:
        qs = qs.filter(business_unit__slug=business_unit)
    return qs


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


def owned_by(user) -> QuerySet:
    return initiative_list().filter(
        Q(business_owner=user) | Q(operational_owner=user) | Q(delivery_lead=user)
    )
