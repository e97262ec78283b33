"""The readiness review page and its item actions. Plain forms; no JavaScript needed."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from gates import services as gate_services
from gates.forms import DecisionForm, add_errors
from gates.http import post_only
from gates.stages import Transition
from pages import selectors
from portfolio.models import Initiative
from portfolio.permissions import may_decide_review
from readiness import queries, services
from readiness.forms import AssignForm, AssignManyForm, CheckForm, VersionForm
from readiness.models import ReviewItem


def review_detail(request, slug: str, review_id: int, *, bound: dict | None = None, status=200):
    initiative = get_object_or_404(
        Initiative.objects.select_related("operational_owner", "business_owner", "delivery_lead"),
        slug=slug,
    )
    review = queries.review_detail(initiative, review_id)
    if review is None:
        raise Http404("No such review.")
    page = selectors.review_page(
        initiative=initiative, review=review, user=request.user, bound=bound
    )
    return render(request, "readiness/review_detail.html", page.context(), status=status)


def _refused(request, slug: str, review_id: int, exc: Exception, *, status: int):
    """The review page as it is now, under a service's refusal of the whole action."""
    messages.error(
        request, " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    )
    return review_detail(request, slug, review_id, status=status)


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
        return _refused(request, slug, review_id, exc, status=409)
    except ValidationError as exc:
        return _refused(request, slug, review_id, exc, status=400)
    title = item.template_item.title
    if assignee is None:
        messages.success(request, f"“{title}” unassigned.")
    else:
        messages.success(request, f"“{title}” assigned to {assignee}.")
    if note:
        messages.warning(request, note)
    return _back(item)


def _assign_many_on_review_page(request, slug: str, review_id: int) -> str:
    return f"{_review_page(request, slug, review_id)}#assign-many"


@post_only(_assign_many_on_review_page, "Items are assigned with the form on this page.")
def assign_many(request, slug: str, review_id: int):
    """Give several unchecked items to one person: all of them, or none with the reason."""
    initiative = get_object_or_404(Initiative, slug=slug)
    review = queries.review_detail(initiative, review_id)
    if review is None:
        raise Http404("No such review.")
    if not may_decide_review(initiative, request.user):
        raise PermissionDenied(services.MANAGERS_ONLY)
    form = AssignManyForm(request.POST, review_items=list(review.items.all()))
    if form.is_valid():
        assignee = form.cleaned_data["assignee"]
        try:
            note = services.assign_many(
                review=review,
                versions=form.versions(),
                assignee=assignee,
                user=request.user,
                confirm=form.cleaned_data["confirm"],
            )
        except services.NobodyLeftToDecide as exc:
            bound = {("assign_many",): form, ("confirm_many",): " ".join(exc.messages)}
            return review_detail(request, slug, review_id, bound=bound, status=400)
        except services.Conflict as exc:
            return _refused(request, slug, review_id, exc, status=409)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            count = len(form.versions())
            messages.success(
                request, f"{count} item{'s' if count != 1 else ''} assigned to {assignee}."
            )
            if note:
                messages.warning(request, note)
            return redirect(f"{review.get_absolute_url()}#assign-many")
    return review_detail(request, slug, review_id, bound={("assign_many",): form}, status=400)


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
            return _refused(request, slug, review_id, exc, status=409)
        except ValidationError as exc:
            # Evidence problems come per field; a closed review is one message for the item.
            add_errors(form, exc)
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
        return _refused(request, slug, review_id, exc, status=409)
    except ValidationError as exc:
        return _refused(request, slug, review_id, exc, status=400)
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
        return _refused(request, slug, review_id, exc, status=409)
    messages.success(
        request,
        f"Review {'passed' if transition == Transition.PASS_REVIEW else 'failed'}: "
        f"{initiative.title} is now {initiative.where}.",
    )
    return redirect(review)
