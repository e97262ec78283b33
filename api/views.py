"""/api/v1/: the portfolio to read and the gate actions to take, for scripts and tools.

Each endpoint calls the same selectors and services as the page it mirrors, and validates
input with the same forms, so the API is never a second set of rules: a permission, a
criterion or a conflict refuses here exactly as it refuses on the page.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status

from accounts.models import ApiToken
from api import pagination, schemas
from api.problems import Problem, form_errors
from gates import services as gate_services
from gates.criteria import registry
from gates.forms import DecisionForm, add_errors
from gates.stages import Stage, Transition
from pages import listing
from portfolio.models import FRAMING_FIELDS, Initiative
from portfolio.permissions import may_decide_review
from portfolio.queries import possible_owners
from readiness import services as readiness_services
from readiness.forms import AssignForm, CheckForm, VersionForm
from readiness.models import ReviewItem
from readiness.queries import assignable_people
from value import permissions as value_permissions
from value import services as value_services
from value.forms import BudgetRequestForm

router = Router()

PROBLEMS = {code: schemas.ProblemOut for code in (400, 401, 403, 404, 409, 422, 429)}
READ_PROBLEMS = {code: schemas.ProblemOut for code in (400, 401, 404, 429)}
PAGE_SIZE, MAX_PAGE_SIZE = 50, 200


def _writer(request) -> None:
    token: ApiToken = request.auth
    if not token.writes:
        raise Problem(403, "Read-only token", "This token may only read; make a read-write one.")


@router.get(
    "/initiatives",
    response={200: schemas.InitiativePage, **READ_PROBLEMS},
    summary="List initiatives",
    description=(
        "The portfolio as the initiative list shows it, with the same filters and sorts. "
        "Pages follow `next` (cursor pagination): a page never repeats or skips an "
        "initiative because others were added or removed meanwhile."
    ),
)
def list_initiatives(
    request,
    q: str | None = Query(None, max_length=100, description="Words in the title or summary."),
    stage: str | None = Query(None, description="A stage, or `launched` for either launch."),
    unit: str | None = Query(None, description="A business unit's slug."),
    owner: str | None = Query(None, max_length=150, description="An owner: id or username."),
    sponsor: str | None = Query(None, max_length=150, description="A sponsor: id or username."),
    flag: str | None = Query(None, description="`any` or a flag kind."),
    verdict: str | None = Query(
        None, description="The primary metric's verdict, `none`, `no_metric`."
    ),
    progress: str | None = Query(None),
    stop_reason: str | None = Query(None),
    cohort: str | None = Query(None, description="Left framing in a quarter, e.g. 2026Q3."),
    launched_in: str | None = Query(None, description="Launched in a quarter."),
    changed: str | None = Query(None),
    running_cost: str | None = Query(None, description="A currency code, or `none`."),
    sort: str = Query(
        "title", description="title, stage, unit, owner, days, verdict or flags; - reverses."
    ),
    cursor: str | None = Query(None, description="The `next_cursor` of the previous page."),
    limit: int = Query(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
):
    params = {
        name: value
        for name, value in {
            "q": q, "stage": stage, "unit": unit, "owner": owner, "sponsor": sponsor,
            "flag": flag, "verdict": verdict, "progress": progress, "stop_reason": stop_reason,
            "cohort": cohort, "launched_in": launched_in, "changed": changed,
            "running_cost": running_cost,
        }.items()
        if value not in (None, "")
    }  # fmt: skip
    if sort.lstrip("-") not in listing.SORTS:
        raise Problem(
            400,
            "Bad sort",
            f"sort must be one of {', '.join(listing.SORTS)}, optionally after a -.",
            errors={"sort": ["Not a sort of the initiative list."]},
        )
    form = listing.ListFilter(_querydict(params))
    if params and not form.is_valid():
        raise Problem(400, "Bad filter", "A filter has a value the list does not know.",
                      errors=form_errors(form))  # fmt: skip
    filters = {**form.values(), "sort": sort}
    qs, terms = pagination.annotated(listing.ordered(listing.matching(filters), sort), sort)
    if cursor:
        try:
            qs = qs.filter(pagination.after(terms, pagination.decode(cursor, sort)))
        except pagination.BadCursor as exc:
            raise Problem(400, "Bad cursor", str(exc), errors={"cursor": [str(exc)]}) from exc
    aliases = [alias for alias, _, _ in terms]
    found = list(qs.values_list(*aliases)[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    rows = listing.rows([values[-1] for values in found])
    next_cursor = pagination.encode(sort, list(found[-1])) if more else None
    next_url = None
    if next_cursor:
        query = QueryDict(mutable=True)
        query.update({**params, "sort": sort, "limit": str(limit), "cursor": next_cursor})
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return {
        "results": [_summary(request, row) for row in rows],
        "next": next_url,
        "next_cursor": next_cursor,
    }


def _querydict(params: dict) -> QueryDict:
    query = QueryDict(mutable=True)
    query.update(params)
    return query


def _summary(request, row: listing.Row) -> dict:
    return {
        "slug": row.slug,
        "title": row.title,
        "stage": row.stage,
        "stage_label": row.stage_label,
        "business_unit": row.unit,
        "business_owner": row.business_owner,
        "delivery_lead": row.delivery_lead,
        "days_in_stage": row.days_in_stage,
        "primary_verdict": row.primary_verdict,
        "active_flags": [flag.kind for flag in row.active_flags],
        "url": request.build_absolute_uri(row.get_absolute_url()),
    }


def _person(user) -> dict | None:
    if user is None:
        return None
    return {"username": user.username, "name": str(user)}


def _initiative(slug: str) -> Initiative:
    return get_object_or_404(
        Initiative.objects.select_related(
            "business_unit", "sponsor", "business_owner", "operational_owner", "delivery_lead"
        ),
        slug=slug,
    )


@router.get(
    "/initiatives/{slug}",
    response={200: schemas.InitiativeDetail, **READ_PROBLEMS},
    summary="One initiative",
    description=(
        "Its framing, people, metrics with their latest snapshots, the transitions open from "
        "its stage with each criterion's outcome now, flags, decisions (the audit history) "
        "and readiness reviews with their items."
    ),
)
def initiative_detail(request, slug: str):
    initiative = _initiative(slug)
    metrics = initiative.metrics.select_related("latest_snapshot").order_by("-is_primary", "name")
    items = ReviewItem.objects.select_related("template_item", "assignee", "checked_by")
    reviews = initiative.reviews.select_related("template").prefetch_related(
        Prefetch("items", queryset=items)
    )
    transitions = []
    for name in gate_services.available_transitions(initiative):
        outcomes = registry.evaluate(initiative, name)
        transitions.append(
            {
                "transition": name,
                "label": Transition(name).label,
                "you_may": gate_services.may_take(initiative, name, request.user),
                "criteria": [
                    {"key": o.key, "label": o.label, "passed": o.passed, "blocks": o.blocks,
                     "reason": o.reason}
                    for o in outcomes
                ],
            }
        )  # fmt: skip
    framing = {}
    for field in FRAMING_FIELDS:
        value = getattr(initiative, field)
        if field in ("sponsor", "business_owner", "operational_owner", "delivery_lead"):
            continue
        framing[field] = "" if value is None else str(value)
    return {
        "slug": initiative.slug,
        "title": initiative.title,
        "summary": initiative.summary,
        "stage": initiative.stage,
        "stage_label": Stage(initiative.stage).label,
        "stage_entered_at": initiative.stage_entered_at,
        "stop_reason": initiative.stop_reason,
        "business_unit": initiative.business_unit.name if initiative.business_unit else "",
        "sponsor": _person(initiative.sponsor),
        "business_owner": _person(initiative.business_owner),
        "operational_owner": _person(initiative.operational_owner),
        "delivery_lead": _person(initiative.delivery_lead),
        "framing": framing,
        "metrics": [_metric(m) for m in metrics],
        "transitions": transitions,
        "flags": list(initiative.flags.order_by("-raised_at", "-id")),
        "decisions": [
            {
                "transition": d.transition,
                "from_stage": d.from_stage,
                "to_stage": d.to_stage,
                "decided_by": d.decided_by.username,
                "decided_at": d.decided_at,
                "rationale": d.rationale,
                "stop_reason": d.stop_reason,
            }
            for d in initiative.decisions.select_related("decided_by").order_by("decided_at", "id")
        ],
        "reviews": [_review(r) for r in reviews],
        "url": request.build_absolute_uri(initiative.get_absolute_url()),
    }


def _metric(metric) -> dict:
    snapshot = metric.latest_snapshot
    return {
        "name": metric.name, "slug": metric.slug, "unit": metric.unit,
        "is_primary": metric.is_primary, "direction": metric.direction,
        "aggregation": metric.aggregation, "ship_threshold": metric.ship_threshold,
        "comparison_window_days": metric.comparison_window_days,
        "latest_snapshot": None if snapshot is None else {
            "computed_at": snapshot.computed_at, "window_start": snapshot.window_start,
            "window_end": snapshot.window_end, "verdict": snapshot.verdict,
            "summary": snapshot.summary, "pilot_value": snapshot.pilot_value,
            "pilot_count": snapshot.pilot_count, "baseline_value": snapshot.baseline_value,
            "baseline_count": snapshot.baseline_count, "lift": snapshot.lift,
            "confidence": snapshot.confidence,
        },
    }  # fmt: skip


def _review(review) -> dict:
    return {
        "id": review.pk, "opened_at": review.opened_at, "outcome": review.outcome,
        "decided_at": review.decided_at, "checklist_version": review.template.version,
        "items": [_item_out(item) for item in review.items.all()],
    }  # fmt: skip


@router.post(
    "/initiatives/{slug}/transitions/{transition}",
    response={201: schemas.DecisionResult, **PROBLEMS},
    summary="Decide a transition",
    description=(
        "Takes a gate decision as the initiative page does (gates.services.decide): the "
        "person's permission first (403), the rationale and stop reason (400), the stage "
        "you saw (409 if it moved), then every criterion read under the initiative's lock "
        "(422 naming those not met)."
    ),
)
def decide(request, slug: str, transition: str, body: schemas.DecisionIn):
    _writer(request)
    if transition not in Transition.values:
        raise Http404("No such transition.")
    initiative = _initiative(slug)
    if not gate_services.may_take(initiative, transition, request.user):
        raise PermissionDenied(f"You may not {Transition(transition).label.lower()}.")
    form = DecisionForm(body.dict(), transition=transition, prefix=None)
    if not form.is_valid():
        raise Problem(400, "Invalid decision", "The decision is incomplete.",
                      errors=form_errors(form))  # fmt: skip
    try:
        decision = gate_services.decide(
            initiative=initiative,
            transition=transition,
            user=request.user,
            rationale=form.cleaned_data["rationale"],
            stop_reason=form.cleaned_data.get("stop_reason", ""),
            expected_stage=form.cleaned_data["expected_stage"],
        )
    except ValidationError as exc:
        add_errors(form, exc)
        raise Problem(400, "Invalid decision", "The decision was refused as given.",
                      errors=form_errors(form)) from exc  # fmt: skip
    except gate_services.StaleInitiative as exc:
        raise Problem(409, "Stage changed", str(exc)) from exc
    except gate_services.DecisionError as exc:
        raise Problem(422, "Criteria not met", str(exc)) from exc
    return Status(
        201,
        {
            "transition": decision.transition,
            "from_stage": decision.from_stage,
            "to_stage": decision.to_stage,
            "decided_at": decision.decided_at,
            "initiative": initiative.slug,
        },
    )


def _item(slug: str, review_id: int, item_id: int) -> ReviewItem:
    return get_object_or_404(
        ReviewItem.objects.select_related(
            "review__initiative__operational_owner", "template_item", "assignee", "checked_by"
        ),
        pk=item_id,
        review_id=review_id,
        review__initiative__slug=slug,
    )


ITEM = "/initiatives/{slug}/reviews/{review_id}/items/{item_id}"


@router.post(
    f"{ITEM}/assign",
    response={200: schemas.ItemOut, **PROBLEMS},
    summary="Assign a checklist item",
    description="As on the review page: programme managers without a stake (403 otherwise); "
    "`version` must be the item's current one (409).",
)
def assign(request, slug: str, review_id: int, item_id: int, body: schemas.AssignIn):
    _writer(request)
    item = _item(slug, review_id, item_id)
    if not may_decide_review(item.review.initiative, request.user):
        raise PermissionDenied(readiness_services.MANAGERS_ONLY)
    data = body.dict()
    if data["assignee"]:
        person = assignable_people().filter(username=data["assignee"])
        data["assignee"] = person.values_list("pk", flat=True).first() or "unknown"
    form = AssignForm(data)
    if not form.is_valid():
        raise Problem(400, "Invalid assignment", "The assignment is not valid.",
                      errors=form_errors(form))  # fmt: skip
    try:
        readiness_services.assign(
            item=item,
            assignee=form.cleaned_data["assignee"],
            user=request.user,
            expected_version=form.cleaned_data["version"],
            confirm=form.cleaned_data["confirm"],
        )
    except readiness_services.NobodyLeftToDecide as exc:
        raise Problem(409, "Nobody left to decide", " ".join(exc.messages)
                      + " Send confirm: true to assign anyway.") from exc  # fmt: skip
    except readiness_services.Conflict as exc:
        raise Problem(409, "Item changed", str(exc)) from exc
    except ValidationError as exc:
        raise Problem(400, "Refused", " ".join(exc.messages)) from exc
    return Status(200, _item_out(_item(slug, review_id, item_id)))


@router.post(
    f"{ITEM}/check",
    response={200: schemas.ItemOut, **PROBLEMS},
    summary="Check a checklist item",
    description="Only its assignee (403 otherwise), with evidence as on the review page.",
)
def check(request, slug: str, review_id: int, item_id: int, body: schemas.CheckIn):
    _writer(request)
    item = _item(slug, review_id, item_id)
    readiness_services.require_assignee(item, request.user)
    form = CheckForm(
        {k: ("" if v is None else v) for k, v in body.dict().items()},
        asks_numbers=item.template_item.asks_numbers,
    )
    if not form.is_valid():
        raise Problem(400, "Invalid evidence", "The evidence is not valid.",
                      errors=form_errors(form))  # fmt: skip
    data = form.cleaned_data
    try:
        readiness_services.check(
            item=item,
            user=request.user,
            evidence_text=data["evidence_text"],
            evidence_url=data["evidence_url"],
            cost_per_transaction=data.get("cost_per_transaction"),
            monthly_volume=data.get("monthly_volume"),
            currency=data.get("currency", ""),
            expected_version=data["version"],
        )
    except readiness_services.Conflict as exc:
        raise Problem(409, "Item changed", str(exc)) from exc
    except ValidationError as exc:
        add_errors(form, exc)
        raise Problem(400, "Invalid evidence", "The evidence was refused.",
                      errors=form_errors(form)) from exc  # fmt: skip
    return Status(200, _item_out(_item(slug, review_id, item_id)))


@router.post(
    f"{ITEM}/uncheck",
    response={200: schemas.ItemOut, **PROBLEMS},
    summary="Uncheck a checklist item",
    description="Only its assignee, while the review is open.",
)
def uncheck(request, slug: str, review_id: int, item_id: int, body: schemas.UncheckIn):
    _writer(request)
    item = _item(slug, review_id, item_id)
    readiness_services.require_assignee(item, request.user)
    form = VersionForm(body.dict())
    if not form.is_valid():
        raise Problem(400, "Invalid request", "version is required.", errors=form_errors(form))
    try:
        readiness_services.uncheck(
            item=item, user=request.user, expected_version=form.cleaned_data["version"]
        )
    except readiness_services.Conflict as exc:
        raise Problem(409, "Item changed", str(exc)) from exc
    except ValidationError as exc:
        raise Problem(400, "Refused", " ".join(exc.messages)) from exc
    return Status(200, _item_out(_item(slug, review_id, item_id)))


def _item_out(item: ReviewItem) -> dict:
    return {
        "id": item.pk, "key": item.template_item.key, "title": item.template_item.title,
        "assignee": item.assignee.username if item.assignee else None, "checked": item.checked,
        "checked_by": item.checked_by.username if item.checked_by else None,
        "checked_at": item.checked_at, "evidence_text": item.evidence_text,
        "evidence_url": item.evidence_url, "version": item.version,
    }  # fmt: skip


@router.post(
    "/initiatives/{slug}/budget-requests",
    response={201: schemas.BudgetRequestOut, **PROBLEMS},
    summary="Request budget",
    description=(
        "As the request form does (value.services.request_budget): the initiative's owners "
        "and programme managers only (403); the evidence (stage, verdict, value realised "
        "with its interval, running cost, open flags) is frozen on the request. The sponsor "
        "decides it on its page."
    ),
)
def request_budget(request, slug: str, body: schemas.BudgetRequestIn):
    _writer(request)
    initiative = _initiative(slug)
    if not value_permissions.may_request(initiative, request.user):
        raise PermissionDenied(value_services.NOT_REQUESTING)
    data = body.dict()
    person = possible_owners().filter(username=data["answerable"]).values_list("pk", flat=True)
    data["answerable"] = person.first() or "unknown"
    form = BudgetRequestForm(data)
    if not form.is_valid():
        raise Problem(400, "Invalid request", "The budget request is not valid.",
                      errors=form_errors(form))  # fmt: skip
    try:
        made = value_services.request_budget(
            initiative=initiative, user=request.user, values=form.cleaned_data
        )
    except ValidationError as exc:
        add_errors(form, exc)
        raise Problem(400, "Invalid request", "The budget request was refused.",
                      errors=form_errors(form)) from exc  # fmt: skip
    return Status(201, {
        "id": made.pk, "initiative": initiative.slug, "kind": made.kind,
        "amount": made.amount, "currency": made.currency, "starts_on": made.starts_on,
        "ends_on": made.ends_on, "purpose": made.purpose,
        "answerable": made.answerable.username, "requested_by": request.user.username,
        "requested_at": made.requested_at, "evidence": made.evidence,
        "url": request.build_absolute_uri(made.get_absolute_url()),
    })  # fmt: skip
