"""Gantry's project package and the portfolio app (initiatives, business units, roles)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
