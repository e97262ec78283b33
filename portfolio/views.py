"""Portfolio pages: home, initiative list, initiative page, framing forms. Thin by design."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from gates import permissions, services
from gates.criteria import registry
from gates.forms import DecisionForm
from gates.stages import NEXT_GATE, PATH, Stage, Transition
from metrics.charts import trend
from metrics.models import Verdict
from metrics.queries import recent_snapshots
from portfolio import dashboard, health, listing, queries
from portfolio.forms import DashboardFilter, InitiativeForm, PrimaryMetricForm
from portfolio.models import Initiative
from portfolio.services import save_framing
from readiness.queries import reviews_of


def home(request):
    """The portfolio dashboard, filtered by business unit and sponsor from the URL."""
    form = DashboardFilter(request.GET or None)
    filters = form.values()
    unit, sponsor = filters.get("unit"), filters.get("sponsor")
    figures = dashboard.cached_figures(unit=unit, sponsor=sponsor)
    return render(
        request,
        "portfolio/home.html",
        {
            **figures,
            "scope": _query(filters),
            "selected_unit": unit.slug if unit else "",
            "selected_sponsor": sponsor.pk if sponsor else None,
        },
    )


def _query(filters: dict) -> str:
    """The dashboard's scope as list filters, so its numbers link to the initiatives."""
    params = {}
    if filters.get("unit"):
        params["unit"] = filters["unit"].slug
    if filters.get("sponsor"):
        params["sponsor"] = filters["sponsor"].pk
    return urlencode(params)


def initiative_list(request):
    form = listing.ListFilter(request.GET or None)
    filters = form.values()
    qs = listing.initiatives(filters)
    page = Paginator(listing.with_flags(qs), 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    sort = filters.get("sort") or "title"
    return render(
        request,
        "portfolio/initiative_list.html",
        {
            "form": form,
            "page": page,
            "query": params.urlencode(),
            "sort": sort,
            "sort_links": _sort_links(params, sort),
            "columns": LIST_COLUMNS,
            "verdict_labels": Verdict.choices,
            "filtered": any(v for k, v in filters.items() if k != "sort"),
            "may_create": permissions.may_create_initiative(request.user),
        },
    )


LIST_COLUMNS = [
    ("title", "Initiative", ""),
    ("stage", "Stage", ""),
    ("unit", "Business unit", ""),
    ("owner", "Business owner", ""),
    ("", "Delivery lead", ""),
    ("days", "Days in stage", "num"),
    ("verdict", "Metric status", ""),
    ("flags", "Flags", ""),
]


def _sort_links(params, current: str) -> dict[str, str]:
    """For each sortable column, the query string that sorts by it (toggling direction)."""
    links = {}
    for name in listing.SORTS:
        query = params.copy()
        query["sort"] = f"-{name}" if current == name else name
        links[name] = query.urlencode()
    return links


def initiative_export(request):
    """The filtered list as CSV, safe to open in a spreadsheet."""
    filters = listing.ListFilter(request.GET or None).values()
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
    initiative = queries.initiative_detail(slug).first()
    if initiative is None:
        raise Http404("No such initiative.")
    user = request.user
    next_gate = NEXT_GATE.get(initiative.stage)
    outcomes = {}
    if next_gate:
        outcomes[next_gate] = registry.evaluate(initiative, next_gate)
    actions = []
    # The forward gate first, the ways back or out after it.
    ordered = sorted(services.user_transitions(initiative, user), key=lambda n: n != next_gate)
    for name in ordered:
        if name not in outcomes:
            outcomes[name] = registry.evaluate(initiative, name)
        form = (
            bound_form
            if bound_form is not None and bound_form.transition == name
            else DecisionForm(transition=name, initial={"expected_stage": initiative.stage})
        )
        actions.append(
            {
                "transition": Transition(name),
                "form": form,
                "outcomes": outcomes[name],
                "blocked": any(o.blocks for o in outcomes[name]),
                "open": form is bound_form,
            }
        )
    context = {
        "initiative": initiative,
        "stepper": _stepper(initiative),
        "next_gate": Transition(next_gate) if next_gate else None,
        "next_outcomes": outcomes.get(next_gate, []),
        "actions": actions,
        "decisions": initiative.decisions.all(),
        "metrics": _metric_panels(initiative),
        "feeds": initiative.feeds.all(),
        "reviews": reviews_of(initiative),
        "work_items": initiative.work_items.select_related("assignee"),
        "may_edit": permissions.may_edit_framing(initiative, user),
        "may_manage_feeds": permissions.may_manage_feeds(initiative, user),
    }
    return render(request, "portfolio/initiative_detail.html", context, status=status)


def _metric_panels(initiative) -> list[dict]:
    metrics = list(initiative.metrics.all())
    history = recent_snapshots(m.pk for m in metrics)
    return [
        {
            "metric": m,
            "snapshot": m.latest_snapshot,
            "history": history.get(m.pk, []),
            "chart": trend(
                history.get(m.pk, []),
                threshold=None if m.ship_threshold is None else float(m.ship_threshold),
                baseline=None if m.baseline is None else float(m.baseline),
            ),
        }
        for m in metrics
    ]


def _stepper(initiative) -> list[dict]:
    """The path's stages marked done, current or ahead; a stopped initiative shows where."""
    stage = initiative.stage
    stopped = stage == Stage.STOPPED
    if stopped:
        last = next(iter(initiative.decisions.all()), None)
        stage = last.from_stage if last else Stage.FRAME
    reached = PATH.index(stage)
    here = "stopped" if stopped else "current"
    return [
        {
            "label": f"Stopped in {s.label.lower()}" if stopped and i == reached else s.label,
            "state": "done" if i < reached else here if i == reached else "ahead",
        }
        for i, s in enumerate(PATH)
    ]


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
    if request.method == "POST":
        form = InitiativeForm(request.POST, instance=initiative)
        metric_form = PrimaryMetricForm(request.POST, instance=metric, prefix="metric")
        if form.is_valid() and metric_form.is_valid():
            saved = save_framing(initiative_form=form, metric_form=metric_form, user=request.user)
            messages.success(request, f"Framing of “{saved.title}” saved.")
            return redirect(saved)
        status = 400
    else:
        form = InitiativeForm(instance=initiative)
        metric_form = PrimaryMetricForm(instance=metric, prefix="metric")
        status = 200
    return render(
        request,
        "portfolio/initiative_form.html",
        {
            "form": form,
            "metric_form": metric_form,
            "initiative": initiative,
            "title": template_title,
        },
        status=status,
    )


@login_not_required
def healthz(request):
    report = health.report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
