"""What readiness tells the permission rules: a stake through the open review's items."""

from django.db.models import Q

from portfolio.permissions import stakes
from readiness.models import ReadinessReview, ReviewOutcome


@stakes.source
def holds_review_item(initiative, user) -> bool:
    """Assigned an item of the open review, now or at any time since it opened."""
    return ReadinessReview.objects.filter(
        Q(items__assignee=user) | Q(items__events__assignee=user),
        initiative=initiative,
        outcome=ReviewOutcome.OPEN,
    ).exists()


@stakes.review_opened_at
def open_review_opened_at(initiative):
    review = (
        ReadinessReview.objects.filter(initiative=initiative, outcome=ReviewOutcome.OPEN)
        .only("opened_at")
        .first()
    )
    return review.opened_at if review is not None else None
