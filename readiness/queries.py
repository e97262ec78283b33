"""Reads for the review page and "My work"."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from metrics.models import DataFeed, FeedKind, Observation
from portfolio.roles import Role
from readiness.models import (
    Outcome,
    PreLaunchWorkItem,
    ReadinessReview,
    ReviewItem,
    ReviewItemEvent,
    WorkStatus,
)

DELIVERY_DAYS = 14


def review_detail(initiative, review_id: int):
    """The review with items, assignees, checkers and history, in a fixed number of queries."""
    events = ReviewItemEvent.objects.select_related("user", "assignee")
    items = ReviewItem.objects.select_related(
        "template_item", "assignee", "checked_by"
    ).prefetch_related(Prefetch("events", queryset=events))
    return (
        ReadinessReview.objects.filter(initiative=initiative, pk=review_id)
        .select_related("template", "opened_by", "decided_by", "decision")
        .prefetch_related(Prefetch("items", queryset=items))
        .first()
    )


def delivery_record(initiative, *, days: int = DELIVERY_DAYS) -> list[dict]:
    """Per live feed, observations delivered on each of the last `days` days (oldest first)."""
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    feeds = list(DataFeed.objects.filter(initiative=initiative, kind=FeedKind.LIVE))
    counts = {
        (row["feed_id"], row["day"]): row["n"]
        for row in Observation.objects.filter(feed__in=feeds, ingested_at__date__gte=first)
        .annotate(day=TruncDate("ingested_at"))
        .values("feed_id", "day")
        .annotate(n=Count("id"))
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


def open_items_for(user):
    """Checklist items assigned to the user in open reviews, oldest review first."""
    return (
        ReviewItem.objects.filter(assignee=user, checked=False, review__outcome=Outcome.OPEN)
        .select_related("template_item", "review__initiative")
        .order_by("review__opened_at", "template_item__position")
    )


def open_work_for(user):
    """Open pre-launch work items assigned to the user, soonest due first."""
    return (
        PreLaunchWorkItem.objects.filter(assignee=user, status=WorkStatus.OPEN)
        .select_related("initiative")
        .order_by("due_date", "id")
    )


def counts_for(user) -> dict:
    return {
        "items": ReviewItem.objects.filter(
            assignee=user, checked=False, review__outcome=Outcome.OPEN
        ).count(),
        "work": PreLaunchWorkItem.objects.filter(assignee=user, status=WorkStatus.OPEN).count(),
    }


def reviews_of(initiative):
    """Every review of the initiative, newest first, with its checked and total item counts."""
    return (
        ReadinessReview.objects.filter(initiative=initiative)
        .select_related("initiative")  # each links to its page, which names the initiative
        .annotate(
            checked_count=Count("items", filter=Q(items__checked=True)), item_count=Count("items")
        )
    )


def assignable_people():
    """Who may hold checklist items: active users, except those whose only role is viewer."""
    users = get_user_model().objects
    viewers_only = users.filter(groups__name=Role.VIEWER).exclude(
        groups__name__in=[Role.EXECUTIVE, Role.PROGRAMME_MANAGER, Role.OWNER]
    )
    return (
        users.filter(is_active=True)
        .exclude(pk__in=viewers_only.values("pk"))
        .order_by("first_name", "username")
    )
