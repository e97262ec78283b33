"""Gantry's project package: settings, URLs, the Celery application, the health report and
the demo portfolio. It sits above every app and nothing imports it but the entry points."""

from .celery import app as celery_app

__all__ = ["celery_app"]
