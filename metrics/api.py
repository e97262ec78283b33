"""The ingestion API: POST /api/v1/feeds/<feed id>/observations with a feed's bearer token.

401: no valid token; a retired feed's token is revoked, so it answers 401 like any other.
409: the feed is paused; the body says since when, by whom and why. Nothing is stored.
400 and 403 name the bad items; 201 answers {"created", "duplicates", "fresh"}, where fresh
counts the new observations from inside the feed's freshness window (what keeps it fresh).
"""

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from gates.http import problem
from metrics import ingest, services


def _error(status: int, message: str, errors: list | None = None, **headers) -> HttpResponse:
    return problem(
        status,
        message,
        errors=errors,
        headers={name.replace("_", "-"): value for name, value in headers.items()},
    )


@csrf_exempt  # machines authenticate with a bearer token, not a session cookie
@login_not_required
@require_POST
def observations(request, feed_id: int):
    feed = services.authenticate_feed(feed_id, request.headers.get("Authorization", ""))
    if feed is None:
        return _error(
            401, "A valid bearer token for this feed is required.", WWW_Authenticate="Bearer"
        )
    if not feed.is_active:  # checked again under the initiative's lock when storing
        return _error(409, ingest.refusal(feed))
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > ingest.MAX_BODY_BYTES:
        return _error(413, f"The body is larger than {ingest.MAX_BODY_BYTES} bytes.")
    try:
        items = ingest.parse_json_body(request.body)
    except RequestDataTooBig:
        return _error(413, f"The body is larger than {ingest.MAX_BODY_BYTES} bytes.")
    except ingest.TooLarge as exc:
        return _error(413, str(exc))
    except ingest.BodyError as exc:
        return _error(400, str(exc))
    if not items:
        return _error(400, "The batch is empty.")
    batch = ingest.validate(items, feed)
    if batch.foreign:
        return _error(
            403,
            "The batch names metrics of another initiative; nothing was stored.",
            [p.as_json("index") for p in batch.foreign],
        )
    if batch.problems:
        return _error(
            400,
            f"{len(batch.problems)} problem(s) in the batch; nothing was stored.",
            [p.as_json("index") for p in batch.problems],
        )
    try:
        stored = services.store_delivery(feed=feed, batch=batch)
    except ingest.FeedNotActive as exc:  # paused (or retired) while the batch was checked
        return _error(409, str(exc))
    return JsonResponse(
        {"created": stored.created, "duplicates": stored.duplicates, "fresh": stored.fresh},
        status=201,
    )
