"""Writes of the readiness review: opening, assigning, checking, deciding, pre-launch work.

Every write that changes evidence a gate reads (assigning, unassigning, checking,
unchecking, completing work) runs in one transaction that locks the initiative first
(gates.locks, the lock `decide` holds while it evaluates the gate), then the review row,
re-reads the item under those locks, writes it with an event row, and seals the event in the
initiative's audit chain. A decision therefore sees an item either before or after a write,
never half of one, and no item changes once its review is decided.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef

from gates import audit, clock, effects, events
from gates.locks import lock_initiative
from gates.stages import Transition
from portfolio.permissions import may_decide_review, may_own
from portfolio.roles import Role, is_programme_manager, role_of
from readiness import queries
from readiness.defaults import install_version_1
from readiness.models import (
    ChecklistItemTemplate,
    ChecklistTemplate,
    ItemAction,
    PreLaunchWorkItem,
    ReadinessReview,
    ReviewItem,
    ReviewItemEvent,
    ReviewOutcome,
    SystemEvidence,
    WorkItemAction,
    WorkItemEvent,
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


class NobodyLeftToDecide(ValidationError):
    """The assignment would leave no programme manager who may decide the review; it is
    made only when the person assigning confirms it (`confirm=True`)."""


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
    _close(initiative, decision, ReviewOutcome.PASSED)


@effects.on(Transition.FAIL_REVIEW)
def record_fail(initiative, decision) -> None:
    """Every unchecked item becomes open pre-launch work for that item's assignee."""
    review = _close(initiative, decision, ReviewOutcome.FAILED)
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
    if ReadinessReview.objects.filter(initiative=initiative, outcome=ReviewOutcome.OPEN).exists():
        _close(initiative, decision, ReviewOutcome.WITHDRAWN)


def _close(initiative, decision, outcome: str) -> ReadinessReview | None:
    """Close the open review; None when there is none (a history imported without one)."""
    review = (
        ReadinessReview.objects.select_for_update()
        .filter(initiative=initiative, outcome=ReviewOutcome.OPEN)
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
MANAGERS_ONLY = "Only a programme manager with no stake in this initiative assigns its items."


def _lock(item: ReviewItem, expected_version: int | None):
    """Lock the initiative, then the review; return (initiative, item) as they are now.

    Call first inside the write's transaction. The initiative lock is the one `decide` takes
    before it evaluates the gate, in the same order (initiative, then review), so item writes
    and decisions serialise without deadlocks. Everything a rule reads (the review's outcome,
    the item's version and assignee, the initiative's owners) is read under these locks.
    """
    initiative = _lock_open_review(item.review)
    current = ReviewItem.objects.select_related("template_item", "assignee").get(pk=item.pk)
    loaded = expected_version if expected_version is not None else item.version
    if loaded != current.version:
        raise Conflict()
    return initiative, current


def _lock_open_review(review):
    """Lock the initiative, then the review (the order `decide` takes them in); refuse a
    review that is no longer open. Returns the initiative as it is now."""
    initiative = lock_initiative(review.initiative_id)
    outcome = (
        ReadinessReview.objects.select_for_update()
        .values_list("outcome", flat=True)
        .get(pk=review.pk)
    )
    if outcome != ReviewOutcome.OPEN:
        raise ReviewClosed(CLOSED)
    return initiative


def _update(item: ReviewItem, current: ReviewItem, **changes) -> None:
    """Write `changes` and a new version; `item` (the caller's copy) is brought up to date."""
    # Under the locks nobody else writes the item; the version guard stays as a backstop for
    # a writer that forgot the lock.
    updated = ReviewItem.objects.filter(pk=current.pk, version=current.version).update(
        version=current.version + 1, **changes
    )
    if not updated:
        raise Conflict()
    for field in ReviewItem._meta.concrete_fields:
        setattr(item, field.attname, getattr(current, field.attname))
    for name, value in changes.items():
        setattr(item, name, value)
    item.version = current.version + 1


def _record(item: ReviewItem, *, action: str, user, at, summary: str, **fields) -> ReviewItemEvent:
    """The item's event row, sealed in the initiative's audit chain in the same transaction."""
    event = ReviewItemEvent.objects.create(item=item, action=action, user=user, at=at, **fields)
    audit.record(
        initiative_id=item.review.initiative_id,
        kind="review_event",
        actor=user,
        at=at,
        summary=summary,
        obj=event,
    )
    events.emit(*_said(item, event))
    return event


def _said(item: ReviewItem, event: ReviewItemEvent) -> list[events.Event]:
    """What people hear of an item event: the assignee of an assignment, the person who lost
    the item, and the deciders once the last item of the review is checked."""
    base = {
        "at": event.at,
        "initiative_id": item.review.initiative_id,
        "actor_id": event.user_id,
    }
    data = {"item": item.pk, "review": item.review_id, "title": item.template_item.title}
    said = []
    if event.action == ItemAction.ASSIGNED:
        said.append(
            events.Event(
                kind="item_assigned",
                key=f"item-event:{event.pk}",
                data={**data, "to": event.assignee_id},
                **base,
            )
        )
    if event.action in (ItemAction.ASSIGNED, ItemAction.UNASSIGNED) and event.previous_assignee_id:
        said.append(
            events.Event(
                kind="item_unassigned",
                key=f"item-event:{event.pk}:from",
                data={**data, "from": event.previous_assignee_id, "to": event.assignee_id},
                **base,
            )
        )
    if event.action == ItemAction.CHECKED and not (
        ReviewItem.objects.filter(review_id=item.review_id, checked=False).exists()
    ):
        said.append(
            events.Event(kind="review_ready", key=f"review-ready:{event.pk}", data=data, **base)
        )
    return said


def _title(item: ReviewItem) -> str:
    return f"“{item.template_item.title}”"


def _require_manager(initiative, user) -> None:
    if not may_decide_review(initiative, user):
        raise PermissionDenied(MANAGERS_ONLY)


def names(people) -> str:
    """ "Ana Ruiz", "Ana Ruiz and Tomas Novak", "Ana Ruiz, Tomas Novak and Li Wei"."""
    people = [str(p) for p in people]
    if len(people) < 2:
        return "".join(people)
    return f"{', '.join(people[:-1])} and {people[-1]}"


def _deciders_left(initiative, assignee, *, confirm: bool) -> str | None:
    """The warning when `assignee` may decide the review now and would lose that right by
    holding an item; NobodyLeftToDecide when nobody would be left, unless confirmed."""
    deciders = queries.eligible_deciders(initiative)
    if not any(person.pk == assignee.pk for person in deciders):
        return None
    remaining = [person for person in deciders if person.pk != assignee.pk]
    warning = after_assigning(assignee, remaining, initiative)
    if not remaining and not confirm:
        raise NobodyLeftToDecide(warning)
    return warning


def after_assigning(assignee, remaining: list, initiative) -> str:
    """What giving an item to `assignee`, who may decide the review now, leaves behind."""
    lost = (
        f"{assignee} would hold a stake in this review and could no longer decide it, "
        "even if the item were taken back."
    )
    if not remaining:
        return (
            f"After this, nobody may decide this review: {lost} No other programme manager "
            f"is free of a stake in {initiative}; an administrator would have to add one."
        )
    if len(remaining) == 1:
        return f"{lost} After this, only {remaining[0]} may decide this review."
    return f"{lost} After this, {names(remaining)} may decide this review."


@clock.accepts_now
def assign(
    *,
    item: ReviewItem,
    assignee,
    user,
    expected_version: int | None = None,
    confirm: bool = False,
) -> str | None:
    """Give the item to `assignee` (None unassigns it: see `unassign`).

    Holding an item is a stake in the review for as long as it stays open, so assigning a
    programme manager who may decide it takes that right away for good. When that leaves
    nobody who may decide, NobodyLeftToDecide is raised unless `confirm` is true. Returns
    the warning to show the person assigning when the assignee loses the right to decide,
    else None.
    """
    if assignee is None:
        return unassign(item=item, user=user, expected_version=expected_version)
    _require_manager(item.review.initiative, user)
    if not may_own(assignee):
        raise ValidationError({"assignee": _cannot_hold(assignee)})
    with transaction.atomic():
        initiative, current = _lock(item, expected_version)
        _require_manager(initiative, user)
        warning = _deciders_left(initiative, assignee, confirm=confirm)
        _give(item, current, assignee, user=user, at=clock.now())
    return warning


def _give(item: ReviewItem, current: ReviewItem, assignee, *, user, at) -> None:
    """Write the assignment and its event (the caller holds the locks)."""
    previous = current.assignee
    _update(item, current, assignee_id=assignee.pk)
    what = f"assigned to {assignee}" + (f" (was {previous})" if previous else "")
    _record(
        item,
        action=ItemAction.ASSIGNED,
        user=user,
        at=at,
        assignee=assignee,
        previous_assignee=previous,
        summary=f"{_title(item)} {what} by {user}",
    )


@clock.accepts_now
def assign_many(
    *, review, versions: dict[int, int], assignee, user, confirm: bool = False
) -> str | None:
    """Give several items of one open review to `assignee` in one write: every item or, on
    any refusal, none.

    `versions` maps each item's id to the version the person saw; an item changed since
    refuses the whole assignment (Conflict). The rules are `assign`'s, read once under the
    same locks: the assignee must be able to hold items, and an assignment that would leave
    nobody to decide the review needs `confirm`. Items already held by the assignee are left
    as they are. Returns the warning to show, as `assign` does.
    """
    if not versions:
        raise ValidationError({"items": "Choose at least one item to assign."})
    _require_manager(review.initiative, user)
    if not may_own(assignee):
        raise ValidationError({"assignee": _cannot_hold(assignee)})
    with transaction.atomic():
        initiative = _lock_open_review(review)
        _require_manager(initiative, user)
        items = list(
            ReviewItem.objects.select_related("template_item", "assignee", "review")
            .filter(review=review, pk__in=versions)
            .order_by("pk")
        )
        if len(items) != len(versions):
            raise ValidationError({"items": "An item chosen is not part of this review."})
        if any(item.version != versions[item.pk] for item in items):
            raise Conflict()
        warning = _deciders_left(initiative, assignee, confirm=confirm)
        now = clock.now()
        for item in items:
            if item.assignee_id != assignee.pk:
                _give(item, item, assignee, user=user, at=now)
    return warning


def _cannot_hold(person) -> str:
    if not person.is_active:
        return f"{person} is no longer active and cannot hold checklist items."
    if role_of(person) == Role.VIEWER:
        return f"{person} is a viewer: viewers cannot hold checklist items."
    return f"{person} has no role in Gantry and cannot hold checklist items."


@clock.accepts_now
def unassign(*, item: ReviewItem, user, expected_version: int | None = None) -> str | None:
    """Take the item back from its assignee, so it can be given to someone else.

    The former assignee keeps their stake: having held an item of the open review still bars
    them from deciding it. Returns a note saying so when they are a programme manager.
    """
    _require_manager(item.review.initiative, user)
    with transaction.atomic():
        initiative, current = _lock(item, expected_version)
        _require_manager(initiative, user)
        previous = current.assignee
        if previous is None:
            raise ValidationError("This item is not assigned to anyone.")
        _update(item, current, assignee_id=None)
        _record(
            item,
            action=ItemAction.UNASSIGNED,
            user=user,
            at=clock.now(),
            previous_assignee=previous,
            summary=f"{_title(item)} unassigned from {previous} by {user}",
        )
    if is_programme_manager(previous):
        return f"{previous} held this item while the review was open, so still may not decide it."
    return None


@clock.accepts_now
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
    """Check an item with its evidence. Only the item's assignee may, and not as a viewer."""
    require_assignee(item, user)
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
    if _needs_operational_owner(item, item.review.initiative):
        errors["__all__"] = NO_OPERATIONAL_OWNER
    if errors:
        raise ValidationError(errors)
    now = clock.now()
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
        initiative, current = _lock(item, expected_version)
        require_assignee(current, user)
        # Read again under the lock: the owner may have been removed since the page loaded.
        if _needs_operational_owner(current, initiative):
            raise ValidationError({"__all__": NO_OPERATIONAL_OWNER})
        _update(item, current, **changes)
        _record(
            item,
            action=ItemAction.CHECKED,
            user=user,
            at=now,
            evidence_text=evidence_text,
            evidence_url=evidence_url,
            numbers=numbers,
            summary=f"{_title(item)} checked by {user}",
        )


NO_OPERATIONAL_OWNER = "Name the initiative's operational owner before checking this item."


def _needs_operational_owner(item: ReviewItem, initiative) -> bool:
    return (
        item.template_item.system_evidence == SystemEvidence.OPERATIONAL_OWNER
        and initiative.operational_owner_id is None
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


@clock.accepts_now
def uncheck(*, item: ReviewItem, user, expected_version: int | None = None) -> None:
    require_assignee(item, user)
    with transaction.atomic():
        # The lock comes first: a pass_review deciding now has already read this item as
        # checked, so the uncheck waits for it and then finds the review closed.
        _, current = _lock(item, expected_version)
        require_assignee(current, user)
        if not current.checked:
            raise ValidationError("This item is not checked.")
        _update(item, current, checked=False, checked_by_id=None, checked_at=None)
        _record(
            item,
            action=ItemAction.UNCHECKED,
            user=user,
            at=clock.now(),
            evidence_text=current.evidence_text,
            evidence_url=current.evidence_url,
            summary=f"{_title(item)} unchecked by {user}",
        )


def require_assignee(item: ReviewItem, user) -> None:
    """Only the item's assignee checks or unchecks it, and never as a viewer."""
    if not user.is_authenticated or item.assignee_id != user.pk:
        raise PermissionDenied("Only the person this item is assigned to may check or uncheck it.")
    # The role bounds the power: an item given to someone who has since become a viewer (or
    # lost every role, or left) changes nothing in their hands.
    if not may_own(user):
        raise PermissionDenied("Viewers cannot check or uncheck checklist items.")


# Pre-launch work --------------------------------------------------------------------------
def may_complete(work_item: PreLaunchWorkItem, user) -> bool:
    """Its assignee (as an owner, programme manager or executive, never a viewer) or any
    programme manager."""
    if not (user.is_authenticated and user.is_active):
        return False
    return is_programme_manager(user) or (work_item.assignee_id == user.pk and may_own(user))


WORK_PEOPLE_ONLY = "Only the assignee or a programme manager closes or reopens this work item."


@clock.accepts_now
def complete_work_item(
    *, work_item: PreLaunchWorkItem, user, evidence_text: str = "", evidence_url: str = ""
) -> None:
    """Mark the work done, with the evidence that it is; gate 4 reads whether any is open, so
    it takes the initiative's lock and is sealed in the audit chain. Done twice is done once."""
    evidence_text, evidence_url = (evidence_text or "").strip(), (evidence_url or "").strip()
    if not evidence_text and not evidence_url:
        raise ValidationError(
            {"evidence_text": "Say what shows the work is done: a text, a link or both."}
        )
    _move_work(
        work_item,
        user=user,
        source=WorkStatus.OPEN,
        action=WorkItemAction.DONE,
        evidence_text=evidence_text,
        evidence_url=evidence_url,
        summary="Pre-launch work “{title}” done by {user}",
    )


@clock.accepts_now
def reopen_work_item(*, work_item: PreLaunchWorkItem, user, reason: str) -> None:
    """Open done work again (it was not done after all); gate 4 waits for it once more."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the work is reopened."})
    _move_work(
        work_item,
        user=user,
        source=WorkStatus.DONE,
        action=WorkItemAction.REOPENED,
        evidence_text=reason,
        evidence_url="",
        summary="Pre-launch work “{title}” reopened by {user}: " + reason,
    )


def _move_work(work_item, *, user, source, action, evidence_text, evidence_url, summary) -> None:
    if not may_complete(work_item, user):
        raise PermissionDenied(WORK_PEOPLE_ONLY)
    with transaction.atomic():
        lock_initiative(work_item.initiative_id)
        current = PreLaunchWorkItem.objects.select_for_update().get(pk=work_item.pk)
        if not may_complete(current, user):
            raise PermissionDenied(WORK_PEOPLE_ONLY)
        if current.status == source:
            now = clock.now()
            done = action == WorkItemAction.DONE
            PreLaunchWorkItem.objects.filter(pk=current.pk).update(
                status=WorkStatus.DONE if done else WorkStatus.OPEN,
                done_by=user if done else None,
                done_at=now if done else None,
            )
            event = WorkItemEvent.objects.create(
                work_item=current,
                action=action,
                user=user,
                at=now,
                evidence_text=evidence_text,
                evidence_url=evidence_url,
            )
            audit.record(
                initiative_id=current.initiative_id,
                kind="work_item",
                actor=user,
                at=now,
                summary=summary.format(title=current.title, user=user)[:500],
                obj=event,
            )
    work_item.refresh_from_db()
