"""Every answer under /api/ is JSON a client can act on, whatever went wrong.

A database that is down or restarting answers 503 with Retry-After: the client keeps its
batch and sends it again, and the re-send is counted as duplicates of whatever did arrive.
Any other error keeps its status and gets a JSON body instead of an HTML page.

Pages show times in the signed-in person's time zone (`user_time_zone`).
"""

import logging
import zoneinfo

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import FileResponse
from django.utils import timezone

from gates.http import PROBLEM_JSON, problem

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
RETRY_AFTER_SECONDS = 10


def api_errors_as_json(get_response):
    def middleware(request):
        response = get_response(request)
        if not request.path.startswith(API_PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith(("application/json", PROBLEM_JSON)):
            return response
        headers = {
            header: response[header]
            for header in ("Allow", "Retry-After", "WWW-Authenticate")
            if header in response
        }
        return problem(response.status_code, response.reason_phrase or "Error", headers=headers)

    def process_exception(request, exception):
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, OperationalError | InterfaceError):
            log.warning("database unavailable for %s: %s", request.path, exception)
            return problem(
                503,
                "The database is unavailable. Send the batch again later: "
                "observations already stored are counted as duplicates, not stored twice.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        log.exception("error answering %s", request.path)
        return problem(500, "Internal server error; nothing was stored.")

    middleware.process_exception = process_exception
    return middleware


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def user_time_zone(get_response):
    """Pages show times in the signed-in person's time zone (`User.time_zone`; blank or
    unknown: the organisation's), and every request ends in the organisation's again."""

    def middleware(request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return get_response(request)
        zone = _zone(getattr(user, "time_zone", ""))
        timezone.activate(zone)
        try:
            response = get_response(request)
        finally:
            timezone.deactivate()
        if response.streaming and not response.is_async and not isinstance(response, FileResponse):
            # A CSV export is written after this returns: keep its times in the same zone.
            response.streaming_content = _in_zone(response.streaming_content, zone)
        return response

    return middleware


def _in_zone(chunks, zone):
    with timezone.override(zone):
        yield from chunks
