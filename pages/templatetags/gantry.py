"""Small template filters shared by Gantry's pages."""

from datetime import timedelta
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.html import format_html
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
def person(user) -> str:
    """A person's name, or "nobody named" marked as missing: one wording for every empty
    person field on every page."""
    if not user:
        return format_html('<span class="missing">{}</span>', "nobody named")
    return format_html("{}", user)


@register.filter
def ago(moment) -> str:
    """ "3 hours ago", or "just now" within the minute (never "0 minutes ago")."""
    if moment is None:
        return ""
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"


@register.inclusion_tag("includes/error_summary.html")
def error_summary(*forms):
    """What is wrong with the posted forms, at the top of the page, each linked to its field
    (a long form's errors are otherwise found below the fold)."""
    problems = []
    for form in forms:
        if form is None or not form.is_bound:
            continue
        for message in form.non_field_errors():
            problems.append({"label": "", "message": message, "anchor": ""})
        for name, errors in form.errors.items():
            if name == "__all__" or name not in form.fields:
                continue
            field = form[name]
            for message in errors:
                problems.append(
                    {"label": field.label, "message": message, "anchor": field.id_for_label}
                )
    return {"problems": problems}
