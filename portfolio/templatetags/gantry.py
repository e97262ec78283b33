"""Small template filters shared by Gantry's pages."""

from datetime import timedelta
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from metrics.status import fmt

register = template.Library()


@register.filter
def number(value) -> str:
    """A measured value with four significant digits (84.38, 1,250, 0.8712)."""
    if value is None or value == "":
        return "—"
    return fmt(float(value))


@register.filter
def exact(value) -> str:
    """A defined number as it was set, without the column's trailing zeros (46, 0.85)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    return str(value)


@register.filter
def ago(moment) -> str:
    """ "3 hours ago", or "just now" within the minute (never "0 minutes ago")."""
    if moment is None:
        return ""
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"
