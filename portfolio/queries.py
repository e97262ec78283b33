"""Reads for portfolio pages: each returns what a page needs in a fixed number of queries."""

from django.db.models import Count, Prefetch, Q, QuerySet

from gates.models import GateDecision
from gates.stages import PATH, Stage
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


def stage_counts() -> list[tuple[str, str, int]]:
    """(stage, label, count) for every stage, in path order, stopped last."""
    counts = dict(Initiative.objects.values_list("stage").annotate(n=Count("id")).order_by())
    return [(s.value, s.label, counts.get(s.value, 0)) for s in [*PATH, Stage.STOPPED]]


def recent_decisions(limit: int = 10) -> QuerySet:
    return GateDecision.objects.select_related("initiative", "decided_by")[:limit]


def owned_by(user) -> QuerySet:
    return initiative_list().filter(
        Q(business_owner=user) | Q(operational_owner=user) | Q(delivery_lead=user)
    )
