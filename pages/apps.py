from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "pages"
    verbose_name = "Pages"

    def ready(self) -> None:
        from jobs import registry
        from pages import purgatory, versions

        # Flags change on a scale of days (stage limits, 14 days below threshold); every 15
        # minutes keeps the dashboard current at the cost of a few set-based queries.
        registry.register("sync-purgatory-flags", every=900, run=purgatory.sync_flags)
        # The dashboard's sections are cached under the versions of what they read.
        versions.connect()
        # Only each source's newest change is read; the older ones are let go hourly.
        registry.register("prune-section-changes", every=3600, run=versions.prune)
