from django.apps import AppConfig


class GantryConfig(AppConfig):
    name = "gantry"
    verbose_name = "Gantry"

    def ready(self) -> None:
        # Registers the system checks.
        from gantry import checks  # noqa: F401
