"""Reads for portfolio pages: each returns what a page needs in a fixed number of queries."""

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q, QuerySet

from gates.models import AuditEntry
from portfolio.models import Initiative, ProposalStatus, PurgatoryFlag, ReframeProposal
from portfolio.permissions import OWNING_ROLES
from portfolio.roles import Role

PEOPLE = ("sponsor", "business_owner", "operational_owner", "delivery_lead")


def mine(user) -> list[Initiative]:
    """The initiatives `user` holds in one of the three owner roles or sponsors, by title,
    each with its active flags (`active_flags`). Two queries."""
    active = PurgatoryFlag.objects.filter(cleared_at__isnull=True).order_by("kind", "pk")
    return list(
        Initiative.objects.filter(
            Q(business_owner=user)
            | Q(operational_owner=user)
            | Q(delivery_lead=user)
            | Q(sponsor=user)
        )
        .select_related("business_unit")
        .prefetch_related(Prefetch("flags", queryset=active, to_attr="active_flags"))
        .order_by("title_key", "pk")
    )


def audit_trail(initiative) -> QuerySet:
    """The initiative's audit chain, oldest first, with each actor."""
    return AuditEntry.objects.filter(initiative=initiative).select_related("actor").order_by("seq")


def open_proposals(initiative) -> QuerySet:
    return ReframeProposal.objects.filter(
        initiative=initiative, status=ProposalStatus.OPEN
    ).select_related("proposed_by")


def _active_people() -> QuerySet:
    return get_user_model().objects.filter(is_active=True).order_by("first_name", "username")


def possible_owners() -> QuerySet:
    """Active people whose role lets them own an initiative or hold its work (owners,
    programme managers, executives); viewers and people with no role may not."""
    return _active_people().filter(groups__name__in=sorted(OWNING_ROLES)).distinct()


def sponsors_named() -> QuerySet:
    """The people named sponsor of some initiative: the sponsor filters' choices."""
    return (
        get_user_model()
        .objects.filter(pk__in=Initiative.objects.filter(sponsor__isnull=False).values("sponsor"))
        .order_by("first_name", "username")
    )


def owners_named() -> QuerySet:
    """The people named in an owner role of some initiative: the owner filter's people."""
    named = Q()
    for field in ("business_owner", "operational_owner", "delivery_lead"):
        named |= Q(pk__in=Initiative.objects.filter(**{f"{field}__isnull": False}).values(field))
    return get_user_model().objects.filter(named).order_by("first_name", "username")


def possible_sponsors() -> QuerySet:
    """Who may sponsor: active executives and programme managers."""
    roles = [Role.EXECUTIVE, Role.PROGRAMME_MANAGER]
    return _active_people().filter(groups__name__in=roles).distinct()
