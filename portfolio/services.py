"""Writes to the portfolio: creating and framing initiatives."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.text import slugify

from gates import permissions
from portfolio.models import Initiative


def save_framing(*, initiative_form, metric_form, user) -> Initiative:
    """Create or update an initiative and its primary metric in one transaction.

    Both forms must be valid. Raises PermissionDenied when the user may not edit the framing.
    """
    initiative = initiative_form.instance
    creating = initiative.pk is None
    if creating and not permissions.may_create_initiative(user):
        raise PermissionDenied("Only programme managers create initiatives.")
    if not creating and not permissions.may_edit_framing(initiative, user):
        raise PermissionDenied("Only programme managers and this initiative's owners edit it.")

    with transaction.atomic():
        initiative = initiative_form.save(commit=False)
        if creating:
            initiative.created_by = user
        # stage is never written here: it changes only through gates.services.decide.
        if creating:
            initiative.save()
        else:
            initiative.save(update_fields=[*initiative_form.Meta.fields, "updated_at"])
        if metric_form.has_metric():
            metric = metric_form.save(commit=False)
            metric.initiative = initiative
            metric.is_primary = True
            if not metric.slug:
                metric.slug = _free_metric_slug(initiative, metric.name)
            metric.save()
    return initiative


def _free_metric_slug(initiative, name: str) -> str:
    """A slug for a new metric that no other metric of the initiative uses (the DB demands it)."""
    base = slugify(name)[:110] or "metric"
    taken = set(initiative.metrics.values_list("slug", flat=True))
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug
