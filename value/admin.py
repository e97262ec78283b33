"""Budget requests, decisions and lines in the admin: shown, never written (they are sealed
in the audit chain and change only through value.services)."""

from django.contrib import admin

from gates.admin import ReadOnlyAdmin
from value.models import BudgetDecision, BudgetLine, BudgetRequest


@admin.register(BudgetRequest)
class BudgetRequestAdmin(ReadOnlyAdmin):
    list_display = ("initiative", "kind", "currency", "amount", "requested_by", "requested_at")
    list_filter = ("kind", "currency")
    search_fields = ("initiative__title", "purpose")
    list_select_related = ("initiative", "requested_by")
    date_hierarchy = "requested_at"


@admin.register(BudgetDecision)
class BudgetDecisionAdmin(ReadOnlyAdmin):
    list_display = ("request", "outcome", "decided_by", "decided_at")
    list_filter = ("outcome",)
    search_fields = ("request__initiative__title", "rationale")
    list_select_related = ("request__initiative", "decided_by")
    date_hierarchy = "decided_at"


@admin.register(BudgetLine)
class BudgetLineAdmin(ReadOnlyAdmin):
    list_display = (
        "initiative",
        "kind",
        "currency",
        "amount",
        "starts_on",
        "ends_on",
        "answerable",
    )
    list_filter = ("kind", "currency")
    search_fields = ("initiative__title",)
    list_select_related = ("initiative", "answerable")
    date_hierarchy = "starts_on"
