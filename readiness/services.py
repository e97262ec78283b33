"""Writes of the readiness review: opening, assigning, checking, deciding, pre-launch work."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from gates import effects
from gates.permissions import may_decide_review
from gates.stages import Transition
from portfolio.roles import is_programme_manager
from readiness.defaults import install_version_1
from readiness.models import (
    ChecklistItemTemplate,
    ChecklistTemplate,
    ItemAction,
    Outcome,
    PreLaunchWorkItem,
    ReadinessReview,
    ReviewItem,
    ReviewItemEvent,
    SystemEvidence,
    WorkStatus,
)

WORK_ITEM_DUE_DAYS = 14


class Conflict(Exception):
    """Someone else changed the item since this person loaded it."""

    def __init__(self) -> None:
        super().__init__(
            "Someone else changed this item while you were editing it. "
            "Reload the page to see their change, then try again."
        )


class ReviewClosed(ValidationError):
    pass


def current_template() -> ChecklistTemplate:
    """The newest checklist version; version 1 is reinstalled if the table was emptied."""
    template = ChecklistTemplate.objects.order_by("-version").first()
    return template or install_version_1(ChecklistTemplate, ChecklistItemTemplate)


# Effects of the gate decisions ------------------------------------------------------------
@effects.on(Transition.SUBMIT_FOR_REVIEW)
def open_review(initiative, decision) -> ReadinessReview:
    """A review opens when the initiative enters readiness review, on the newest checklist."""
    template = current_template()
    review = ReadinessReview.objects.create(
        initiative=initiative,
        template=template,
        opened_by=decision.decided_by,
        opened_at=decision.decided_at,
    )
    ReviewItem.objects.bulk_create(
        [ReviewItem(review=review, template_item=item) for item in template.items.all()]
    )
    return review


@effects.on(Transition.PASS_REVIEW)
def record_pass(initiative, decision) -> None:
    _close(initiative, decision, Outcome.PASSED)


@effects.on(Transition.FAIL_REVIEW)
def record_fail(initiative, decision) -> None:
    """Every unchecked item becomes open pre-launch work for that item's assignee."""
    review = _close(initiative, decision, Outcome.FAILED)
    due = (decision.decided_at + timedelta(days=WORK_ITEM_DUE_DAYS)).date()
    unchecked = review.items.filter(checked=False).select_related("template_item")
    PreLaunchWorkItem.objects.bulk_create(
        [
            PreLaunchWorkItem(
                initiative=initiative,
                review_item=item,
                title=item.template_item.title,
                assignee_id=item.assignee_id,
                due_date=due,
            )
            for item in unchecked
        ]
    )


def _close(initiative, decision, outcome: str) -> ReadinessReview:
    review = ReadinessReview.objects.select_for_update().get(
        initiative=initiative, outcome=Outcome.OPEN
    )
    review.outcome = outcome
    review.decided_by = decision.decided_by
    review.decided_at = decision.decided_at
    review.decision = decision
    review.save(update_fields=["outcome", "decided_by", "decided_at", "decision"])
    return review


# Items -------------------------------------------------------------------------------------
def _write(item: ReviewItem, expected_version: int | None, **changes) -> None:
    """Apply `changes` only if nobody wrote the item since `expected_version`."""
    if expected_version is not None and expected_version != item.version:
        raise Conflict()
    updated = ReviewItem.objects.filter(pk=item.pk, version=item.version).update(
        version=item.version + 1, **changes
    )
    if not updated:
        raise Conflict()
    for name, value in changes.items():
        setattr(item, name, value)
    item.version += 1


def _require_open(item: ReviewItem) -> None:
    if not item.review.is_open:
        raise ValidationError("This review is closed; its items can no longer change.")


def assign(*, item: ReviewItem, assignee, user, expected_version: int | None = None) -> None:
    initiative = item.review.initiative
    if not may_decide_review(initiative, user):
        raise PermissionDenied(
            "Only a programme manager with no stake in this initiative assigns its items."
        )
    _require_open(item)
    with transaction.atomic():
        _write(item, expected_version, assignee_id=assignee.pk if assignee else None)
        ReviewItemEvent.objects.create(
            item=item, action=ItemAction.ASSIGNED, user=user, at=timezone.now(), assignee=assignee
        )


def check(
    *,
    item: ReviewItem,
    user,
    evidence_text: str = "",
    evidence_url: str = "",
    cost_per_transaction=None,
    monthly_volume=None,
    currency: str = "",
    expected_version: int | None = None,
) -> None:
    """Check an item with its evidence. Only the item's assignee may."""
    _only_assignee(item, user)
    _require_open(item)
    evidence_text, evidence_url = (evidence_text or "").strip(), (evidence_url or "").strip()
    errors = {}
    if not evidence_text and not evidence_url:
        errors["evidence_text"] = "Checking an item needs evidence: a text, a link or both."
    template_item = item.template_item
    if template_item.asks_numbers:
        if cost_per_transaction is None:
            errors["cost_per_transaction"] = "Give the cost per transaction."
        if monthly_volume is None:
            errors["monthly_volume"] = "Give the expected monthly volume."
        if not currency or len(currency.strip()) != 3:
            errors["currency"] = "Give the currency as a three-letter code, e.g. EUR."
    if (
        template_item.system_evidence == SystemEvidence.OPERATIONAL_OWNER
        and item.review.initiative.operational_owner_id is None
    ):
        errors["__all__"] = "Name the initiative's operational owner before checking this item."
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    numbers = {}
    changes = {
        "checked": True,
        "evidence_text": evidence_text,
        "evidence_url": evidence_url,
        "checked_by_id": user.pk,
        "checked_at": now,
    }
    if template_item.asks_numbers:
        changes.update(
            cost_per_transaction=cost_per_transaction,
            monthly_volume=monthly_volume,
            currency=currency.strip().upper(),
        )
        numbers = {
            "cost_per_transaction": str(cost_per_transaction),
            "monthly_volume": str(monthly_volume),
            "currency": currency.strip().upper(),
        }
    with transaction.atomic():
        _write(item, expected_version, **changes)
        ReviewItemEvent.objects.create(
            item=item,
            action=ItemAction.CHECKED,
            user=user,
            at=now,
            evidence_text=evidence_text,
            evidence_url=evidence_url,
            numbers=numbers,
        )


def uncheck(*, item: ReviewItem, user, expected_version: int | None = None) -> None:
    _only_assignee(item, user)
    _require_open(item)
    with transaction.atomic():
        _write(item, expected_version, checked=False, checked_by_id=None, checked_at=None)
        ReviewItemEvent.objects.create(
            item=item,
            action=ItemAction.UNCHECKED,
            user=user,
            at=timezone.now(),
            evidence_text=item.evidence_text,
            evidence_url=item.evidence_url,
        )


def _only_assignee(item: ReviewItem, user) -> None:
    if not user.is_authenticated or item.assignee_id != user.pk:
        raise PermissionDenied("Only the person this item is assigned to may check or uncheck it.")


# Pre-launch work --------------------------------------------------------------------------
def complete_work_item(*, work_item: PreLaunchWorkItem, user) -> None:
    if not (work_item.assignee_id == user.pk or is_programme_manager(user)):
        raise PermissionDenied("Only the assignee or a programme manager closes this work item.")
    if work_item.status == WorkStatus.DONE:
        return
    PreLaunchWorkItem.objects.filter(pk=work_item.pk, status=WorkStatus.OPEN).update(
        status=WorkStatus.DONE, done_by=user, done_at=timezone.now()
    )
    work_item.refresh_from_db()
