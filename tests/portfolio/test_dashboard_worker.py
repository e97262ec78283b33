"""The dashboard's lagging sections refreshed by a real Celery worker process, sharing the
broker, the database and the cache with the web process as in production.

Needs PostgreSQL, a Redis broker and a Redis cache (the worker must see the entries the
request reads); skips without them on a laptop, fails in CI (GANTRY_REQUIRE_SERVICES=1).
"""

import time

import pytest
from django.conf import settings as django_settings

from gates.stages import Stage
from jobs import publish
from metrics.models import Verdict
from tests.conftest import skip_or_fail
from tests.factories import MetricSnapshotFactory
from tests.portfolio.test_dashboard import dashboard, in_stage, with_primary
from tests.portfolio.test_dashboard_sections import verdict_count

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shared_cache():
    backend = django_settings.CACHES["default"]["BACKEND"]
    if "Redis" not in backend:
        skip_or_fail(
            "needs a Redis cache the worker shares: set CACHE_URL=redis://...",
            variable="GANTRY_REQUIRE_SERVICES",
        )
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def refreshed(log: str) -> bool:
    return any(
        "pages.tasks.refresh_dashboard[" in line and "succeeded" in line
        for line in log.splitlines()
    )


def test_a_worker_refreshes_the_lagging_status_while_requests_are_served_from_the_cache(
    shared_cache,
    worker,
    client,
    executive,
    manager,
    computed,
):
    launched = in_stage(Stage.NARROW_LAUNCH, user=manager, title="Launched")
    with_primary(launched, verdict=Verdict.MEETING, pilot=90)
    dashboard(client, executive)
    metric = launched.metrics.get(is_primary=True)
    MetricSnapshotFactory(metric=metric, verdict=Verdict.BELOW, pilot_value=70, latest=True)
    # The worker fixture sets the debounce to 1 s: past half of it, a request asks.
    time.sleep(0.6)
    computed.clear()

    served = dashboard(client, executive)
    assert verdict_count(served, Verdict.MEETING) == 1  # from the cache, within the debounce
    assert computed == {}
    assert publish.flush(timeout=10)

    deadline = time.monotonic() + 30
    while not refreshed(worker.read_text()):
        assert time.monotonic() < deadline, worker.read_text()[-3000:]
        time.sleep(0.2)

    after = dashboard(client, executive)
    assert verdict_count(after, Verdict.BELOW) == 1
    assert computed == {}  # the worker computed it, not the request
