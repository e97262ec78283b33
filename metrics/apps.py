from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"

    def ready(self) -> None:
        # Gate 2's and gate 4's data criteria replace the placeholders in the registry.
        from metrics import criteria  # noqa: F401
