"""/api/v1/. Every operation authenticates its own bearer token, so the API is exempt from
the sign-in redirect; the documentation page is a page and needs sign-in like any other."""

from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, URLResolver

from api.api import api

DOCS = "openapi-view"


def _exempt(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _exempt(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and pattern.name != DOCS:
            pattern.callback = login_not_required(pattern.callback)
    return patterns


patterns, _, _ = api.urls
app_name = "api"  # the namespace the NinjaAPI reverses its own URLs in
urlpatterns = _exempt(patterns)
