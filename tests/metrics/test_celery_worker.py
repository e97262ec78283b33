"""Ingestion through the API with a real Celery worker process: no eager mode anywhere.

Needs PostgreSQL (the worker must see the test database) and a Redis broker; skips without
them on a laptop, fails in CI (GANTRY_REQUIRE_SERVICES=1).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from gates.criteria import registry
from gates.stages import Stage
from gates.stages import Transition as T
from metrics import services
from metrics.models import Metric, Verdict
from portfolio.models import Initiative
from tests.celery_worker import wait
from tests.factories import InitiativeFactory
from tests.helpers import advance

pytestmark = pytest.mark.django_db(transaction=True)


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
    wait(
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
