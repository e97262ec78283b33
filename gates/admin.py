from django.contrib import admin

from gates.models import AuditEntry, GateDecision


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never written: rows that make up the audit trail, or that change only through
    the services that record and seal each change."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(GateDecision)
class GateDecisionAdmin(ReadOnlyAdmin):
    """Read-only: gate decisions are the audit trail."""

    list_display = (
        "initiative",
        "transition",
        "from_stage",
        "to_stage",
        "decided_by",
        "decided_at",
    )
    list_filter = ("transition", "to_stage")
    search_fields = ("initiative__title", "rationale")
    list_select_related = ("initiative", "decided_by")
    date_hierarchy = "decided_at"


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read-only: the audit chain. `manage.py verify_audit` checks it."""

    list_display = ("initiative", "seq", "kind", "actor", "at", "summary")
    list_filter = ("kind",)
    search_fields = ("initiative__title", "summary")
    list_select_related = ("initiative", "actor")
    date_hierarchy = "at"
