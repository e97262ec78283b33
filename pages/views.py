"""Pages that show more than one app: the dashboard, the list, the initiative page and its
decisions, the framing forms and the audit export."""

import csv
import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from gates import audit
from gates import services as gate_services
from gates.forms import DecisionForm, add_errors
from gates.http import post_only
from gates.stages import Transition
from metrics.forms import PrimaryMetricForm, ReframeForm
from metrics.models import Metric
from pages import listing, selectors
from pages import queries as page_queries
from portfolio import permissions, queries, services
from portfolio.forms import DeclineForm, InitiativeForm
from portfolio.models import Initiative, ReframeProposal


def home(request):
    """The portfolio dashboard, filtered by business unit and sponsor from the URL."""
    page = selectors.dashboard_page(params=request.GET, user=request.user)
    return render(request, "portfolio/home.html", page.context())


def initiative_list(request):
    page = selectors.list_page(user=request.user, params=request.GET)
    return render(request, "portfolio/initiative_list.html", page.context())


def people_suggest(request):
    """The people a person filter offers as one types (?kind=owner|sponsor&q=...), as JSON."""
    kind = request.GET.get("kind", "")
    if kind not in selectors.PERSON_KINDS:
        return JsonResponse(
            {"error": f"kind must be one of: {', '.join(selectors.PERSON_KINDS)}."}, status=400
        )
    return JsonResponse({"people": selectors.suggest_people(kind, request.GET.get("q", ""))})


def budget_requests(request):
    """Every budget request in scope, filtered from the URL; the dashboard's spend figures
    link here."""
    page = selectors.budget_requests_page(params=request.GET)
    return render(request, "portfolio/budget_requests.html", page.context())


def value_export(request):
    """The dashboard's value section as CSV, one row per launched initiative in scope."""
    rows = selectors.value_export_rows(
        params=request.GET, base_url=request.build_absolute_uri("/").rstrip("/")
    )
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="gantry-value-{stamp}.csv"'
    return response


def initiative_export(request):
    """The filtered list as CSV, safe to open in a spreadsheet."""
    _, filters = selectors.list_filters(request.GET)
    rows = listing.csv_rows(
        listing.initiatives(filters), base_url=request.build_absolute_uri("/").rstrip("/")
    )
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="gantry-initiatives-{stamp}.csv"'
    return response


def initiative_detail(request, slug: str):
    return render_initiative(request, slug)


def render_initiative(request, slug: str, *, bound_form: DecisionForm | None = None, status=200):
    """The initiative page; `bound_form` re-renders a decision form with its errors."""
    initiative = page_queries.initiative_detail(slug).first()
    if initiative is None:
        raise Http404("No such initiative.")
    page = selectors.initiative_page(
        initiative=initiative, user=request.user, bound_form=bound_form
    )
    return render(request, "portfolio/initiative_detail.html", page.context(), status=status)


def initiative_create(request):
    if not permissions.may_create_initiative(request.user):
        raise PermissionDenied("Only programme managers create initiatives.")
    return _framing(request, Initiative(), template_title="New initiative")


def initiative_edit(request, slug: str):
    initiative = get_object_or_404(Initiative, slug=slug)
    if not permissions.may_edit_framing(initiative, request.user):
        raise PermissionDenied("Only programme managers and this initiative's owners edit it.")
    return _framing(request, initiative, template_title=f"Frame {initiative.title}")


def _framing(request, initiative: Initiative, *, template_title: str):
    metric = initiative.primary_metric if initiative.pk else None
    user = request.user
    options = {
        "may_change_people": initiative.pk is None
        or permissions.may_change_owners(initiative, user)
    }
    frozen = initiative.pk is not None and services.is_frozen(initiative)
    data = request.POST if request.method == "POST" else None
    form = InitiativeForm(data, instance=initiative, **options)
    metric_form = PrimaryMetricForm(data, instance=metric, prefix="metric", frozen=frozen)
    status = 200
    if data is not None:
        status = 400
        if form.is_valid() and metric_form.is_valid():
            try:
                saved = services.save_framing(
                    initiative_form=form,
                    metric_form=metric_form,
                    user=user,
                    reason=form.cleaned_data.get("reason", ""),
                )
            except ValidationError as exc:
                add_errors(form, exc)
            else:
                messages.success(request, f"Framing of “{saved.title}” saved.")
                return redirect(saved)
    return render(
        request,
        "portfolio/initiative_form.html",
        {
            "form": form,
            "metric_form": metric_form,
            "initiative": initiative,
            "title": template_title,
            "frozen": frozen,
            "may_reframe": frozen and permissions.may_reframe(initiative, user),
            "may_propose": frozen and permissions.may_propose_reframe(initiative, user),
        },
        status=status,
    )


def _success_definition(request, slug: str, *, propose: bool):
    """The reframe page (programme managers with no stake) or the proposal page (owners)."""
    initiative = get_object_or_404(Initiative, slug=slug)
    user = request.user
    allowed = (
        permissions.may_propose_reframe(initiative, user)
        if propose
        else permissions.may_reframe(initiative, user)
    )
    if not allowed:
        raise PermissionDenied(
            "Only this initiative's owners propose a reframe."
            if propose
            else "Only a programme manager with no stake in this initiative reframes it."
        )
    metric = initiative.primary_metric
    if metric is None or not services.is_frozen(initiative):
        messages.error(request, "Until gate 1 passes, the success definition is edited in place.")
        return redirect("initiative-edit", initiative.slug)
    proposals = list(queries.open_proposals(initiative))
    proposal = None
    if not propose and request.GET.get("proposal"):
        proposal = next((p for p in proposals if str(p.pk) == request.GET["proposal"]), None)
    data = request.POST if request.method == "POST" else None
    initial = dict(proposal.changes) if proposal else {}
    form = ReframeForm(
        data,
        instance=Metric.objects.get(pk=metric.pk),
        initial=initial,
        rationale_label="Why it should change" if propose else "Rationale",
    )
    status = 200
    if data is not None:
        status = 400
        if form.is_valid():
            try:
                if propose:
                    services.propose_reframe(
                        initiative=initiative,
                        user=user,
                        values=form.values(),
                        reason=form.cleaned_data["rationale"],
                    )
                else:
                    chosen = next(
                        (p for p in proposals if str(p.pk) == request.POST.get("proposal")), None
                    )
                    services.reframe(
                        initiative=initiative,
                        user=user,
                        values=form.values(),
                        rationale=form.cleaned_data["rationale"],
                        proposal=chosen,
                    )
            except ValidationError as exc:
                add_errors(form, exc)
            else:
                messages.success(
                    request,
                    "Proposal recorded: a programme manager with no stake decides it."
                    if propose
                    else "Reframe recorded: the new success definition applies from now.",
                )
                return redirect(initiative)
    return render(
        request,
        "portfolio/reframe.html",
        {
            "initiative": initiative,
            "metric": metric,
            "form": form,
            "propose": propose,
            "proposals": proposals,
            "proposal": proposal,
        },
        status=status,
    )


def initiative_reframe(request, slug: str):
    return _success_definition(request, slug, propose=False)


def initiative_propose(request, slug: str):
    return _success_definition(request, slug, propose=True)


def _reframe_page(request, slug: str, **kwargs) -> str:
    return reverse("initiative-reframe", args=[slug])


@post_only(_reframe_page, "Proposals are declined with the form on this page.")
def proposal_decline(request, slug: str, proposal_id: int):
    proposal = get_object_or_404(
        ReframeProposal.objects.select_related("initiative", "proposed_by"),
        pk=proposal_id,
        initiative__slug=slug,
    )
    if not permissions.may_reframe(proposal.initiative, request.user):
        raise PermissionDenied(
            "Only a programme manager with no stake in this initiative declines a proposal."
        )
    form = DeclineForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the proposal is declined.")
    else:
        try:
            services.decline_proposal(
                proposal=proposal, user=request.user, note=form.cleaned_data["note"]
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Proposal declined; the decision is recorded.")
    return redirect("initiative-reframe", slug)


def initiative_audit(request, slug: str, fmt: str):
    """The initiative's audit trail as JSON or CSV, each entry with its chained hash."""
    if fmt not in ("json", "csv"):
        raise Http404("The audit trail is exported as .json or .csv.")
    initiative = get_object_or_404(Initiative, slug=slug)
    entries = queries.audit_trail(initiative)
    _, breaks = audit.verify([initiative.pk])
    stamp = timezone.now()
    filename = f"gantry-audit-{initiative.slug}-{stamp:%Y-%m-%d}"
    if fmt == "json":
        body = {
            "initiative": {"id": initiative.pk, "slug": initiative.slug, "title": initiative.title},
            "exported_at": stamp.isoformat(),
            "chain_intact": not breaks,
            "break": str(breaks[0]) if breaks else None,
            "entries": [audit_json(entry) for entry in entries],
        }
        response = JsonResponse(body, json_dumps_params={"indent": 2, "ensure_ascii": False})
        response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
        return response
    response = StreamingHttpResponse(_audit_csv(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def audit_json(entry) -> dict:
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "kind": entry.kind,
        "actor": None if entry.actor is None else str(entry.actor),
        "actor_id": entry.actor_id,
        "summary": entry.summary,
        "source": entry.source,
        "source_id": entry.source_id,
        "payload": entry.payload,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


AUDIT_COLUMNS = ["seq", "at", "kind", "actor", "summary", "source", "source_id", "payload",
                 "prev_hash", "hash"]  # fmt: skip


def _audit_csv(entries):
    writer = csv.writer(listing.Echo())
    yield writer.writerow(AUDIT_COLUMNS)
    for entry in entries.iterator(chunk_size=500):
        row = audit_json(entry)
        row["payload"] = json.dumps(row["payload"], sort_keys=True, ensure_ascii=False)
        yield writer.writerow([listing.safe_cell(row[c]) for c in AUDIT_COLUMNS])


def _initiative_page(request, slug: str, **kwargs) -> str:
    return reverse("initiative-detail", args=[slug])


@post_only(_initiative_page, "Decisions are taken with the form on this page.")
def decide(request, slug: str, transition: str):
    if transition not in Transition.values:
        raise Http404("No such transition.")
    initiative = get_object_or_404(Initiative, slug=slug)
    # Permission first: a forbidden request answers 403 whatever the form or stage holds.
    if not gate_services.may_take(initiative, transition, request.user):
        raise PermissionDenied(f"You may not {Transition(transition).label.lower()}.")
    form = DecisionForm(request.POST, transition=transition)
    if not form.is_valid():
        return render_initiative(request, slug, bound_form=form, status=400)
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
        return render_initiative(request, slug, bound_form=form, status=400)
    except gate_services.StaleInitiative as exc:
        messages.error(request, str(exc))
        return render_initiative(request, slug, status=409)
    except gate_services.DecisionError as exc:
        messages.error(request, str(exc))
        return render_initiative(request, slug, bound_form=form, status=422)
    messages.success(
        request,
        f"{decision.get_transition_display()} recorded: "
        f"{initiative.title} is now {initiative.where}.",
    )
    return redirect(initiative)
