from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        from gates import audit

        # Gate 2's and gate 4's data criteria join the registry; the services register what
        # stopping an initiative does to its feeds.
        from metrics import criteria, services  # noqa: F401
        from metrics.models import FeedEvent

        audit.register(FeedEvent)
