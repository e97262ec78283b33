"""Post/redirect/get for action URLs: no address a person can land on answers 405.

An action URL takes a form's POST. A person still reaches it with a GET: a form with errors
is shown again at the action's address, and a reload, Back, or Enter in the address bar then
asks for it again; so does a bookmark or a pasted link. `post_only` sends such a GET to the
page that holds the form, with a short message, instead of the browser's blank 405 page.
"""

import json
from collections.abc import Callable
from functools import wraps
from http import HTTPStatus

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.utils.log import log_response

ALLOWED = ["GET", "HEAD", "POST"]


def post_only(redirect_to: Callable[..., str], message: str | None = None):
    """Take the place of `require_POST` on a view that only acts on a form's POST.

    POST runs the view. GET and HEAD answer 302 to `redirect_to(request, **kwargs)` (called
    with the URL's keyword arguments) and leave `message` as an info message for that page;
    any other method answers 405, whose Allow header names GET, HEAD and POST.

    `redirect_to` builds the page's address from the URL's arguments alone, without reading
    the database or checking a permission. A GET therefore answers the same redirect whether
    or not the rows exist and whether or not the person may take the action, so it tells
    nobody anything; the page it leads to applies its own view rules (404 for what does not
    exist, 403 for what the person may not see). A GET changes nothing: only POST reaches the
    view. Sign-in is still required: the view is not login-exempt, so LoginRequiredMiddleware
    sends an anonymous visitor to the login page before any of this runs.
    """
    text = message or "That action is taken with the form on this page."

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                return view(request, *args, **kwargs)
            if request.method in ("GET", "HEAD"):
                messages.info(request, text)
                return redirect(redirect_to(request, **kwargs))
            response = HttpResponseNotAllowed(ALLOWED)
            log_response(
                "Method Not Allowed (%s): %s",
                request.method,
                request.path,
                response=response,
                request=request,
            )
            return response

        # Lets a test find every action URL from the urlconf.
        wrapper.post_only_redirect = redirect_to
        return wrapper

    return decorator


PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors=None,
    headers: dict[str, str] | None = None,
    **members,
) -> HttpResponse:
    """An error as application/problem+json (RFC 9457): type, title, status and a detail
    that says what to do; `errors` names the bad fields or items. `error` repeats the detail
    for clients written before the API answered problem documents."""
    body = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "error": detail,
        **members,
    }
    if errors is not None:
        body["errors"] = errors
    response = HttpResponse(
        json.dumps(body, cls=DjangoJSONEncoder), status=status, content_type=PROBLEM_JSON
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response
