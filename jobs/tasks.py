"""The one task beat sends: a tick, every GANTRY_TICK_SECONDS."""

import logging
import socket

from celery import shared_task
from django.db import InterfaceError, OperationalError

from jobs import runner

log = logging.getLogger(__name__)


@shared_task(acks_late=False, ignore_result=True)
def tick() -> dict[str, str]:
    # No retry: the next tick is never more than an interval away, and it runs whatever
    # this one could not.
    hostname = tick.request.hostname or f"{socket.gethostname()}:{tick.request.id or ''}"
    try:
        return runner.tick(hostname=hostname)
    except (OperationalError, InterfaceError) as exc:
        log.warning("tick skipped, database unavailable: %s", exc)
        return {}
