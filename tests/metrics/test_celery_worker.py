"""Ingestion through the API with a real Celery worker process: no eager mode anywhere.

Needs PostgreSQL (the worker must see the test database) and a Redis broker; skips without
them on a laptop, fails in CI (GANTRY_REQUIRE_SERVICES=1).
"""

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from gantry.celery import app
from gates.criteria import registry
from gates.stages import Stage
from gates.stages import Transition as T
from metrics import services
from metrics.models import Metric, Verdict
from portfolio.models import Initiative
from tests.conftest import skip_or_fail
from tests.factories import InitiativeFactory
from tests.helpers import advance

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def _broker_reachable(url: str) -> bool:
    try:
        with app.connection_for_write(url) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(settings, tmp_path):
    """A `celery worker` process on its own queue, pointed at the test database."""
    if connection.vendor != "postgresql":
        skip_or_fail("needs PostgreSQL for a worker process", variable="GANTRY_REQUIRE_SERVICES")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker or not _broker_reachable(broker):
        skip_or_fail(
            "needs a Redis broker: set CELERY_BROKER_URL=redis://...",
            variable="GANTRY_REQUIRE_SERVICES",
        )
    queue = f"gantry-test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS = 1
    overridden = {"task_always_eager": False, "task_default_queue": queue}
    previous = {key: app.conf.changes[key] for key in overridden if key in app.conf.changes}
    app.conf.update(overridden)
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gantry", "worker", "--pool", "solo",
         "--queues", queue, "--without-heartbeat", "--without-gossip", "--without-mingle",
         "--loglevel", "INFO"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait(lambda: "ready" in log.read_text(), timeout=60, what="the worker to start", log=log)
        yield log
    finally:
        process.terminate()
        process.wait(timeout=30)
        # Put back exactly what was there: a leftover value would shadow the Django setting.
        for key in overridden:
            app.conf.changes.pop(key, None)
        app.conf.update(previous)


def _wait(condition, *, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


def _post(client, feed, token, items):
    return client.post(
        f"/api/v1/feeds/{feed.pk}/observations",
        data=items,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_ingested_observations_are_recomputed_by_the_worker_and_open_gate_four(
    worker, client, manager
):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    # The launch began three weeks ago (only the entry time moves; the stage is untouched).
    Initiative.objects.filter(pk=initiative.pk).update(
        stage_entered_at=timezone.now() - timedelta(days=21)
    )
    metric = initiative.metrics.get(is_primary=True)  # threshold 85, higher is better
    feed, token = services.create_feed(
        initiative=initiative,
        user=manager,
        name="Resolution events",
        kind="live",
        owner=manager,
        freshness_hours=24,
    )
    now = timezone.now()
    items = []
    for hours in range(1, 41):
        moment = (now - timedelta(hours=hours * 6)).isoformat()
        items.append({"metric": metric.slug, "cohort": "pilot", "observed_at": moment,
                      "value": 90 + hours % 3})  # fmt: skip
        items.append({"metric": metric.slug, "cohort": "baseline", "observed_at": moment,
                      "value": 79 + hours % 4})  # fmt: skip

    response = _post(client, feed, token, items)

    assert response.status_code == 201, response.content
    assert response.json() == {"created": 80, "duplicates": 0, "fresh": 6}
    _wait(
        lambda: Metric.objects.get(pk=metric.pk).latest_snapshot_id is not None,
        timeout=60,
        what="the worker's snapshot",
        log=worker,
    )
    snapshot = Metric.objects.select_related("latest_snapshot").get(pk=metric.pk).latest_snapshot
    assert snapshot.verdict == Verdict.MEETING
    assert (snapshot.pilot_count, snapshot.baseline_count) == (40, 40)
    assert "recomputed 1 metrics" in worker.read_text()

    initiative = Initiative.objects.get(pk=initiative.pk)
    outcomes = {o.key: o for o in registry.evaluate(initiative, T.WIDEN)}
    assert outcomes["window_elapsed"].passed
    assert outcomes["pilot_meets_threshold"].passed, outcomes["pilot_meets_threshold"].reason
    assert outcomes["pilot_beats_baseline"].passed, outcomes["pilot_beats_baseline"].reason
    assert "confidence" in outcomes["pilot_beats_baseline"].reason
