"""A real `celery worker` process for tests: on its own queue, pointed at the test database,
sharing the broker (and, through the environment, the cache) with the test process.

`worker` is a fixture, offered to every test by tests/conftest.py. Needs PostgreSQL and a
Redis broker; skips without them on a laptop, fails in CI (GANTRY_REQUIRE_SERVICES=1).
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from gantry.celery import app
from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]


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


def worker(settings, tmp_path):
    """Start the worker, yield its log file, stop it: the body of the `worker` fixture."""
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
        wait(lambda: "ready" in log.read_text(), timeout=60, what="the worker to start", log=log)
        yield log
    finally:
        process.terminate()
        process.wait(timeout=30)
        # Put back exactly what was there: a leftover value would shadow the Django setting.
        for key in overridden:
            app.conf.changes.pop(key, None)
        app.conf.update(previous)


def wait(condition, *, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")
