"""Webhooks: every event as signed JSON to each endpoint that hears its kind.

The body carries a Slack-compatible `text`, so a Slack or Teams incoming webhook takes it as
it is. Each request is signed: the header

    Gantry-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>

lets the receiver check both who sent it and that it is recent. A delivery is a row written
with its cause; a worker claims it, posts it and records the attempt (status, latency,
error), then retries a failure with exponential backoff and jitter until it gives up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import urllib.error
import urllib.request
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from gates import clock
from notifications.models import DeliveryState, Webhook, WebhookAttempt, WebhookDelivery

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = 8
# The longest wait between two attempts, whatever the count.
MAX_DELAY_SECONDS = 6 * 3600


def absolute(path: str) -> str:
    return settings.GANTRY_BASE_URL.rstrip("/") + path if path.startswith("/") else path


def payload(message) -> dict:
    event = message.event
    url = absolute(message.url)
    return {
        "id": event.key,
        "event": message.kind,
        "at": event.at.isoformat(),
        "initiative_id": event.initiative_id,
        "title": message.title,
        "body": message.body,
        "url": url,
        "text": f"*{message.title}*\n{message.body}\n<{url}|Open in Gantry>",
    }


def enqueue(said: list) -> int:
    """Queue each event for every active endpoint that hears its kind (in the caller's
    transaction); returns how many deliveries were queued."""
    if not said:
        return 0
    hooks = [hook for hook in Webhook.objects.filter(active=True)]
    if not hooks:
        return 0
    now = clock.now()
    rows = [
        WebhookDelivery(
            webhook=hook, key=message.event.key, kind=message.kind, payload=payload(message),
            created_at=now, next_at=now,
        )
        for message in said
        for hook in hooks
        if hook.hears(message.kind)
    ]  # fmt: skip
    rows.sort(key=lambda r: (r.webhook_id, r.key))
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return len(rows)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance: int = 300, now: float | None = None
) -> bool:
    """What a receiver does with the header: the signature matches and is recent."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: doubling from the base, jittered by
    ±50% so that endpoints coming back are not hit by every retry at once, and capped."""
    base = settings.GANTRY_WEBHOOK_RETRY_SECONDS * 2 ** (attempts - 1)
    jittered = base * random.uniform(0.5, 1.5)  # noqa: S311
    return timedelta(seconds=min(MAX_DELAY_SECONDS, jittered))


def deliver_due(*, limit: int = 50) -> int:
    """Attempt up to `limit` due deliveries, each in its own transaction with its row locked
    (other workers skip it); returns how many were attempted."""
    done = 0
    while done < limit:
        with transaction.atomic():
            delivery = (
                WebhookDelivery.objects.select_for_update(skip_locked=True)
                .select_related("webhook")
                .filter(state=DeliveryState.PENDING, next_at__lte=clock.now())
                .order_by("next_at", "id")
                .first()
            )
            if delivery is None:
                break
            _attempt(delivery)
        done += 1
    return done


def _attempt(delivery: WebhookDelivery) -> None:
    hook = delivery.webhook
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(  # noqa: S310 - an admin-entered http(s) URL
        hook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Gantry-Webhook/1",
            "Gantry-Event": delivery.kind,
            "Gantry-Delivery": str(delivery.pk),
            "Gantry-Signature": sign(hook.secret, timestamp, body),
        },
    )
    started = time.monotonic()
    status, error = None, ""
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = str(getattr(exc, "reason", exc)) or type(exc).__name__
    latency = int((time.monotonic() - started) * 1000)
    now = clock.now()
    WebhookAttempt.objects.create(
        delivery=delivery, at=now, status=status, latency_ms=latency, error=error[:500]
    )
    delivery.attempts += 1
    if status is not None and 200 <= status < 300:
        delivery.state = DeliveryState.DELIVERED
        delivery.delivered_at = now
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.state = DeliveryState.FAILED
        log.warning(
            "webhook %s gave up on %s after %d attempts: %s",
            hook,
            delivery.key,
            delivery.attempts,
            error,
        )
    else:
        delivery.next_at = now + delay(delivery.attempts)
    delivery.save(update_fields=["attempts", "state", "delivered_at", "next_at"])
