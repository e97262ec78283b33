"""Small template filters shared by Gantry's pages."""

from django import template

from metrics.status import fmt

register = template.Library()


@register.filter
def number(value) -> str:
    """A measured value with four significant digits (84.38, 1,250, 0.8712)."""
    if value is None or value == "":
        return "—"
    return fmt(float(value))
