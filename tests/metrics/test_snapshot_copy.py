"""A whole portfolio's snapshots go in by COPY on PostgreSQL; they equal the INSERTed ones."""

from datetime import timedelta

import pytest
from django.utils import timezone

from metrics import status
from metrics.models import MetricSnapshot, Observation
from tests.factories import DataFeedFactory, InitiativeFactory, MetricFactory

FIELDS = [
    "window_start", "window_end", "pilot_value", "pilot_count", "baseline_value",
    "baseline_count", "lift", "p_value", "confidence", "verdict", "summary",
]  # fmt: skip


def test_copied_snapshots_equal_inserted_ones(require_postgres):
    now = timezone.now()
    initiative = InitiativeFactory()
    feed = DataFeedFactory(initiative=initiative)
    metrics = [
        MetricFactory(initiative=initiative, is_primary=False, ship_threshold=80 + i % 10)
        for i in range(status.COPY_SNAPSHOTS_FROM + 20)
    ]
    Observation.objects.bulk_create(
        Observation(
            metric=m,
            feed=feed,
            cohort=cohort,
            value=base + (i * 7 + k) % 5,
            observed_at=now - timedelta(hours=k + 1),
        )
        for i, m in enumerate(metrics)
        for cohort, base in (("pilot", 84), ("baseline", 79))
        for k in range(i % 9)
    )

    assert status.recompute(now=now) == len(metrics)  # by COPY
    copied = {s.metric_id: s for s in MetricSnapshot.objects.all()}
    sample = [m.pk for m in metrics[:: len(metrics) // 10]]
    assert status.recompute(metric_ids=sample, now=now) == len(sample)  # by INSERT
    inserted = MetricSnapshot.objects.filter(metric_id__in=sample).exclude(
        pk__in=[copied[pk].pk for pk in sample]
    )

    assert len(copied) == len(metrics)
    for snapshot in inserted:
        twin = copied[snapshot.metric_id]
        # Floats within rounding: the whole portfolio's aggregate and the sample's add the
        # same rows in an order of the database's choosing.
        for field in FIELDS:
            expected = getattr(snapshot, field)
            if isinstance(expected, float):
                expected = pytest.approx(expected, rel=1e-12)
            assert getattr(twin, field) == expected, field
        assert twin.computed_at == snapshot.computed_at == now
    verdicts = {s.verdict for s in copied.values()}
    assert {"meeting", "insufficient_data"} <= verdicts
