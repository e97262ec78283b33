"""Reads for the notifications pages and the navigation count."""

from __future__ import annotations

from django.db.models import QuerySet

from notifications.models import Notification

PAGE_SIZE = 50


def unread_count(user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def inbox(user, *, unread_only: bool = False) -> QuerySet[Notification]:
    """The person's own notifications, newest first: only ever `recipient=user`. A queryset,
    so the page slices it (one query per page, whatever the person has)."""
    rows = Notification.objects.filter(recipient=user).select_related("initiative")
    if unread_only:
        rows = rows.filter(read_at__isnull=True)
    return rows.order_by("-created_at", "-id")
