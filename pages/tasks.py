"""Celery task of the read layer: the pilot-purgatory detection job."""

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from pages import purgatory

log = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def sync_purgatory_flags() -> dict:
    return purgatory.sync_flags()
