from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "pages"
    verbose_name = "Pages"

    def ready(self) -> None:
        from jobs import registry
        from pages import purgatory

        # Flags change on a scale of days (stage limits, 14 days below threshold); every 15
        # minutes keeps the dashboard current at the cost of a few set-based queries.
        registry.register("sync-purgatory-flags", every=900, run=purgatory.sync_flags)
