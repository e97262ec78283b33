from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from gates import events
        from jobs import registry
        from notifications import delivery, services

        events.listen(services.hear)
        # On every tick: whatever a lost nudge left pending is sent within one tick.
        registry.register("deliver-notifications", every=0, run=delivery.deliver)
