"""The readiness review page, item actions and "My work". Plain forms; no JavaScript needed."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from gates import services as gate_services
from gates.forms import DecisionForm
from gates.http import post_only
from gates.permissions import may_decide_review, may_own
from gates.stages import Transition
from portfolio.models import Initiative
from portfolio.queries import owned_by
from readiness import pages, queries, services
from readiness.forms import AssignForm, CheckForm, VersionForm, WorkDoneForm, WorkReopenForm
from readiness.models import PreLaunchWorkItem, ReviewItem


def review_detail(request, slug: str, review_id: int, *, bound: dict | None = None, status=200):
    initiative = get_object_or_404(
        Initiative.objects.select_related("operational_owner", "business_owner", "delivery_lead"),
        slug=slug,
    )
    review = queries.review_detail(initiative, review_id)
    if review is None:
        raise Http404("No such review.")
    context = pages.review_context(
        initiative=initiative, review=review, user=request.user, bound=bound
    )
    return render(request, "readiness/review_detail.html", context, status=status)


def _item(slug: str, review_id: int, item_id: int) -> ReviewItem:
    return get_object_or_404(
        ReviewItem.objects.select_related("review__initiative__operational_owner", "template_item"),
        pk=item_id,
        review_id=review_id,
        review__initiative__slug=slug,
    )


def _back(item: ReviewItem):
    return redirect(f"{item.review.get_absolute_url()}#item-{item.pk}")


# Where a GET on an action URL goes (gates.http.post_only): the page whose form posts there,
# built from the URL alone.
def _review_page(request, slug: str, review_id: int, **kwargs) -> str:
    return reverse("review-detail", args=[slug, review_id])


def _item_on_review_page(request, slug: str, review_id: int, item_id: int) -> str:
    return f"{_review_page(request, slug, review_id)}#item-{item_id}"


def _my_work_page(request, **kwargs) -> str:
    return reverse("my-work")


@post_only(_item_on_review_page, "Items are assigned with the form on this page.")
def item_assign(request, slug: str, review_id: int, item_id: int):
    """Assign, reassign or (with no assignee) unassign an item.

    An assignment that would leave nobody who may decide the review comes back with the
    warning and an "Assign anyway" button (400) until it is confirmed.
    """
    item = _item(slug, review_id, item_id)
    if not may_decide_review(item.review.initiative, request.user):
        raise PermissionDenied(services.MANAGERS_ONLY)
    form = AssignForm(request.POST, prefix=f"a{item.pk}")
    if not form.is_valid():
        return review_detail(
            request, slug, review_id, bound={("assign", item.pk): form}, status=400
        )
    assignee = form.cleaned_data["assignee"]
    try:
        note = services.assign(
            item=item,
            assignee=assignee,
            user=request.user,
            expected_version=form.cleaned_data["version"],
            confirm=form.cleaned_data["confirm"],
        )
    except services.NobodyLeftToDecide as exc:
        bound = {("assign", item.pk): form, ("confirm", item.pk): " ".join(exc.messages)}
        return review_detail(request, slug, review_id, bound=bound, status=400)
    except services.Conflict as exc:
        messages.error(request, str(exc))
        return review_detail(request, slug, review_id, status=409)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return review_detail(request, slug, review_id, status=400)
    title = item.template_item.title
    if assignee is None:
        messages.success(request, f"“{title}” unassigned.")
    else:
        messages.success(request, f"“{title}” assigned to {assignee}.")
    if note:
        messages.warning(request, note)
    return _back(item)


@post_only(_item_on_review_page, "Items are checked with the form on this page.")
def item_check(request, slug: str, review_id: int, item_id: int):
    item = _item(slug, review_id, item_id)
    services.require_assignee(item, request.user)
    form = CheckForm(
        request.POST, asks_numbers=item.template_item.asks_numbers, prefix=f"c{item.pk}"
    )
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.check(
                item=item,
                user=request.user,
                evidence_text=data["evidence_text"],
                evidence_url=data["evidence_url"],
                cost_per_transaction=data.get("cost_per_transaction"),
                monthly_volume=data.get("monthly_volume"),
                currency=data.get("currency", ""),
                expected_version=data["version"],
            )
        except services.Conflict as exc:
            messages.error(request, str(exc))
            return review_detail(request, slug, review_id, status=409)
        except ValidationError as exc:
            # Evidence problems come per field; a closed review is one message for the item.
            problems = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
            for field, errors in problems.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"“{item.template_item.title}” checked.")
            return _back(item)
    return review_detail(request, slug, review_id, bound={("check", item.pk): form}, status=400)


@post_only(_item_on_review_page, "Items are unchecked with the button on this page.")
def item_uncheck(request, slug: str, review_id: int, item_id: int):
    item = _item(slug, review_id, item_id)
    services.require_assignee(item, request.user)
    form = VersionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The form was incomplete; reload the page and try again.")
        return review_detail(request, slug, review_id, status=400)
    try:
        services.uncheck(
            item=item, user=request.user, expected_version=form.cleaned_data["version"]
        )
    except services.Conflict as exc:
        messages.error(request, str(exc))
        return review_detail(request, slug, review_id, status=409)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return review_detail(request, slug, review_id, status=400)
    messages.success(request, f"“{item.template_item.title}” unchecked.")
    return _back(item)


@post_only(_review_page, "Reviews are decided with the form on this page.")
def review_decide(request, slug: str, review_id: int, transition: str):
    """Pass or fail the review from its own page, through the one decision service."""
    if transition not in (Transition.PASS_REVIEW, Transition.FAIL_REVIEW):
        raise Http404("No such decision.")
    initiative = get_object_or_404(Initiative, slug=slug)
    review = get_object_or_404(initiative.reviews, pk=review_id)
    if not may_decide_review(initiative, request.user):
        raise PermissionDenied("Only a programme manager with no stake in this initiative decides.")
    if not review.is_open:
        # A page of an earlier review: the decision would land on whichever review is open.
        messages.error(request, "This review is already decided. Reload the page.")
        return review_detail(request, slug, review_id, status=409)
    form = DecisionForm(request.POST, transition=transition)
    if not form.is_valid():
        return review_detail(
            request, slug, review_id, bound={("decide", transition): form}, status=400
        )
    try:
        gate_services.decide(
            initiative=initiative,
            transition=transition,
            user=request.user,
            rationale=form.cleaned_data["rationale"],
            expected_stage=form.cleaned_data["expected_stage"],
        )
    except gate_services.DecisionError as exc:
        messages.error(request, str(exc))
        return review_detail(request, slug, review_id, status=409)
    messages.success(
        request,
        f"Review {'passed' if transition == Transition.PASS_REVIEW else 'failed'}: "
        f"{initiative.title} is now {initiative.where}.",
    )
    return redirect(review)


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
    user = request.user
    return render(
        request,
        "readiness/my_work.html",
        {
            "items": queries.open_items_for(user),
            "work_items": queries.open_work_for(user),
            "initiatives": owned_by(user),
            "today": timezone.localdate(),
            # A viewer named on work still closes none of it.
            "writes": may_own(user),
        },
    )
