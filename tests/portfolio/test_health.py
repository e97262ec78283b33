"""/healthz and /livez: state as JSON, 503 when a dependency or every worker is down, an
answer within a second whatever hangs, and no secrets.

The checks run in their own threads on their own connections, so these tests commit what
the checks must see (transaction=True).
"""

import json
import time
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from gantry import health
from gantry.celery import app as celery_app
from jobs.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db(transaction=True)

BROKER_URL = "redis://:Br0kerPassw0rd@redis.internal:6379/0"


@pytest.fixture
def eager(settings):
    settings.CELERY_BROKER_URL = ""


@pytest.fixture
def with_broker(settings):
    """A configured broker with credentials in its URL; the connection itself is faked."""
    settings.CELERY_BROKER_URL = BROKER_URL

    @contextmanager
    def connection_for_write():
        conn = mock.Mock()
        conn.transport_cls = "redis"
        yield conn

    with mock.patch.object(celery_app, "connection_for_write", connection_for_write):
        yield


def beat(hostname: str = "celery@w1", *, seconds_ago: float = 0) -> None:
    WorkerHeartbeat.objects.create(
        hostname=hostname, seen_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def assert_no_secrets(body: str, settings) -> None:
    assert settings.SECRET_KEY not in body
    assert "Br0kerPassw0rd" not in body
    assert "hunter2" not in body
    assert BROKER_URL not in body
    assert "redis.internal" not in body
    assert "password" not in body.lower()
    database_password = settings.DATABASES["default"].get("PASSWORD")
    if database_password:
        assert database_password not in body


def test_healthy_service_answers_200_with_database_and_broker_state(client, eager, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    report = response.json()
    assert report["status"] == "ok"
    assert report["checks"]["database"]["ok"] is True
    assert report["checks"]["database"]["vendor"] in {"sqlite", "postgresql"}
    assert report["checks"]["broker"] == {"ok": True, "mode": "eager", "ms": mock.ANY}
    assert report["checks"]["workers"]["ok"] is True
    assert_no_secrets(response.content.decode(), settings)


@pytest.mark.parametrize("path", ["/healthz", "/livez"])
def test_health_checks_need_no_login(client, eager, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "Location" not in response


def test_database_failure_answers_503(client, eager, settings):
    failure = OperationalError(
        'connection to server at "db" failed: FATAL: password authentication failed '
        'for user "gantry" (password=hunter2)'
    )
    with mock.patch("gantry.health._database", side_effect=failure):
        response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "unavailable"
    database = report["checks"]["database"]
    assert database == {"ok": False, "error": "OperationalError", "ms": mock.ANY}
    assert_no_secrets(response.content.decode(), settings)


def test_a_worker_that_ticked_within_the_minute_is_healthy(client, with_broker, settings):
    beat(seconds_ago=settings.GANTRY_WORKER_SILENCE_SECONDS - 5)
    beat("celery@w2", seconds_ago=settings.GANTRY_WORKER_SILENCE_SECONDS + 60)  # gone
    response = client.get("/healthz")
    assert response.status_code == 200
    report = response.json()
    assert report["checks"]["broker"]["mode"] == "queue"
    assert report["checks"]["workers"]["count"] == 1
    assert report["checks"]["workers"]["ok"] is True
    assert_no_secrets(response.content.decode(), settings)


def test_no_worker_heard_within_the_minute_answers_503(client, with_broker, settings):
    beat(seconds_ago=settings.GANTRY_WORKER_SILENCE_SECONDS + 1)
    response = client.get("/healthz")
    assert response.status_code == 503
    workers = response.json()["checks"]["workers"]
    assert workers["ok"] is False
    assert workers["count"] == 0
    assert workers["last_seen_seconds_ago"] >= settings.GANTRY_WORKER_SILENCE_SECONDS + 1


def test_no_worker_ever_answers_503(client, with_broker):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"] == {"ok": False, "count": 0, "ms": mock.ANY}


def test_livez_ignores_workers_and_the_broker(client, with_broker):
    response = client.get("/livez")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database"}
    with mock.patch("gantry.health._database", side_effect=OperationalError("down")):
        assert client.get("/livez").status_code == 503


def test_broker_failure_answers_503_without_the_broker_url(client, with_broker, settings):
    beat()
    error = ConnectionError(f"Error 111 connecting to {BROKER_URL}. Connection refused.")
    with mock.patch.object(celery_app, "connection_for_write", side_effect=error):
        response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["checks"]["broker"] == {"ok": False, "error": "ConnectionError", "ms": mock.ANY}
    assert report["checks"]["workers"]["ok"] is True  # read from the database, not the broker
    assert_no_secrets(response.content.decode(), settings)


def test_a_hung_dependency_is_reported_within_a_second(client, with_broker):
    beat()

    def hang(*args, **kwargs):
        time.sleep(3)

    with mock.patch.object(health, "_broker", side_effect=hang):
        started = time.monotonic()
        response = client.get("/healthz")
        took = time.monotonic() - started
    assert took < 1.0
    assert response.status_code == 503
    report = response.json()
    assert report["checks"]["broker"] == {"ok": False, "error": "timeout", "ms": mock.ANY}
    assert report["checks"]["database"]["ok"] is True


def test_health_body_holds_only_states_and_timings(client, eager, settings):
    body = client.get("/healthz").content.decode()
    report = json.loads(body)
    assert set(report) == {"status", "checks"}
    assert set(report["checks"]) == {"database", "broker", "workers"}
    assert_no_secrets(body, settings)
    for value in (settings.DATABASES["default"]["NAME"], settings.DATABASES["default"]["HOST"]):
        if value and len(str(value)) > 3:
            assert str(value) not in body
