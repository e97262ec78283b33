"""Writes of the readiness review: opening, assigning, checking, deciding, pre-launch work."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from gates import effects
from gates.permissions import may_decide_review
from gates.stages import Transition
from portfolio.roles import Role, is_programme_manager, role_of
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
CURRENCY = re.compile(r"[A-Za-z]{3}")  # an ISO 4217 code
CLOSED = "This review is closed; its items can no longer change."


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
    """The newest checklist version with items; version 1 is reinstalled if there is none.

    A version saved in the admin before its items are added is skipped: a review opened on
    it would have nothing to check, and would lock the version empty.
    """
    template = (
        ChecklistTemplate.objects.filter(
            Exists(ChecklistItemTemplate.objects.filter(template=OuterRef("pk")))
        )
        .order_by("-version")
        .first()
    )
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
    if review is None:
        return
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


@effects.on(Transition.STOP)
def withdraw_review(initiative, decision) -> None:
    """Stopping an initiative closes its open review, so nobody works on it any more and a
    review can open afresh if the initiative is reopened and resubmitted."""
    if ReadinessReview.objects.filter(initiative=initiative, outcome=Outcome.OPEN).exists():
        _close(initiative, decision, Outcome.WITHDRAWN)


def _close(initiative, decision, outcome: str) -> ReadinessReview | None:
    """Close the open review; None when there is none (a history imported without one)."""
    review = (
        ReadinessReview.objects.select_for_update()
        .filter(initiative=initiative, outcome=Outcome.OPEN)
        .first()
    )
    if review is None:
        return None
    review.outcome = outcome
    review.decided_by = decision.decided_by
    review.decided_at = decision.decided_at
    review.decision = decision
    review.save(update_fields=["outcome", "decided_by", "decided_at", "decision"])
    return review


# Items -------------------------------------------------------------------------------------
def _write(item: ReviewItem, expected_version: int | None, **changes) -> None:
    """Apply `changes` only if nobody wrote the item since `expected_version` and its review
    is still open. Call inside a transaction."""
    if expected_version is not None and expected_version != item.version:
        raise Conflict()
    # The review row is locked as the pass or fail decision locks it (_close): a decision
    # taken since this item was loaded is seen here, and one under way waits for this write,
    # so no item changes once its review is decided.
    outcome = (
        ReadinessReview.objects.select_for_update()
        .values_list("outcome", flat=True)
        .get(pk=item.review_id)
    )
    if outcome != Outcome.OPEN:
        raise ReviewClosed(CLOSED)
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
        raise ReviewClosed(CLOSED)


def assign(*, item: ReviewItem, assignee, user, expected_version: int | None = None) -> None:
    initiative = item.review.initiative
    if not may_decide_review(initiative, user):
        raise PermissionDenied(
            "Only a programme manager with no stake in this initiative assigns its items."
        )
    _require_open(item)
    if assignee is not None and role_of(assignee) == Role.VIEWER:
        raise ValidationError(
            {"assignee": f"{assignee} is a viewer: viewers cannot hold checklist items."}
        )
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
        cost_per_transaction = _amount(
            "cost_per_transaction", cost_per_transaction, "Give the cost per transaction.", errors
        )
        monthly_volume = _amount(
            "monthly_volume", monthly_volume, "Give the expected monthly volume.", errors
        )
        if not CURRENCY.fullmatch((currency or "").strip()):
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


def _amount(name: str, value, missing: str, errors: dict):
    """`value` as the item's field stores it (a finite Decimal of its precision, not below
    zero), or None with the problem added to `errors`."""
    if value is None or value == "":
        errors[name] = missing
        return None
    if isinstance(value, float):
        value = str(value)  # 0.04, not the binary float's 0.040000000000000000832...
    try:
        return ReviewItem._meta.get_field(name).clean(value, None)
    except ValidationError as exc:
        errors[name] = exc.messages
        return None


def uncheck(*, item: ReviewItem, user, expected_version: int | None = None) -> None:
    _only_assignee(item, user)
    _require_open(item)
    with transaction.atomic():
        # Only a current copy can say the item is unchecked; a stale one gets the conflict.
        current = ReviewItem.objects.filter(pk=item.pk, version=item.version).exists()
        if current and not item.checked:
            raise ValidationError("This item is not checked.")
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
    # An item given to someone who has since become a viewer: viewers change nothing.
    if role_of(user) == Role.VIEWER:
        raise PermissionDenied("Viewers cannot check or uncheck checklist items.")


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
