"""Health reports with no secrets in them, answered within a second whatever is down.

`/healthz` is the whole service: the database, the broker, and a worker that ticked within
GANTRY_WORKER_SILENCE_SECONDS (read from the heartbeat rows the tick writes, not pinged).
`/livez` is this web process: the database only, for a load balancer or a container
healthcheck, which should not take the web out of service because a worker is down.

Each check runs in a small thread pool against one deadline: a hung database or Redis makes
its check report a timeout instead of holding the request (and a health poller) for as long
as the socket waits.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Late
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection, connections
from django.db.models import Max
from django.http import JsonResponse
from django.utils import timezone

from jobs.models import WorkerHeartbeat

# All checks together; the response follows within milliseconds.
DEADLINE_SECONDS = 0.8
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")


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
        conn.ensure_connection(max_retries=1, timeout=DEADLINE_SECONDS)
        transport = conn.transport_cls
    return {"ok": True, "mode": "queue", "transport": str(transport)}


def _workers() -> dict:
    if not settings.CELERY_BROKER_URL:
        return {"ok": True, "count": 0, "mode": "eager"}
    now = timezone.now()
    silence = timedelta(seconds=settings.GANTRY_WORKER_SILENCE_SECONDS)
    beats = WorkerHeartbeat.objects.aggregate(last=Max("seen_at"))
    count = WorkerHeartbeat.objects.filter(seen_at__gte=now - silence).count()
    state = {"ok": count > 0, "count": count}
    if beats["last"] is not None:
        state["last_seen_seconds_ago"] = round((now - beats["last"]).total_seconds())
    return state


def _timed(check) -> dict:
    """Run one check in this pool thread; its database connection is closed after."""
    started = time.perf_counter()
    try:
        state = check()
    except Exception as exc:  # any failure is a state to report, not a crash
        state = {"ok": False, "error": type(exc).__name__}
    finally:
        connections.close_all()  # this thread's own connections only
    state["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return state


def _run(checks: dict) -> dict:
    deadline = time.monotonic() + DEADLINE_SECONDS
    futures = {name: _pool.submit(_timed, check) for name, check in checks.items()}
    results = {}
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except Late:
            results[name] = {"ok": False, "error": "timeout", "ms": DEADLINE_SECONDS * 1000}
    return results


def report() -> dict:
    checks = _run({"database": _database, "broker": _broker, "workers": _workers})
    healthy = all(check["ok"] for check in checks.values())
    return {"status": "ok" if healthy else "unavailable", "checks": checks}


def _answer(result: dict) -> JsonResponse:
    response = JsonResponse(result, status=200 if result["status"] == "ok" else 503)
    response["Cache-Control"] = "no-store"
    return response


@login_not_required
def healthz(request):
    return _answer(report())


@login_not_required
def livez(request):
    checks = _run({"database": _database})
    status = "ok" if checks["database"]["ok"] else "unavailable"
    return _answer({"status": status, "checks": checks})
