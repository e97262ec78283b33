"""Celery task of the pages app: the dashboard's lagging sections, computed off the request.

Safe to lose or to run twice: a request computes a section itself once it is a debounce old.
"""

from celery import shared_task
from django.contrib.auth import get_user_model

from pages import dashboard
from portfolio.models import BusinessUnit


@shared_task(acks_late=False, ignore_result=True)
def refresh_dashboard(unit_id: int | None, sponsor_id: int | None) -> list[str]:
    unit = BusinessUnit.objects.filter(pk=unit_id).first() if unit_id else None
    sponsor = get_user_model().objects.filter(pk=sponsor_id).first() if sponsor_id else None
    if (unit_id and unit is None) or (sponsor_id and sponsor is None):
        return []  # the scope went away since the request asked
    return dashboard.refresh_lagging(unit=unit, sponsor=sponsor)
