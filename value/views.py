"""Budget pages of an initiative: asking for money and deciding a request. Thin: forms in,
services out; every successful POST redirects, a form with errors is shown again (400)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from gates.forms import add_errors
from gates.http import post_only
from gates.stages import LAUNCHED
from portfolio.models import Initiative
from value import permissions, services
from value.forms import BudgetDecisionForm, BudgetRequestForm
from value.models import BudgetKind, BudgetRequest
from value.services import NOT_DECIDING, NOT_REQUESTING


def _posted(request):
    return request.POST if request.method == "POST" else None


def request_create(request, slug: str):
    initiative = get_object_or_404(Initiative, slug=slug)
    if not permissions.may_request(initiative, request.user):
        raise PermissionDenied(NOT_REQUESTING)
    form = BudgetRequestForm(_posted(request), initial=_suggested(initiative))
    if form.is_bound and form.is_valid():
        try:
            made = services.request_budget(
                initiative=initiative, user=request.user, values=form.cleaned_data
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, "Budget requested: the sponsor decides it.")
            return redirect(made)
    return render(
        request,
        "value/request_form.html",
        {"initiative": initiative, "form": form, **_evidence(services.evidence_of(initiative))},
        status=400 if form.is_bound else 200,
    )


def _evidence(evidence: dict) -> dict:
    """The frozen evidence for the template, with its time as a datetime to format."""
    return {"evidence": evidence, "as_of": parse_datetime(evidence.get("as_of") or "")}


def _suggested(initiative) -> dict:
    """What most requests for this initiative say: its value model's currency; once
    launched, upkeep, answered for by whoever runs it."""
    metric = initiative.primary_metric
    initial = {"currency": metric.value_currency if metric is not None else ""}
    if initiative.stage in LAUNCHED:
        initial["kind"] = BudgetKind.RUN
        initial["answerable"] = initiative.operational_owner_id or initiative.business_owner_id
    return initial


def _request(slug: str, request_id: int) -> BudgetRequest:
    return get_object_or_404(
        BudgetRequest.objects.select_related(
            "initiative__sponsor", "requested_by", "answerable", "decision__decided_by"
        ),
        pk=request_id,
        initiative__slug=slug,
    )


def request_detail(request, slug: str, request_id: int, *, form=None, status=200):
    made = _request(slug, request_id)
    may_decide = made.status == "open" and permissions.may_decide(
        made.initiative, request.user, made
    )
    return render(
        request,
        "value/request_detail.html",
        {
            "initiative": made.initiative,
            "made": made,
            **_evidence(made.evidence),
            "may_decide": may_decide,
            "form": form or (BudgetDecisionForm() if may_decide else None),
        },
        status=status,
    )


def _detail_page(request, slug: str, request_id: int) -> str:
    return reverse("budget-request", args=[slug, request_id])


@post_only(_detail_page, "Budget requests are decided with the form on this page.")
def request_decide(request, slug: str, request_id: int):
    made = _request(slug, request_id)
    if not permissions.may_decide(made.initiative, request.user, made):
        raise PermissionDenied(NOT_DECIDING)
    form = BudgetDecisionForm(request.POST)
    if form.is_valid():
        try:
            services.decide(request=made, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, "Decision recorded in the initiative's history.")
            return redirect(made)
    return request_detail(request, slug, request_id, form=form, status=400)
