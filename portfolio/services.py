"""Writes to the portfolio: creating and framing initiatives, reframing and proposals.

Every framing write locks the initiative (gates.locks), records one FramingChange per field
that changed (who, when, old, new, why) and seals it in the audit chain, all in one
transaction. After gate 1 the primary metric's definition is frozen: it changes only by
`reframe`, a recorded decision of a programme manager with no stake.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.text import slugify

from gates import audit, clock, effects
from gates.locks import lock_initiative
from gates.models import GateDecision
from gates.services import seal
from gates.stages import Stage, Transition
from portfolio import permissions
from portfolio.models import (
    FRAMING_FIELDS,
    FramingChange,
    Initiative,
    ProposalStatus,
    ReframeProposal,
    User,
    framing_label,
)

INITIATIVE_FIELDS = FRAMING_FIELDS
PEOPLE_FIELDS = ("sponsor", *permissions.OWNER_FIELDS)
# The primary metric's definition: frozen at gate 1, changed after it only by a reframe.
METRIC_FIELDS = (
    "name",
    "unit",
    "direction",
    "ship_threshold",
    "baseline",
    "aggregation",
    "comparison_window_days",
    "unit_value",
    "value_currency",
    "monthly_volume",
    "volume_source",
)
METRIC_PREFIX = "metric."


def is_frozen(initiative) -> bool:
    """The success definition is frozen once gate 1 has passed (in frame it is still open)."""
    return initiative.stage != Stage.FRAME


def as_text(value) -> str:
    """A field's value as FramingChange stores it: people and units by id, numbers exact."""
    if value is None:
        return ""
    if hasattr(value, "pk"):
        return str(value.pk)
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return str(value)


def _display(field: str, text: str, people: dict[str, str]) -> str:
    if text == "":
        return "—"
    bare = field.removeprefix(METRIC_PREFIX)
    if bare in PEOPLE_FIELDS:
        return people.get(text, f"user {text}")
    if len(text) > 80:
        return text[:77] + "…"
    return text


def _people_names(ids: set[str]) -> dict[str, str]:
    pks = [int(i) for i in ids if i.isdigit()]
    return {str(u.pk): str(u) for u in User.objects.filter(pk__in=pks)}


def _record_changes(
    *, initiative_id: int, changes: list[tuple[str, str, str]], user, reason: str, decision=None
) -> list[FramingChange]:
    """One FramingChange per (field, old, new), each sealed in the audit chain."""
    if not changes:
        return []
    now = decision.decided_at if decision is not None else clock.now()
    people = _people_names(
        {v for f, o, n in changes if f.removeprefix(METRIC_PREFIX) in PEOPLE_FIELDS for v in (o, n)}
    )
    rows = []
    for field, old, new in changes:
        row = FramingChange.objects.create(
            initiative_id=initiative_id,
            field=field,
            old_value=old,
            new_value=new,
            changed_by=user,
            changed_at=now,
            reason=reason,
            decision=decision,
        )
        how = "Reframed" if decision is not None else "Changed"
        audit.record(
            initiative_id=initiative_id,
            kind="framing",
            actor=user,
            at=now,
            summary=(
                f"{how} {framing_label(field).lower()}: {_display(field, old, people)} → "
                f"{_display(field, new, people)}" + (f" ({reason})" if reason else "")
            ),
            obj=row,
        )
        rows.append(row)
    return rows


def _diff(before: dict[str, str], after: dict[str, str]) -> list[tuple[str, str, str]]:
    return [(f, before.get(f, ""), after[f]) for f in after if before.get(f, "") != after[f]]


def _initiative_values(initiative) -> dict[str, str]:
    return {
        f: as_text(getattr(initiative, f"{f}_id" if f in ("business_unit", *PEOPLE_FIELDS) else f))
        for f in INITIATIVE_FIELDS
    }


def _metric_values(metric) -> dict[str, str]:
    if metric is None:
        return {}
    return {METRIC_PREFIX + f: as_text(getattr(metric, f)) for f in METRIC_FIELDS}


@clock.accepts_now
def save_framing(*, initiative_form, metric_form, user, reason: str = "") -> Initiative:
    """Create or update an initiative and its primary metric in one transaction.

    Both forms must be valid. Raises PermissionDenied when the user may not edit the framing
    or change its people, and ValidationError when the change would move the frozen success
    definition, name someone whose role may not own, or change owners past frame without a
    reason. Each changed field is recorded (FramingChange) and sealed in the audit chain.
    """
    initiative = initiative_form.instance
    creating = initiative.pk is None
    if creating and not permissions.may_create_initiative(user):
        raise PermissionDenied("Only programme managers create initiatives.")
    if not creating and not permissions.may_edit_framing(initiative, user):
        raise PermissionDenied("Only programme managers and this initiative's owners edit it.")
    reason = (reason or "").strip()
    data = initiative_form.cleaned_data

    with transaction.atomic():
        if creating:
            initiative = initiative_form.save(commit=False)
            initiative.created_by = user
            # The form built the instance earlier: it is created, and enters frame, now.
            initiative.created_at = initiative.stage_entered_at = clock.now()
            initiative.save()
            current, before, metric_before = initiative, {}, {}
        else:
            # Read what the change is judged against under the lock every framing write takes,
            # the writer's right included: an owner replaced meanwhile edits nothing.
            current = lock_initiative(initiative.pk)
            if not permissions.may_edit_framing(current, user):
                raise PermissionDenied(
                    "Only programme managers and this initiative's owners edit it."
                )
            before = _initiative_values(current)
            metric_before = _metric_values(current.primary_metric)
        after = {f: as_text(data[f]) if f in data else before.get(f, "") for f in INITIATIVE_FIELDS}
        changes = _diff(before, after)
        people_changes = [c for c in changes if c[0] in PEOPLE_FIELDS]
        _check_people(data, changed={field for field, _, _ in people_changes})
        if people_changes and not creating:
            if not permissions.may_change_owners(current, user):
                raise PermissionDenied("Only programme managers change owners and the sponsor.")
            if current.stage != Stage.FRAME and not reason:
                raise ValidationError(
                    {"reason": "Say why the owners or sponsor change: the change is recorded."}
                )
        metric_after = {}
        if metric_form.has_metric():
            metric_after = {
                METRIC_PREFIX + f: as_text(metric_form.cleaned_data.get(f))
                for f in METRIC_FIELDS
                if f in metric_form.cleaned_data
            }
        metric_changes = _diff(metric_before, metric_after)
        if metric_changes and not creating and is_frozen(current):
            raise ValidationError(
                "The success definition has been frozen since gate 1: it changes only through "
                "a recorded reframe by a programme manager with no stake."
            )
        if not creating:
            for f in INITIATIVE_FIELDS:
                if f in data:
                    setattr(current, f, data[f])
            current.save(update_fields=[*(f for f in INITIATIVE_FIELDS if f in data), "updated_at"])
            initiative = current
        if metric_form.has_metric() and (creating or metric_changes):
            metric = metric_form.save(commit=False)
            metric.initiative = initiative
            metric.is_primary = True
            if not metric.slug:
                metric.slug = _free_metric_slug(initiative, metric.name)
            metric.save()
        _record_changes(
            initiative_id=initiative.pk,
            changes=changes + metric_changes,
            user=user,
            reason=reason,
        )
    return initiative


def _check_people(data: dict, *, changed: set[str]) -> None:
    """Whoever is newly named in an owner field must have a role that may own."""
    errors = {}
    for field in permissions.OWNER_FIELDS:
        person = data.get(field) if field in changed else None
        if person is not None and not permissions.may_own(person):
            errors[field] = f"{person} cannot own an initiative: their role is viewer."
    if errors:
        raise ValidationError(errors)


def _free_metric_slug(initiative, name: str) -> str:
    """A slug for a new metric that no other metric of the initiative uses (the DB demands it)."""
    base = slugify(name)[:110] or "metric"
    taken = set(initiative.metrics.values_list("slug", flat=True))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


# Reframing ---------------------------------------------------------------------------------
@clock.accepts_now
def reframe(*, initiative, user, values: dict, rationale: str, proposal=None) -> GateDecision:
    """Change the frozen success definition: a recorded decision, like a gate's.

    `values` holds the new metric definition (the METRIC_FIELDS, cleaned). Only a programme
    manager with no stake may; the initiative must be past frame and not stopped; at least
    one value must change. Records a GateDecision (transition reframe, stage unchanged) with
    the definition before and after, one FramingChange per changed field pointing at it,
    closes `proposal` as applied, and seals everything in the audit chain.
    """
    if not permissions.may_reframe(initiative, user):
        raise PermissionDenied(
            "Only a programme manager with no stake in this initiative reframes it."
        )
    rationale = (rationale or "").strip()
    if not rationale:
        raise ValidationError({"rationale": "Give the rationale for the new success definition."})
    with transaction.atomic():
        current = lock_initiative(initiative.pk)
        if not permissions.may_reframe(current, user):
            raise PermissionDenied(
                "Only a programme manager with no stake in this initiative reframes it."
            )
        if current.stage in (Stage.FRAME, Stage.STOPPED):
            raise ValidationError(
                "Only an initiative past frame, and not stopped, is reframed; in frame, edit "
                "its framing."
            )
        metric = current.primary_metric
        if metric is None:
            raise ValidationError("This initiative has no primary metric to reframe.")
        before = _metric_values(metric)
        after = {METRIC_PREFIX + f: as_text(values[f]) for f in METRIC_FIELDS if f in values}
        changes = _diff(before, after)
        if not changes:
            raise ValidationError("Nothing changes: give at least one new value.")
        now = clock.now()
        decision = GateDecision.objects.create(
            initiative=current,
            transition=Transition.REFRAME,
            from_stage=current.stage,
            to_stage=current.stage,
            decided_by=user,
            decided_at=now,
            rationale=rationale,
            evidence={
                "before": {k.removeprefix(METRIC_PREFIX): v for k, v in before.items()},
                "after": {
                    k.removeprefix(METRIC_PREFIX): after.get(k, v) for k, v in before.items()
                },
                "proposal": proposal.pk if proposal is not None else None,
                "recorded_at": now.isoformat(),
            },
        )
        seal(decision, actor=user)
        for f in METRIC_FIELDS:
            if f in values:
                setattr(metric, f, values[f])
        metric.full_clean(exclude=["initiative", "slug", "latest_snapshot"])
        metric.save()
        _record_changes(
            initiative_id=current.pk,
            changes=changes,
            user=user,
            reason=rationale,
            decision=decision,
        )
        if proposal is not None:
            _close_proposal(proposal, user=user, status=ProposalStatus.APPLIED, note=rationale)
        # Other apps react (metrics recomputes the metric against its new definition).
        effects.run(current, decision)
    return decision


@clock.accepts_now
def propose_reframe(*, initiative, user, values: dict, reason: str) -> ReframeProposal:
    """An owner proposes a new success definition; nothing changes until it is applied."""
    if not permissions.may_propose_reframe(initiative, user):
        raise PermissionDenied("Only this initiative's owners propose a reframe.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the success definition should change."})
    with transaction.atomic():
        current = lock_initiative(initiative.pk)
        if not permissions.may_propose_reframe(current, user):
            raise PermissionDenied("Only this initiative's owners propose a reframe.")
        if not is_frozen(current) or current.stage == Stage.STOPPED:
            raise ValidationError("Only a frozen success definition is changed by a proposal.")
        before = _metric_values(current.primary_metric)
        proposed = {METRIC_PREFIX + f: as_text(values[f]) for f in METRIC_FIELDS if f in values}
        changes = _diff(before, proposed)
        if not changes:
            raise ValidationError("Nothing changes: propose at least one new value.")
        now = clock.now()
        proposal = ReframeProposal.objects.create(
            initiative=current,
            proposed_by=user,
            proposed_at=now,
            changes={f.removeprefix(METRIC_PREFIX): new for f, _, new in changes},
            reason=reason,
        )
        wanted = "; ".join(
            f"{framing_label(f).lower()} {o or '—'} → {n or '—'}" for f, o, n in changes
        )
        audit.record(
            initiative_id=current.pk,
            kind="proposal",
            actor=user,
            at=now,
            summary=f"Proposed a reframe: {wanted} ({reason})",
            payload={"proposal": proposal.pk, "changes": proposal.changes, "reason": reason},
        )
    return proposal


@clock.accepts_now
def decline_proposal(*, proposal: ReframeProposal, user, note: str) -> None:
    if not permissions.may_reframe(proposal.initiative, user):
        raise PermissionDenied(
            "Only a programme manager with no stake in this initiative declines a proposal."
        )
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "Say why the proposal is declined."})
    with transaction.atomic():
        current = lock_initiative(proposal.initiative_id)
        if not permissions.may_reframe(current, user):
            raise PermissionDenied(
                "Only a programme manager with no stake in this initiative declines a proposal."
            )
        _close_proposal(proposal, user=user, status=ProposalStatus.DECLINED, note=note)


def _close_proposal(proposal, *, user, status: str, note: str) -> None:
    now = clock.now()
    closed = ReframeProposal.objects.filter(pk=proposal.pk, status=ProposalStatus.OPEN).update(
        status=status, closed_by=user, closed_at=now
    )
    if not closed:
        raise ValidationError("This proposal was already applied or declined.")
    proposal.refresh_from_db()
    audit.record(
        initiative_id=proposal.initiative_id,
        kind="proposal",
        actor=user,
        at=now,
        summary=f"Reframe proposal by {proposal.proposed_by} {status}: {note}",
        payload={"proposal": proposal.pk, "status": status, "note": note},
    )
