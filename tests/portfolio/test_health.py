"""/healthz: database and broker state as JSON, 503 when a dependency is down, no secrets."""

import json
from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import OperationalError

from gantry.celery import app as celery_app

pytestmark = pytest.mark.django_db

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

    with (
        mock.patch.object(celery_app, "connection_for_write", connection_for_write),
        mock.patch.object(celery_app.control, "ping", return_value=[{"w1": "pong"}]),
    ):
        yield


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
    report = response.json()
    assert report["status"] == "ok"
    assert report["checks"]["database"]["ok"] is True
    assert report["checks"]["database"]["vendor"] in {"sqlite", "postgresql"}
    assert report["checks"]["broker"] == {"ok": True, "mode": "eager", "ms": mock.ANY}
    assert report["checks"]["workers"]["ok"] is True
    assert_no_secrets(response.content.decode(), settings)


def test_health_check_needs_no_login(client, eager):
    response = client.get("/healthz")
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
    assert report["checks"]["database"]["ok"] is False
    assert report["checks"]["database"]["error"] == "OperationalError"
    assert_no_secrets(response.content.decode(), settings)


def test_database_failure_from_the_cursor_answers_503(client, eager):
    with mock.patch("gantry.health.connection") as connection:
        connection.cursor.side_effect = OperationalError("server closed the connection")
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {
        "ok": False,
        "error": "OperationalError",
        "ms": mock.ANY,
    }


def test_healthy_broker_answers_200_and_counts_workers(client, with_broker, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    report = response.json()
    assert report["checks"]["broker"]["ok"] is True
    assert report["checks"]["broker"]["mode"] == "queue"
    assert report["checks"]["workers"]["count"] == 1
    assert_no_secrets(response.content.decode(), settings)


def test_broker_failure_answers_503_without_the_broker_url(client, with_broker, settings):
    error = ConnectionError(f"Error 111 connecting to {BROKER_URL}. Connection refused.")
    with mock.patch.object(celery_app, "connection_for_write", side_effect=error):
        response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["checks"]["broker"] == {"ok": False, "error": "ConnectionError", "ms": mock.ANY}
    # Workers are not asked when the broker is down.
    assert report["checks"]["workers"] == {"ok": True, "count": 0}
    assert_no_secrets(response.content.decode(), settings)


def test_no_worker_is_reported_but_not_unhealthy(client, with_broker):
    with mock.patch.object(celery_app.control, "ping", return_value=[]):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["workers"]["count"] == 0


def test_health_body_holds_only_states_and_timings(client, eager, settings):
    body = client.get("/healthz").content.decode()
    report = json.loads(body)
    assert set(report) == {"status", "checks"}
    assert set(report["checks"]) == {"database", "broker", "workers"}
    assert_no_secrets(body, settings)
    for value in (settings.DATABASES["default"]["NAME"], settings.DATABASES["default"]["HOST"]):
        if value and len(str(value)) > 3:
            assert str(value) not in body
