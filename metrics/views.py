"""Feed management and CSV upload on an initiative. Thin: forms in, services out."""

from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from gates.permissions import may_manage_feeds
from metrics import ingest, services
from metrics.forms import CsvUploadForm, DataFeedForm
from metrics.models import DataFeed, Metric
from portfolio.models import Initiative

SIGNING_SALT = "gantry.csv-upload"


def _initiative_for_feeds(request, slug: str) -> Initiative:
    initiative = get_object_or_404(Initiative, slug=slug)
    if not may_manage_feeds(initiative, request.user):
        raise PermissionDenied("Only programme managers and this initiative's owners manage data.")
    return initiative


def feed_create(request, slug: str):
    initiative = _initiative_for_feeds(request, slug)
    form = DataFeedForm(request.POST or None, initiative=initiative)
    if request.method == "POST" and form.is_valid():
        feed, token = services.create_feed(
            initiative=initiative, user=request.user, **form.cleaned_data
        )
        return render(
            request, "metrics/token.html", {"initiative": initiative, "feed": feed, "token": token}
        )
    return render(
        request,
        "metrics/feed_form.html",
        {"initiative": initiative, "form": form},
        status=400 if form.is_bound else 200,
    )


@require_POST
def feed_rotate(request, slug: str, feed_id: int):
    initiative = _initiative_for_feeds(request, slug)
    feed = get_object_or_404(DataFeed, pk=feed_id, initiative=initiative)
    token = services.rotate_token(feed=feed, user=request.user)
    return render(
        request,
        "metrics/token.html",
        {"initiative": initiative, "feed": feed, "token": token, "rotated": True},
    )


def upload(request, slug: str):
    """Two steps: the file is checked and previewed, then stored on confirmation."""
    initiative = _initiative_for_feeds(request, slug)
    if request.method == "POST" and "payload" in request.POST:
        return _confirm(request, initiative)
    form = CsvUploadForm(request.POST or None, request.FILES or None, initiative=initiative)
    context = {"initiative": initiative, "form": form}
    if request.method != "POST":
        return render(request, "metrics/upload.html", context)
    if not form.is_valid():
        return render(request, "metrics/upload.html", context, status=400)
    feed, text = form.cleaned_data["feed"], form.cleaned_data["file"]
    batch, problems = _check(feed, text)
    if problems:
        context["problems"] = problems
        return render(request, "metrics/upload.html", context, status=400)
    context.update(
        feed=feed,
        preview=_preview(batch),
        payload=signing.dumps({"feed": feed.pk, "csv": text}, salt=SIGNING_SALT, compress=True),
    )
    return render(request, "metrics/upload_preview.html", context)


def _confirm(request, initiative):
    try:
        data = signing.loads(request.POST["payload"], salt=SIGNING_SALT, max_age=3600)
    except signing.BadSignature:
        messages.error(request, "The preview expired or was altered; upload the file again.")
        return redirect("metrics-upload", initiative.slug)
    feed = get_object_or_404(DataFeed, pk=data["feed"], initiative=initiative)
    # Checked again: metrics may have changed since the preview.
    batch, problems = _check(feed, data["csv"])
    if problems:
        form = CsvUploadForm(initiative=initiative)
        context = {"initiative": initiative, "form": form, "problems": problems}
        return render(request, "metrics/upload.html", context, status=400)
    stored = services.ingest(feed=feed, batch=batch)
    messages.success(
        request,
        f"Stored {stored.created} new observation{'s' if stored.created != 1 else ''} from "
        f"the file ({stored.duplicates} already held). Metric status is being recomputed.",
    )
    return redirect(initiative)


def _check(feed, text: str):
    rows, numbers, problems = ingest.read_csv(text)
    if problems:
        return None, problems
    batch = ingest.validate(rows, feed, from_text=True, numbers=numbers)
    return batch, batch.foreign + batch.problems


def _preview(batch: ingest.Batch) -> dict:
    rows = batch.rows
    names = dict(Metric.objects.filter(pk__in={r[0] for r in rows}).values_list("pk", "name"))
    moments = [moment for _, _, moment, _ in rows]
    counts: dict[tuple[int, str], int] = {}
    for metric_id, cohort, _, _ in rows:
        counts[(metric_id, cohort)] = counts.get((metric_id, cohort), 0) + 1
    return {
        "count": len(rows),
        "first": min(moments),
        "last": max(moments),
        "sample": [(names[m], c, t, v) for m, c, t, v in rows[:10]],
        "counts": [(names[m], c, n) for (m, c), n in sorted(counts.items())],
    }
