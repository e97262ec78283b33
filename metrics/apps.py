from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from gates import audit
        from jobs import registry

        # Gate 2's and gate 4's data criteria join the registry; the services register what
        # stopping an initiative does to its feeds.
        from metrics import criteria, partitions, recompute_queue, services, status  # noqa: F401
        from metrics.models import FeedEvent

        audit.register(FeedEvent)
        # On every tick: what a lost task left marked is recomputed within one tick.
        registry.register("recompute-sweep", every=0, run=recompute_queue.sweep)
        # Windows slide even when no data arrives; hourly keeps verdicts current without
        # flooding the snapshot history (deliveries trigger their own recompute).
        registry.register("recompute-all-metrics", every=3600, run=status.recompute)
        # Freshness windows are counted in hours; every 5 minutes flags a late feed well
        # within its first hour of lateness.
        registry.register("mark-stale-feeds", every=300, run=status.mark_stale_feeds)
        # Next months' observation partitions exist well before their first row: a day's
        # delay is harmless, and a missed run is made good by the next.
        registry.register(
            "observation-partitions", every=6 * 3600, run=partitions.ensure_partitions
        )
        # Expired observation months and surplus snapshots go once a day.
        registry.register("retention", every=24 * 3600, run=partitions.retain)
