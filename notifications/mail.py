"""Email: each notification a person wants by email, sent from the database queue.

A worker claims a pending row (skipping rows other workers hold), sends it and marks it sent
in one transaction. A crash before the commit leaves the row pending for the next worker, so
a notification is never lost; the Message-ID is fixed per notification, so the rare mail sent
twice (the process died after the server accepted it, before the commit) is the same
message to the receiving side. Failures are retried with backoff and recorded on the row.
"""

from __future__ import annotations

import contextlib
import logging
import zoneinfo
from datetime import timedelta
from smtplib import SMTPException

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from gates import clock
from notifications.models import EmailState, Notification
from notifications.webhooks import absolute

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
UNSUBSCRIBE_SALT = "notifications.unsubscribe"


def unsubscribe_token(user_id: int, kind: str) -> str:
    return signing.dumps({"u": user_id, "k": kind}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> tuple[int, str]:
    """(user id, kind) of a token this site signed; raises signing.BadSignature otherwise."""
    value = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    return int(value["u"]), str(value["k"])


def zone_of(user) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(user.time_zone or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def message(note: Notification) -> EmailMultiAlternatives:
    """The email for one notification: plain text and HTML, a link to the page that needs
    action, and one-click unsubscribe from this kind (RFC 8058)."""
    person = note.recipient
    unsubscribe = absolute(
        reverse("notification-unsubscribe", args=[unsubscribe_token(person.pk, note.kind)])
    )
    with timezone.override(zone_of(person)):
        context = {
            "note": note,
            "person": person,
            "link": absolute(note.url or reverse("notifications")),
            "unsubscribe": unsubscribe,
            "preferences": absolute(reverse("notification-preferences")),
            "kind_label": note.get_kind_display(),
            "created": timezone.localtime(note.created_at),
        }
        text = render_to_string(f"notifications/email/{_template(note)}.txt", context)
        html = render_to_string(f"notifications/email/{_template(note)}.html", context)
    mail = EmailMultiAlternatives(
        subject=f"[Gantry] {note.title}",
        body=text,
        to=[person.email],
        headers={
            "Message-ID": f"<notification-{note.pk}@{settings.GANTRY_MAIL_DOMAIN}>",
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        },
    )
    mail.attach_alternative(html, "text/html")
    return mail


def _template(note: Notification) -> str:
    return "digest" if note.kind == "digest" else "notification"


def send_due(*, limit: int = 100) -> int:
    """Send up to `limit` due emails, one transaction each; returns how many were tried."""
    tried = 0
    connection = None
    try:
        while tried < limit:
            with transaction.atomic():
                note = (
                    Notification.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("recipient")
                    .filter(email=EmailState.PENDING, email_next_at__lte=clock.now())
                    .order_by("email_next_at", "id")
                    .first()
                )
                if note is None:
                    break
                if connection is None:
                    connection = get_connection(fail_silently=False)
                _send(note, connection)
            tried += 1
    finally:
        if connection is not None:
            with contextlib.suppress(OSError, SMTPException):
                connection.close()
    return tried


def _send(note: Notification, connection) -> None:
    note.email_attempts += 1
    try:
        if not note.recipient.email or not note.recipient.is_active:
            note.email = EmailState.SKIPPED
        else:
            mail = message(note)
            mail.connection = connection
            mail.send()
            note.email = EmailState.SENT
            note.email_sent_at = clock.now()
            note.email_error = ""
    except (OSError, SMTPException) as exc:
        note.email_error = f"{type(exc).__name__}: {exc}"[:500]
        if note.email_attempts >= MAX_ATTEMPTS:
            note.email = EmailState.FAILED
            log.warning("gave up emailing notification %s: %s", note.pk, note.email_error)
        else:
            wait = settings.GANTRY_MAIL_RETRY_SECONDS * 2 ** (note.email_attempts - 1)
            note.email_next_at = clock.now() + timedelta(seconds=wait)
        # The connection may be half-open after a failure: start a new one next time.
        with contextlib.suppress(OSError, SMTPException):
            connection.close()
    note.save(
        update_fields=["email", "email_attempts", "email_next_at", "email_sent_at", "email_error"]
    )
