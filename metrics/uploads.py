"""CSV upload in two steps: a file is checked and previewed, then stored on confirmation.

The preview hands the file back signed, so the confirmation stores exactly what was
previewed without keeping it on the server; the file is checked again when stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from metrics import ingest, services
from metrics.ingest import Batch, Problem, Stored
from metrics.models import DataFeed, DeliverySource, Metric

SIGNING_SALT = "gantry.csv-upload"
PREVIEW_MAX_AGE = 3600  # seconds


@dataclass
class Preview:
    """A file checked against a feed: every problem with it, or what it holds and the signed
    payload that confirms it."""

    feed: DataFeed
    problems: list[Problem]
    summary: dict | None = None  # count, first, last, sample rows, counts per metric and cohort
    payload: str = ""


@dataclass
class Confirmed:
    """A confirmed upload: stored, or refused by the check or by the feed."""

    problems: list[Problem]
    refusal: str = ""  # the feed was paused or retired since the preview
    stored: Stored | None = None


def preview(feed: DataFeed, text: str) -> Preview:
    batch, problems = _check(feed, text)
    if problems:
        return Preview(feed=feed, problems=problems)
    return Preview(
        feed=feed,
        problems=[],
        summary=_summary(batch),
        payload=signing.dumps({"feed": feed.pk, "csv": text}, salt=SIGNING_SALT, compress=True),
    )


def opened(payload: str) -> tuple[int, str]:
    """The feed id and file text of a preview's payload; BadSignature if it expired or was
    altered."""
    data = signing.loads(payload, salt=SIGNING_SALT, max_age=PREVIEW_MAX_AGE)
    return data["feed"], data["csv"]


def confirm(*, feed: DataFeed, text: str, user) -> Confirmed:
    # Checked again: metrics may have changed since the preview.
    batch, problems = _check(feed, text)
    if problems:
        return Confirmed(problems=problems)
    try:
        stored = services.store_delivery(
            feed=feed, batch=batch, source=DeliverySource.CSV, uploaded_by=user
        )
    except ingest.FeedNotActive as exc:  # paused or retired since the preview
        return Confirmed(problems=[], refusal=str(exc))
    return Confirmed(problems=[], stored=stored)


def _check(feed: DataFeed, text: str) -> tuple[Batch | None, list[Problem]]:
    """The file's valid rows as a batch, and its problems (metrics of another initiative
    first); no batch when the file itself cannot be read."""
    rows, numbers, problems = ingest.read_csv(text)
    if problems:
        return None, problems
    batch = ingest.validate(rows, feed, from_text=True, numbers=numbers)
    return batch, batch.foreign + batch.problems


def _summary(batch: Batch) -> dict:
    """What the preview shows of a valid batch: how many rows, from when to when, the first
    rows, and the rows per metric and cohort."""
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
