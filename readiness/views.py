"""Pre-launch work items and "My work". Plain forms; no JavaScript needed."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from gates.http import post_only
from readiness import queries, services
from readiness.forms import WorkDoneForm, WorkReopenForm
from readiness.models import PreLaunchWorkItem


# Where a GET on an action URL goes (gates.http.post_only): the page whose form posts there.
def _my_work_page(request, **kwargs) -> str:
    return reverse("my-work")


def _back_to(request, default: str):
    """Where a work-item form came from (its `next`), if it is this site; else `default`."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


def _work_errors(request, form, exc: ValidationError | None = None) -> None:
    problems = exc.messages if exc is not None else [e for es in form.errors.values() for e in es]
    messages.error(request, "Nothing was changed: " + " ".join(problems))


@post_only(_my_work_page, "Pre-launch work is marked done with the form on this page.")
def work_item_done(request, work_item_id: int):
    """Done with evidence; an error goes back to the page with a message (no dead-end URL)."""
    work_item = get_object_or_404(PreLaunchWorkItem, pk=work_item_id)
    if not services.may_complete(work_item, request.user):
        raise PermissionDenied(services.WORK_PEOPLE_ONLY)
    form = WorkDoneForm(request.POST)
    if not form.is_valid():
        _work_errors(request, form)
        return _back_to(request, "my-work")
    try:
        services.complete_work_item(work_item=work_item, user=request.user, **form.cleaned_data)
    except ValidationError as exc:
        _work_errors(request, form, exc)
    else:
        messages.success(request, f"“{work_item.title}” done.")
    return _back_to(request, "my-work")


def _initiative_of_work(request, work_item_id: int, **kwargs) -> str:
    work_item = PreLaunchWorkItem.objects.filter(pk=work_item_id).select_related("initiative")
    found = work_item.first()
    return found.initiative.get_absolute_url() if found else reverse("my-work")


@post_only(_initiative_of_work, "Work is reopened with the form on this page.")
def work_item_reopen(request, work_item_id: int):
    work_item = get_object_or_404(
        PreLaunchWorkItem.objects.select_related("initiative"), pk=work_item_id
    )
    if not services.may_complete(work_item, request.user):
        raise PermissionDenied(services.WORK_PEOPLE_ONLY)
    form = WorkReopenForm(request.POST)
    if not form.is_valid():
        _work_errors(request, form)
        return redirect(work_item.initiative)
    try:
        services.reopen_work_item(
            work_item=work_item, user=request.user, reason=form.cleaned_data["reason"]
        )
    except ValidationError as exc:
        _work_errors(request, form, exc)
    else:
        messages.success(request, f"“{work_item.title}” reopened: gate 4 waits for it again.")
    return redirect(work_item.initiative)


def my_work(request):
    page = queries.my_work_page(user=request.user)
    return render(request, "readiness/my_work.html", page.context())
