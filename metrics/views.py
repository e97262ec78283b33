"""Feed management and CSV upload on an initiative. Thin: forms in, services out.

Every POST that changes something answers with a redirect, so reloading a page never sends
it again; a form with errors is shown again with them, with status 400. A new token is
handed to the page that shows it through the session, once: reloading that page does not
show it again.
"""

from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache

from metrics import queries, services, uploads
from metrics.forms import CsvUploadForm, DataFeedForm, FeedReasonForm, RotateForm
from metrics.models import DataFeed
from portfolio.models import Initiative
from portfolio.permissions import may_manage_feeds

TOKEN_KEY = "gantry:new-feed-token:{}"  # noqa: S105 - a session key, not a secret


def _posted(request):
    """The form data of a POST, even an empty one (which `request.POST or None` would take for
    a GET), so that a POST without fields is a form with errors."""
    return request.POST if request.method == "POST" else None


def _initiative_for_feeds(request, slug: str) -> Initiative:
    initiative = get_object_or_404(Initiative, slug=slug)
    if not may_manage_feeds(initiative, request.user):
        raise PermissionDenied("Only programme managers and this initiative's owners manage data.")
    return initiative


def _feed(request, slug: str, feed_id: int) -> tuple[Initiative, DataFeed]:
    initiative = _initiative_for_feeds(request, slug)
    return initiative, get_object_or_404(DataFeed, pk=feed_id, initiative=initiative)


def _hand_over(request, feed: DataFeed, token: str, *, rotated: bool) -> None:
    """Keep the new token for the one GET of the token page that follows."""
    request.session[TOKEN_KEY.format(feed.pk)] = {"token": token, "rotated": rotated}


def feed_create(request, slug: str):
    initiative = _initiative_for_feeds(request, slug)
    form = DataFeedForm(_posted(request), initiative=initiative)
    if request.method == "POST" and form.is_valid():
        try:
            feed, token = services.create_feed(
                initiative=initiative, user=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            _hand_over(request, feed, token, rotated=False)
            return redirect("feed-token", initiative.slug, feed.pk)
    return render(
        request,
        "metrics/feed_form.html",
        {"initiative": initiative, "form": form},
        status=400 if form.is_bound else 200,
    )


def feed_rotate(request, slug: str, feed_id: int):
    """GET asks for confirmation; POST rotates and sends the browser to the new token."""
    initiative, feed = _feed(request, slug, feed_id)
    form = RotateForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            token = services.rotate_token(
                feed=feed, user=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            _hand_over(request, feed, token, rotated=True)
            return redirect("feed-token", initiative.slug, feed.pk)
    return render(
        request,
        "metrics/feed_rotate.html",
        {"initiative": initiative, "feed": feed, "form": form},
        status=400 if form.is_bound else 200,
    )


@never_cache  # the page holds a secret: neither the browser nor a proxy may keep it
def feed_token(request, slug: str, feed_id: int):
    """Shows a feed's new token once; afterwards (a reload) says it is gone, with 410."""
    initiative, feed = _feed(request, slug, feed_id)
    handed = request.session.pop(TOKEN_KEY.format(feed.pk), None)
    context = {
        "initiative": initiative,
        "feed": feed,
        "sample": queries.sample_delivery(initiative),
        **(handed or {"token": None}),
    }
    return render(request, "metrics/token.html", context, status=200 if handed else 410)


def _status_change(service, *, action: str, title: str, done: str):
    """A view that asks for a reason (GET) and applies `service` with it (POST)."""

    def view(request, slug: str, feed_id: int):
        initiative, feed = _feed(request, slug, feed_id)
        form = FeedReasonForm(_posted(request))
        if request.method == "POST" and form.is_valid():
            try:
                service(feed=feed, user=request.user, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"“{feed.name}” {done}.")
                return redirect(initiative)
        context = {
            "initiative": initiative,
            "feed": feed,
            "form": form,
            "action": action,
            "title": title.format(name=feed.name),
        }
        status = 400 if form.is_bound else 200
        return render(request, "metrics/feed_status.html", context, status=status)

    return view


feed_pause = _status_change(
    services.pause_feed,
    action="pause",
    title="Pause “{name}”",
    done="is paused: its token is refused with 409 until it is resumed",
)
feed_resume = _status_change(
    services.resume_feed,
    action="resume",
    title="Resume “{name}”",
    done="is active again and takes deliveries",
)
feed_retire = _status_change(
    services.retire_feed,
    action="retire",
    title="Retire “{name}”",
    done="is retired and its token revoked",
)


def upload(request, slug: str):
    """Two steps: the file is checked and previewed, then stored on confirmation."""
    initiative = _initiative_for_feeds(request, slug)
    if request.method == "POST" and "payload" in request.POST:
        return _confirm(request, initiative)
    form = CsvUploadForm(_posted(request), request.FILES or None, initiative=initiative)
    context = {"initiative": initiative, "form": form}
    if request.method != "POST":
        return render(request, "metrics/upload.html", context)
    if not form.is_valid():
        return render(request, "metrics/upload.html", context, status=400)
    preview = uploads.preview(form.cleaned_data["feed"], form.cleaned_data["file"])
    if preview.problems:
        context["problems"] = preview.problems
        return render(request, "metrics/upload.html", context, status=400)
    context.update(feed=preview.feed, preview=preview.summary, payload=preview.payload)
    return render(request, "metrics/upload_preview.html", context)


def _confirm(request, initiative):
    try:
        feed_id, text = uploads.opened(request.POST["payload"])
    except signing.BadSignature:
        messages.error(request, "The preview expired or was altered; upload the file again.")
        return redirect("metrics-upload", initiative.slug)
    feed = get_object_or_404(DataFeed, pk=feed_id, initiative=initiative)
    form = CsvUploadForm(initiative=initiative, initial={"feed": feed.pk})
    context = {"initiative": initiative, "form": form}
    done = uploads.confirm(feed=feed, text=text, user=request.user)
    if done.problems:
        return render(
            request, "metrics/upload.html", {**context, "problems": done.problems}, status=400
        )
    if done.refusal:
        form.errors["feed"] = form.error_class([done.refusal])  # the form is not bound: no clean
        return render(request, "metrics/upload.html", context, status=400)
    stored = done.stored
    messages.success(
        request,
        f"Stored {stored.created} new observation{'s' if stored.created != 1 else ''} from "
        f"the file ({stored.duplicates} already held). Metric status is being recomputed. "
        "An upload is a one-off extract: it does not make the feed fresh for gate 2.",
    )
    return redirect(initiative)
