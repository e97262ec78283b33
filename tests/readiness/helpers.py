"""Small helpers shared by the readiness tests: reaching a review, checking items, deciding."""

from decimal import Decimal

from gates import services as gate_services
from gates.stages import Stage
from gates.stages import Transition as T
from portfolio.models import Initiative
from readiness import services
from readiness.models import ChecklistTemplate, ReadinessReview, ReviewItem, ReviewOutcome
from tests.factories import (
    ChecklistItemTemplateFactory,
    ChecklistTemplateFactory,
    FramingChangeFactory,
)
from tests.helpers import advance, criteria_passing

EVIDENCE = "Walked through it with the team; the runbook is linked."
LINK = "https://wiki.example.internal/claims-triage/runbook"
NUMBERS = {
    "cost_per_transaction": Decimal("0.04"),
    "monthly_volume": Decimal("120000"),
    "currency": "EUR",
}

# Who holds which item of the default checklist in the `assigned` fixture.
ASSIGNMENT = {
    "data_pipeline": "delivery_lead",
    "security_access": "business_owner",
    "monitoring_alerting": "delivery_lead",
    "failure_fallback": "operational_owner",
    "cost_per_transaction": "business_owner",
    "operational_owner": "operational_owner",
}


def submit_for_review(initiative, *, user) -> ReadinessReview:
    """Walk the initiative to thin slice, submit it through decide, return the opened review.

    Gate 2's criteria are patched to pass: its data criteria have their own tests.
    """
    advance(initiative, Stage.THIN_SLICE, user=user)
    with criteria_passing():
        gate_services.decide(
            initiative=initiative,
            transition=T.SUBMIT_FOR_REVIEW,
            user=user,
            rationale="The thin slice runs on live data; ready for review.",
        )
    return open_review(initiative)


def open_review(initiative) -> ReadinessReview:
    return ReadinessReview.objects.get(initiative=initiative, outcome=ReviewOutcome.OPEN)


def items_of(review) -> dict[str, ReviewItem]:
    """The review's items by checklist key, fresh from the database."""
    items = ReviewItem.objects.filter(review_id=review.pk).select_related(
        "template_item", "review__initiative"
    )
    return {item.template_item.key: item for item in items}


def fresh(item) -> ReviewItem:
    return ReviewItem.objects.select_related("template_item", "review__initiative").get(pk=item.pk)


def numbers_for(item) -> dict:
    return dict(NUMBERS) if item.template_item.asks_numbers else {}


def check(item, user, **overrides) -> ReviewItem:
    """Check `item` as `user` with valid evidence (and numbers where the item asks for them)."""
    data = {"evidence_text": EVIDENCE, "evidence_url": LINK, **numbers_for(item), **overrides}
    services.check(item=item, user=user, **data)
    return item


def decide(initiative, transition, user, rationale: str = "Decided on the evidence."):
    return gate_services.decide(
        initiative=initiative, transition=transition, user=user, rationale=rationale
    )


def snapshot(item) -> dict:
    """What a forbidden or refused action must leave untouched."""
    row = ReviewItem.objects.get(pk=item.pk)
    return {
        "assignee": row.assignee_id,
        "checked": row.checked,
        "evidence_text": row.evidence_text,
        "evidence_url": row.evidence_url,
        "cost_per_transaction": row.cost_per_transaction,
        "monthly_volume": row.monthly_volume,
        "currency": row.currency,
        "checked_by": row.checked_by_id,
        "checked_at": row.checked_at,
        "version": row.version,
        "events": row.events.count(),
    }


def item_url(item, action: str) -> str:
    review = item.review
    return f"/initiatives/{review.initiative.slug}/reviews/{review.pk}/items/{item.pk}/{action}/"


def review_url(review) -> str:
    return f"/initiatives/{review.initiative.slug}/reviews/{review.pk}/"


def decide_url(review, transition) -> str:
    return f"{review_url(review)}decide/{transition}/"


def new_version(*extra: str) -> ChecklistTemplate:
    """Checklist version n+1: the newest version's items, then one more item per title."""
    newest = services.current_template()
    version = ChecklistTemplateFactory()
    for item in newest.items.all():
        ChecklistItemTemplateFactory(
            template=version,
            key=item.key,
            title=item.title,
            guidance=item.guidance,
            asks_numbers=item.asks_numbers,
            system_evidence=item.system_evidence,
            position=item.position,
        )
    for title in extra:
        ChecklistItemTemplateFactory(template=version, title=title)
    return version


def change_owner(initiative, field: str, person, *, by, at=None, reason: str = ""):
    """Name `person` (or nobody) in the owner field, recorded as a FramingChange as the
    portfolio services record it. Returns the change; `initiative` is reloaded."""
    old = getattr(Initiative.objects.get(pk=initiative.pk), f"{field}_id")
    Initiative.objects.filter(pk=initiative.pk).update(**{field: person})
    extra = {"changed_at": at} if at is not None else {}
    change = FramingChangeFactory(
        initiative=initiative,
        field=field,
        old_value="" if old is None else str(old),
        new_value="" if person is None else str(person.pk),
        changed_by=by,
        reason=reason,
        **extra,
    )
    initiative.refresh_from_db()
    return change
