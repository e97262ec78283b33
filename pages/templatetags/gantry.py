"""Small template filters shared by Gantry's pages."""

import html
from datetime import timedelta
from decimal import Decimal

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
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
        return mark_safe(NOBODY)  # noqa: S308 - a constant
    return format_html("{}", user)


NOBODY = '<span class="missing">nobody named</span>'
NO_VALUE = '<span class="muted small">—</span>'


@register.simple_tag
def list_row(row) -> str:
    """One row of the initiative list (a `pages.listing.Row`) as `<tr>` markup, written in
    Python with the standard library's escape: as template markup, or through `format_html`,
    the row's dozen values cost more than the rest of the page. Every value is escaped."""
    esc = _escape
    verdict = NO_VALUE
    if row.primary_verdict:
        verdict = (
            f'<span class="verdict verdict-{esc(row.primary_verdict)}">'
            f"{esc(row.verdict_label)}</span>"
        )
    flags = "".join(
        f'<span class="flag-kind" title="{esc(flag.reason)}">{esc(flag.get_kind_display())}</span> '
        for flag in row.active_flags
    )
    cells = (
        f'<td><a href="{esc(row.url)}">{esc(row.title)}</a></td>'
        f'<td><span class="stage stage-{esc(row.stage)}">{esc(row.stage_label)}</span></td>'
        f"<td>{esc(row.unit)}</td>"
        f"<td>{esc(row.business_owner) or NOBODY}</td>"
        f"<td>{esc(row.delivery_lead) or NOBODY}</td>"
        f'<td class="num">{row.days_in_stage:d}</td>'
        f"<td>{verdict}</td>"
        f"<td>{flags or NO_VALUE}</td>"
    )
    return mark_safe(f"<tr>{cells}</tr>")  # noqa: S308 - every value is escaped above


def _escape(value) -> str:
    """`value` escaped for HTML: Django's `escape` without its lazy-string wrapper, which
    costs more than the escaping on plain strings."""
    return html.escape(str(value))


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
