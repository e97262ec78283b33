"""Per-token rate limit: a fixed window counted in the cache (Redis in production), so every
web process counts against the same budget. Over it, 429 with Retry-After."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache


def over_limit(token_id: int) -> int | None:
    """Seconds to wait when this request exceeds the token's budget, else None. A cache that
    does not answer lets the request through: the limit protects the service, and a missing
    cache must not take the API down with it."""
    limit, window = settings.GANTRY_API_RATE_LIMIT, settings.GANTRY_API_RATE_WINDOW_SECONDS
    now = time.time()
    bucket = int(now // window)
    key = f"api-rate:{token_id}:{bucket}"
    try:
        added = cache.add(key, 1, timeout=window + 1)
        count = 1 if added else cache.incr(key)
    except Exception:
        return None
    if count <= limit:
        return None
    return max(1, int((bucket + 1) * window - now) + 1)
