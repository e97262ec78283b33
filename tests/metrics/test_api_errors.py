"""Every answer of the API is JSON, and a database that is away answers 503 with
Retry-After: the client keeps its batch and sends it again, nothing half-written."""

import json
import socket
from unittest import mock

import pytest
from django.db import connection

from metrics import ingest
from tests.metrics.helpers import API, item, stored

pytestmark = pytest.mark.django_db


def test_an_unknown_api_address_answers_404_json(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["error"] == response.json()["detail"] == "Not Found"


def test_a_get_of_the_ingestion_endpoint_answers_405_json_naming_post(client, live):
    feed, _ = live
    response = client.get(API.format(feed.pk))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"] == "Method Not Allowed"
    assert response.json()["status"] == 405


def test_an_unexpected_error_answers_500_json(client, post, live, metric):
    feed, token = live
    client.raise_request_exception = False
    with mock.patch.object(ingest, "validate", side_effect=RuntimeError("bug")):
        response = post(client, feed, token, json.dumps([item(metric)]))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert "nothing was stored" in response.json()["error"]
    assert stored() == 0


def test_pages_keep_their_html_errors(client, manager):
    client.force_login(manager)
    response = client.get("/initiatives/no-such-initiative/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_a_database_that_is_away_answers_503_json_with_retry_after(
    client, post, live, metric, require_postgres
):
    feed, token = live
    batch = json.dumps([item(metric)])
    real = dict(connection.settings_dict)
    connection.close()
    # Nothing listens there: every connection the request opens is refused, as while
    # PostgreSQL restarts.
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    try:
        response = post(client, feed, token, batch)
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(real)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "10"
    assert "Send the batch again later" in response.json()["error"]
    assert stored() == 0
    # Back again: the same batch is taken.
    assert post(client, feed, token, batch).json() == {"created": 1, "duplicates": 0, "fresh": 1}
