"""Fixtures of the metrics tests: eager Celery, an initiative with a feed, the API client.

CI sets CELERY_BROKER_URL to Redis, which turns eager mode off; tests that expect a
delivery's recompute to have run ask for `eager` explicitly, so they never depend on how the
suite was started. `eager` also sets Celery's own configuration, because a test that set
`app.conf.task_always_eager` directly leaves Celery deaf to later changes of the Django setting.
"""

import pytest
from django.core.cache import cache

from gantry.celery import app
from metrics import services
from metrics.models import FeedKind
from tests.factories import InitiativeFactory
from tests.metrics.helpers import API


@pytest.fixture
def eager(settings):
    """Tasks run in-process at once; no debounce key is left from an earlier test."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    changes = app.conf.changes
    had, before = "task_always_eager" in changes, changes.get("task_always_eager")
    app.conf.task_always_eager = True
    cache.clear()
    yield
    cache.clear()
    if had:
        changes["task_always_eager"] = before
    else:
        changes.pop("task_always_eager", None)


@pytest.fixture
def clean_cache():
    """No debounce key left from an earlier test (SQLite reuses primary keys)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def initiative(db):
    """A framed initiative (primary metric: threshold 85, baseline 78, higher is better)."""
    return InitiativeFactory(framed=True)


@pytest.fixture
def metric(initiative):
    return initiative.metrics.get(is_primary=True)


@pytest.fixture
def live(initiative, manager):
    """(feed, token): a live feed with an owner, made through the service as the page does."""
    return services.create_feed(
        initiative=initiative,
        user=manager,
        name="Resolution events",
        kind=FeedKind.LIVE,
        owner=manager,
        freshness_hours=24,
    )


@pytest.fixture
def post():
    """post(client, feed, token, body) -> the API's response; body is a list or raw text."""

    def send(client, feed, token, body, **extra):
        headers = {} if token is None else {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        headers.update(extra)
        return client.post(
            API.format(feed.pk), data=body, content_type="application/json", **headers
        )

    return send
