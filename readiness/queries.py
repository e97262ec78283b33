"""Reads for the review page and "My work"."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import CharField, Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Cast
from django.utils import timezone

from portfolio.models import FramingChange, Initiative
from portfolio.permissions import OWNER_FIELDS, may_own
from portfolio.queries import mine, possible_owners
from portfolio.roles import Role
from readiness.models import (
    PreLaunchWorkItem,
    ReadinessReview,
    ReviewItem,
    ReviewItemEvent,
    ReviewOutcome,
    WorkItemEvent,
    WorkStatus,
)


def review_detail(initiative, review_id: int):
    """The review with items, assignees, checkers and history, in a fixed number of queries."""
    events = ReviewItemEvent.objects.select_related("user", "assignee", "previous_assignee")
    items = ReviewItem.objects.select_related(
        "template_item", "assignee", "checked_by"
    ).prefetch_related(Prefetch("events", queryset=events))
    return (
        ReadinessReview.objects.filter(initiative=initiative, pk=review_id)
        .select_related("template", "opened_by", "decided_by", "decision")
        .prefetch_related(Prefetch("items", queryset=items))
        .first()
    )


def open_items_for(user):
    """Checklist items assigned to the user in open reviews, oldest review first."""
    return (
        ReviewItem.objects.filter(assignee=user, checked=False, review__outcome=ReviewOutcome.OPEN)
        .select_related("template_item", "review__initiative")
        .order_by("review__opened_at", "template_item__position")
    )


def open_work_for(user):
    """Open pre-launch work items assigned to the user, soonest due first."""
    return (
        PreLaunchWorkItem.objects.filter(assignee=user, status=WorkStatus.OPEN)
        .select_related("initiative", "review_item__review__initiative")
        .order_by("due_date", "id")
    )


@dataclass
class MyWorkPage:
    items: list[ReviewItem]
    work_items: list[PreLaunchWorkItem]
    initiatives: list[Initiative]
    flagged: list[Initiative]
    today: date
    writes: bool

    def context(self) -> dict:
        """The template's context: one name per field."""
        return dict(vars(self))


def my_work_page(*, user) -> MyWorkPage:
    """What `user` is asked for: checklist items of open reviews, open pre-launch work, the
    initiatives they own or sponsor, and which of those are flagged in pilot purgatory. A
    fixed number of queries, whatever the lists' lengths."""
    initiatives = mine(user)
    return MyWorkPage(
        items=list(open_items_for(user)),
        work_items=list(open_work_for(user)),
        initiatives=initiatives,
        flagged=[i for i in initiatives if i.active_flags],
        today=timezone.localdate(),
        # A viewer named on work still closes none of it.
        writes=may_own(user),
    )


def counts_for(user) -> dict:
    return {
        "items": ReviewItem.objects.filter(
            assignee=user, checked=False, review__outcome=ReviewOutcome.OPEN
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
    """Who may hold checklist items: the people who may own an initiative."""
    return possible_owners()


def eligible_deciders(initiative, *, review=None) -> list:
    """The active programme managers who may decide the initiative's open review now, by name.

    The same rule as `portfolio.permissions.may_decide_review`, for every programme manager at
    once: not an owner now; never given an item of the open review (current assignee or named
    by an ASSIGNED event); not named in an owner field by a framing change since the review
    opened. One query, or two when `review` (the open review) is not given.
    """
    if review is None:
        review = (
            ReadinessReview.objects.filter(initiative=initiative, outcome=ReviewOutcome.OPEN)
            .only("opened_at")
            .first()
        )
    managers = get_user_model().objects.filter(is_active=True, groups__name=Role.PROGRAMME_MANAGER)
    managers = managers.exclude(pk__in=initiative.owner_ids)
    if review is not None:
        items = ReviewItem.objects.filter(review=review)
        held = Exists(items.filter(assignee=OuterRef("pk"))) | Exists(
            ReviewItemEvent.objects.filter(item__in=items, assignee=OuterRef("pk"))
        )
        # Framing changes store people as text ids: compare with the id as text, so values
        # that are blank never need casting to a number.
        me = Cast(OuterRef("pk"), CharField())
        named = Exists(
            FramingChange.objects.filter(
                Q(old_value=me) | Q(new_value=me),
                initiative=initiative,
                field__in=OWNER_FIELDS,
                changed_at__gte=review.opened_at,
            )
        )
        managers = managers.exclude(held).exclude(named)
    return list(managers.order_by("first_name", "last_name", "username"))


def ownership_changes(initiative, *, since) -> list[FramingChange]:
    """Changes to the initiative's owner fields since `since` (a review opening), oldest first.

    Each row carries `label` ("Business owner"), `old_person` and `new_person` (users, or None
    for nobody). Two queries whatever the number of changes: the rows with who changed them,
    then every person they name.
    """
    changes = list(
        FramingChange.objects.filter(
            initiative=initiative, field__in=OWNER_FIELDS, changed_at__gte=since
        )
        .select_related("changed_by")
        .order_by("changed_at", "id")
    )
    ids = {int(v) for c in changes for v in (c.old_value, c.new_value) if v.isdigit()}
    people = get_user_model().objects.in_bulk(ids) if ids else {}
    for change in changes:
        change.label = Initiative._meta.get_field(change.field).verbose_name.capitalize()
        change.old_person = _person(change.old_value, people)
        change.new_person = _person(change.new_value, people)
    return changes


def _person(value: str, people: dict):
    if not value.isdigit():
        return None
    # A person no longer in the database is still named by id rather than shown as nobody.
    return people.get(int(value)) or f"user #{value}"


def work_of(initiative) -> list[dict]:
    """The initiative's pre-launch work for its page: each item with the review that made
    it and its latest event (the evidence it was done with, or why it was reopened). Two
    queries, whatever the number of items."""
    events = WorkItemEvent.objects.select_related("user").order_by("at", "id")
    items = (
        PreLaunchWorkItem.objects.filter(initiative=initiative)
        .select_related("assignee", "review_item__review__initiative")
        .prefetch_related(Prefetch("events", queryset=events))
    )
    return [
        {
            "item": item,
            "review": item.review_item.review,
            "last": (list(item.events.all()) or [None])[-1],
        }
        for item in items
    ]


@dataclass(frozen=True)
class RunningCost:
    """What an initiative in production costs a month, as its latest passed readiness
    review recorded it: cost per transaction times expected monthly volume."""

    amount: Decimal
    currency: str
    review_id: int


def _costed_items() -> QuerySet:
    """Numbers items of passed reviews with both figures given, newest decision first."""
    return ReviewItem.objects.filter(
        review__outcome=ReviewOutcome.PASSED,
        template_item__asks_numbers=True,
        cost_per_transaction__isnull=False,
        monthly_volume__isnull=False,
    ).order_by("-review__decided_at", "-review_id", "-pk")


def running_cost_currency() -> Subquery:
    """For an initiative queryset: the currency of its running cost, NULL when none is on
    record. The list filters on it, so the dashboard's cost figures link to what they sum."""
    return Subquery(
        _costed_items().filter(review__initiative=OuterRef("pk")).values("currency")[:1]
    )


def running_costs(initiatives: QuerySet) -> dict[int, RunningCost]:
    """{initiative id: its running cost} for those with one on record, in one query. An
    initiative reviewed twice costs what its latest passed review says."""
    costs: dict[int, RunningCost] = {}
    rows = (
        _costed_items()
        .filter(review__initiative__in=initiatives)
        .annotate(initiative_id=F("review__initiative_id"))
        .only("review_id", "cost_per_transaction", "monthly_volume", "currency")
    )
    for item in rows:
        if item.initiative_id not in costs:
            cost = RunningCost(item.monthly_cost, item.currency, item.review_id)
            costs[item.initiative_id] = cost
    return costs
