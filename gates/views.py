"""Gate decisions taken from the initiative page."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from gates import services
from gates.forms import DecisionForm
from gates.http import post_only
from gates.stages import Transition
from portfolio.models import Initiative
from portfolio.views import render_initiative


def _initiative_page(request, slug: str, **kwargs) -> str:
    return reverse("initiative-detail", args=[slug])


@post_only(_initiative_page, "Decisions are taken with the form on this page.")
def decide(request, slug: str, transition: str):
    if transition not in Transition.values:
        raise Http404("No such transition.")
    initiative = get_object_or_404(Initiative, slug=slug)
    # Permission first: a forbidden request answers 403 whatever the form or stage holds.
    if not services.may_take(initiative, transition, request.user):
        raise PermissionDenied(f"You may not {Transition(transition).label.lower()}.")
    form = DecisionForm(request.POST, transition=transition)
    if not form.is_valid():
        return render_initiative(request, slug, bound_form=form, status=400)
    try:
        decision = services.decide(
            initiative=initiative,
            transition=transition,
            user=request.user,
            rationale=form.cleaned_data["rationale"],
            stop_reason=form.cleaned_data.get("stop_reason", ""),
            expected_stage=form.cleaned_data["expected_stage"],
        )
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return render_initiative(request, slug, bound_form=form, status=400)
    except services.StaleInitiative as exc:
        messages.error(request, str(exc))
        return render_initiative(request, slug, status=409)
    except services.DecisionError as exc:
        messages.error(request, str(exc))
        return render_initiative(request, slug, bound_form=form, status=422)
    messages.success(
        request,
        f"{decision.get_transition_display()} recorded: "
        f"{initiative.title} is now {initiative.where}.",
    )
    return redirect(initiative)
