from django.apps import AppConfig


class ReadinessConfig(AppConfig):
    name = "readiness"
    verbose_name = "Readiness reviews"

    def ready(self) -> None:
        # Register gate 3's and gate 4's criteria and the effects of review decisions.
        from readiness import criteria, services  # noqa: F401
