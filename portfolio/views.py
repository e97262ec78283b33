"""Portfolio pages: home, initiative list, initiative page, framing forms. Thin by design."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render

from gates import permissions, services
from gates.criteria import registry
from gates.forms import DecisionForm
from gates.stages import NEXT_GATE, PATH, Stage, Transition
from metrics.charts import trend
from metrics.queries import recent_snapshots
from portfolio import health, queries
from portfolio.forms import InitiativeForm, PrimaryMetricForm
from portfolio.models import BusinessUnit, Initiative
from portfolio.services import save_framing
from readiness.queries import reviews_of


def home(request):
    counts = queries.stage_counts()
    return render(
        request,
        "portfolio/home.html",
        {
            "stage_counts": counts,
            "total": sum(n for _, _, n in counts),
            "max_count": max([n for _, _, n in counts] or [0]) or 1,
            "recent_decisions": queries.recent_decisions(),
            "my_initiatives": queries.owned_by(request.user)[:10],
        },
    )


def initiative_list(request):
    stage = request.GET.get("stage") or None
    unit = request.GET.get("unit") or None
    if stage and stage not in Stage.values:
        stage = None
    page = Paginator(queries.initiative_list(stage=stage, business_unit=unit), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "portfolio/initiative_list.html",
        {
            "page": page,
            "stages": Stage.choices,
            "units": BusinessUnit.objects.all(),
            "selected_stage": stage or "",
            "selected_unit": unit or "",
            "may_create": permissions.may_create_initiative(request.user),
        },
    )


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
