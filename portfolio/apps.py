from django.apps import AppConfig


class PortfolioConfig(AppConfig):
    name = "portfolio"
    verbose_name = "Portfolio"

    def ready(self) -> None:
        from gates import audit
        from portfolio.models import FramingChange

        # Framing changes are part of the audit trail: sealed in the chain, checked by
        # verify_audit.
        audit.register(FramingChange)
