from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from gates import audit, events
        from jobs import registry
        from notifications import delivery, digest, reminders, services
        from notifications.models import FlagSnooze

        events.listen(services.hear)
        audit.register(FlagSnooze)
        # On every tick: whatever a lost nudge left pending is sent within one tick.
        registry.register("deliver-notifications", every=0, run=delivery.deliver)
        # Hourly: reminders are at most daily per item, so an hour's lateness is harmless,
        # and each day's first run comes within the hour after midnight.
        registry.register("reminders", every=3600, run=reminders.remind)
        # Every 15 minutes, so Monday's digest leaves soon after GANTRY_DIGEST_HOUR; it
        # sends only then, and the week's key makes later runs send nothing.
        registry.register("weekly-digest", every=900, run=digest.weekly)
