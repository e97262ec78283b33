"""Reads for portfolio pages: each returns what a page needs in a fixed number of queries."""

from django.db.models import Prefetch, Q, QuerySet

from gates.models import AuditEntry, GateDecision
from metrics.models import DataFeed, Metric
from portfolio.models import Initiative, ProposalStatus, ReframeProposal

PEOPLE = ("sponsor", "business_owner", "operational_owner", "delivery_lead")


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
    """The initiatives in which the user holds one of the three owner roles."""
    return (
        Initiative.objects.select_related("business_unit", *PEOPLE)
        .filter(Q(business_owner=user) | Q(operational_owner=user) | Q(delivery_lead=user))
        .order_by("title")
    )


def audit_trail(initiative) -> QuerySet:
    """The initiative's audit chain, oldest first, with each actor."""
    return AuditEntry.objects.filter(initiative=initiative).select_related("actor").order_by("seq")


def open_proposals(initiative) -> QuerySet:
    return ReframeProposal.objects.filter(
        initiative=initiative, status=ProposalStatus.OPEN
    ).select_related("proposed_by")
