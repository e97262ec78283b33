"""Small template filters shared by Gantry's pages."""

from decimal import Decimal

from django import template

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
