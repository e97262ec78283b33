"""Writes of the value app: requesting budget and deciding a request.

Each write takes the initiative's row lock (gates.locks) and re-reads under it what it is
judged on (the writer's right, the stage, whether the request is still open), writes its
append-only rows and seals them in the audit chain, all in one transaction.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from gates import audit, clock, events
from gates.locks import lock_initiative
from gates.stages import Stage
from portfolio.models import Initiative, PurgatoryFlag
from portfolio.permissions import may_own
from readiness.queries import running_costs
from value import permissions
from value.models import BudgetDecision, BudgetKind, BudgetLine, BudgetRequest, Outcome
from value.realised import CENT, primary_of, value_of, with_primary

NOT_REQUESTING = "Only this initiative's owners and programme managers request budget."
NOT_DECIDING = "Only the initiative's sponsor decides its budget requests, and never their own."


def evidence_of(initiative: Initiative) -> dict:
    """What a request rests on, as it stands now: stage, the primary metric's latest
    verdict, value realised with its interval, running cost and the open flags."""
    row = with_primary(Initiative.objects.filter(pk=initiative.pk)).get()
    metric = primary_of(row)
    value = value_of(row, metric, running_costs([row.pk]).get(row.pk))
    snapshot = metric.latest_snapshot if metric is not None else None
    flags = PurgatoryFlag.objects.filter(initiative=initiative, cleared_at__isnull=True).order_by(
        "kind"
    )
    return {
        "as_of": clock.now().isoformat(),
        "stage": initiative.stage,
        "stage_label": initiative.get_stage_display(),
        "metric": None
        if metric is None
        else {"id": metric.pk, "name": metric.name, "unit": metric.unit},
        "snapshot": None
        if snapshot is None
        else {
            "id": snapshot.pk,
            "verdict": snapshot.verdict,
            "verdict_label": snapshot.get_verdict_display(),
            "summary": snapshot.summary,
            "computed_at": snapshot.computed_at.isoformat(),
        },
        "value": value.as_evidence(),
        "flags": [
            {"kind": f.kind, "label": f.get_kind_display(), "reason": f.reason} for f in flags
        ],
    }


def _clean_request(values: dict) -> dict:
    """The request's fields, checked; ValidationError names every bad one."""
    errors = {}
    kind = values.get("kind")
    if kind not in BudgetKind.values:
        errors["kind"] = "Choose build or run / upkeep."
    try:
        amount = Decimal(str(values.get("amount", "")))
    except (InvalidOperation, ValueError):
        amount = None
    if amount is None or not amount.is_finite():
        errors["amount"] = "Give the amount as a number, e.g. 12000.00."
    elif amount <= 0:
        errors["amount"] = "The amount must be more than zero."
    elif amount != amount.quantize(CENT) or amount >= Decimal("1e12"):
        errors["amount"] = "Give the amount in whole cents, below 1,000,000,000,000."
    currency = str(values.get("currency") or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        errors["currency"] = "Give the currency as a three-letter code, e.g. EUR."
    starts, ends = values.get("starts_on"), values.get("ends_on")
    if not isinstance(starts, date):
        errors["starts_on"] = "Give the first day of the period."
    if not isinstance(ends, date):
        errors["ends_on"] = "Give the last day of the period."
    elif isinstance(starts, date) and ends < starts:
        errors["ends_on"] = "The period cannot end before it starts."
    purpose = str(values.get("purpose") or "").strip()
    if not purpose:
        errors["purpose"] = "Say what the money is for."
    answerable = values.get("answerable")
    if answerable is None:
        errors["answerable"] = "Name the person answerable for the money."
    elif not may_own(answerable):
        errors["answerable"] = f"{answerable} cannot answer for a budget: their role is viewer."
    if errors:
        raise ValidationError(errors)
    return {
        "kind": kind,
        "amount": amount.quantize(CENT),
        "currency": currency,
        "starts_on": starts,
        "ends_on": ends,
        "purpose": purpose,
        "answerable": answerable,
    }


@clock.accepts_now
def request_budget(*, initiative, user, values: dict) -> BudgetRequest:
    """Ask the sponsor for money, with the evidence frozen as it stands now."""
    if not permissions.may_request(initiative, user):
        raise PermissionDenied(NOT_REQUESTING)
    cleaned = _clean_request(values)
    with transaction.atomic():
        current = lock_initiative(initiative.pk)
        if not permissions.may_request(current, user):
            raise PermissionDenied(NOT_REQUESTING)
        if current.stage == Stage.STOPPED:
            raise ValidationError("A stopped initiative takes no budget; reopen it first.")
        request = BudgetRequest.objects.create(
            initiative=current,
            requested_by=user,
            requested_at=clock.now(),
            evidence=evidence_of(current),
            **cleaned,
        )
        audit.record(
            initiative_id=current.pk,
            kind="budget",
            actor=user,
            at=request.requested_at,
            summary=request.audit_summary(),
            obj=request,
        )
        events.emit(
            events.Event(
                kind="budget_requested",
                key=f"budget-request:{request.pk}",
                at=request.requested_at,
                initiative_id=current.pk,
                actor_id=user.pk,
                data={"request": request.pk, "summary": request.audit_summary()},
            )
        )
    return request


@clock.accepts_now
def decide(*, request: BudgetRequest, user, outcome: str, rationale: str) -> BudgetDecision:
    """The sponsor approves (opening the budget line) or rejects a request, with a rationale."""
    if outcome not in Outcome.values:
        raise ValidationError({"outcome": "Approve or reject."})
    rationale = (rationale or "").strip()
    if not rationale:
        raise ValidationError({"rationale": "Give the rationale for the decision."})
    if not permissions.may_decide(request.initiative, user, request):
        raise PermissionDenied(NOT_DECIDING)
    with transaction.atomic():
        # Under the lock: the sponsor named now, and whether another decision came first.
        current = lock_initiative(request.initiative_id)
        if not permissions.may_decide(current, user, request):
            raise PermissionDenied(NOT_DECIDING)
        if BudgetDecision.objects.filter(request=request).exists():
            raise ValidationError("This request has already been decided.")
        now = clock.now()
        try:
            with transaction.atomic():
                decision = BudgetDecision.objects.create(
                    request=request, outcome=outcome, decided_by=user, decided_at=now,
                    rationale=rationale,
                )  # fmt: skip
        except IntegrityError as exc:
            raise ValidationError("This request has already been decided.") from exc
        audit.record(
            initiative_id=current.pk,
            kind="budget",
            actor=user,
            at=now,
            summary=decision.audit_summary(),
            obj=decision,
        )
        if outcome == Outcome.APPROVED:
            line = BudgetLine.objects.create(
                initiative=current,
                kind=request.kind,
                amount=request.amount,
                currency=request.currency,
                starts_on=request.starts_on,
                ends_on=request.ends_on,
                answerable=request.answerable,
                request=request,
                opened_at=now,
            )
            audit.record(
                initiative_id=current.pk,
                kind="budget",
                actor=user,
                at=now,
                summary=line.audit_summary(),
                obj=line,
            )
        events.emit(
            events.Event(
                kind="budget_decided",
                key=f"budget-decision:{decision.pk}",
                at=now,
                initiative_id=current.pk,
                actor_id=user.pk,
                data={
                    "request": request.pk,
                    "requested_by": request.requested_by_id,
                    "answerable": request.answerable_id,
                    "outcome": outcome,
                    "summary": decision.audit_summary(),
                },
            )
        )
    return decision
