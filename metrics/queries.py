"""Reads for metric panels: a fixed number of queries whatever the number of metrics."""

from collections import defaultdict

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from metrics.models import MetricSnapshot

TREND_POINTS = 30


def recent_snapshots(metric_ids, per_metric: int = TREND_POINTS) -> dict[int, list]:
    """{metric_id: its newest snapshots, oldest first}, in one query."""
    ranked = (
        MetricSnapshot.objects.filter(metric_id__in=list(metric_ids))
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("metric_id")],
                order_by=[F("computed_at").desc(), F("id").desc()],
            )
        )
        .filter(rank__lte=per_metric)
        .only("metric_id", "computed_at", "pilot_value", "baseline_value", "verdict")
    )
    history: dict[int, list] = defaultdict(list)
    for snapshot in ranked:
        history[snapshot.metric_id].append(snapshot)
    for snapshots in history.values():
        snapshots.sort(key=lambda s: (s.computed_at, s.pk))
    return history
