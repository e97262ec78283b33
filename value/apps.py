from django.apps import AppConfig


class ValueConfig(AppConfig):
    name = "value"
    verbose_name = "Value and budget"

    def ready(self) -> None:
        from gates import audit
        from value.models import BudgetDecision, BudgetLine, BudgetRequest

        # Requests, their decisions and the lines they open are part of the initiative's
        # audit trail, sealed by the services that write them like gate decisions.
        for model in (BudgetRequest, BudgetDecision, BudgetLine):
            audit.register(model)
