"""The address a request came from, as the login throttle counts it.

Behind the TLS proxy (BEHIND_TLS_PROXY) every request arrives from the proxy, so the client is
the last address the proxy appended to X-Forwarded-For; anything to its left was written by
the client and proves nothing. Without a proxy the header is ignored: anyone can send it.
"""

from django.conf import settings


def client_address(request) -> str | None:
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.META.get("REMOTE_ADDR")
