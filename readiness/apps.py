from django.apps import AppConfig


class ReadinessConfig(AppConfig):
    name = "readiness"
    verbose_name = "Readiness reviews"

    def ready(self) -> None:
        # Register gate 3's and gate 4's criteria and the effects of review decisions.
        from gates import audit
        from readiness import criteria, services, stakes  # noqa: F401
        from readiness.models import ReviewItemEvent, WorkItemEvent

        # Item and work-item histories are part of the audit trail: sealed in the chain by
        # the services that write them, checked by verify_audit.
        audit.register(ReviewItemEvent)
        audit.register(WorkItemEvent)
