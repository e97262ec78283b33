"""Health report: database, broker and worker state, with no secrets in it."""

import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        state = check()
    except Exception as exc:  # any failure is a state to report, not a crash
        state = {"ok": False, "error": type(exc).__name__}
    state["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return state


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def _broker() -> dict:
    if not settings.CELERY_BROKER_URL:
        return {"ok": True, "mode": "eager"}
    from gantry.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        transport = conn.transport_cls
    return {"ok": True, "mode": "queue", "transport": str(transport)}


def _workers() -> dict:
    if not settings.CELERY_BROKER_URL:
        return {"ok": True, "count": 0, "mode": "eager"}
    from gantry.celery import app

    replies = app.control.ping(timeout=0.3) or []
    # No worker is not unhealthy for the web: work queues up and beat catches up later.
    return {"ok": True, "count": len(replies)}


def report() -> dict:
    checks = {"database": _timed(_database), "broker": _timed(_broker)}
    checks["workers"] = _timed(_workers) if checks["broker"]["ok"] else {"ok": True, "count": 0}
    healthy = checks["database"]["ok"] and checks["broker"]["ok"]
    return {"status": "ok" if healthy else "unavailable", "checks": checks}


@login_not_required
def healthz(request):
    result = report()
    return JsonResponse(result, status=200 if result["status"] == "ok" else 503)
