from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db import models

from gates.admin import ReadOnlyAdmin
from portfolio.models import (
    BusinessUnit,
    FramingChange,
    Initiative,
    PurgatoryFlag,
    StageLimit,
    User,
)


@admin.register(User)
class GantryUserAdmin(UserAdmin):
    list_display = ("username", "first_name", "last_name", "email", "role_names", "is_active")
    list_filter = ("groups", "is_active", "is_staff")

    @admin.display(description="Roles")
    def role_names(self, obj) -> str:
        return ", ".join(g.name for g in obj.groups.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(BusinessUnit)
class BusinessUnitAdmin(admin.ModelAdmin):
    list_display = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name",)


@admin.register(Initiative)
class InitiativeAdmin(admin.ModelAdmin):
    list_display = ("title", "stage", "business_unit", "business_owner", "stage_entered_at")
    list_filter = ("stage", "business_unit")
    search_fields = ("title", "summary")
    list_select_related = ("business_unit", "business_owner")
    # The stage moves only through gate decisions, never by editing.
    readonly_fields = (
        "stage",
        "stop_reason",
        "stage_entered_at",
        "created_by",
        "created_at",
        "updated_at",
    )
    prepopulated_fields = {"slug": ("title",)}
    autocomplete_fields = ("sponsor", "business_owner", "operational_owner", "delivery_lead")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    # View only: framing is created and changed on Gantry's pages, where every change is
    # recorded and sealed in the audit trail; an edit here would leave no trace.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StageLimit)
class StageLimitAdmin(admin.ModelAdmin):
    """How many days an initiative may spend in a stage before it is flagged as stuck."""

    list_display = ("stage", "days")
    list_editable = ("days",)
    list_display_links = ("stage",)


@admin.register(PurgatoryFlag)
class PurgatoryFlagAdmin(admin.ModelAdmin):
    """Read-only: flags are raised and cleared by the detection job."""

    list_display = ("initiative", "kind", "reason", "raised_at", "cleared_at")
    list_filter = ("kind", ("cleared_at", admin.EmptyFieldListFilter))
    list_select_related = ("initiative",)
    search_fields = ("initiative__title", "reason")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FramingChange)
class FramingChangeAdmin(ReadOnlyAdmin):
    """Read-only: framing changes are part of the audit trail."""

    list_display = ("initiative", "field", "old_value", "new_value", "changed_by", "changed_at")
    list_filter = ("field",)
    search_fields = ("initiative__title", "reason")
    list_select_related = ("initiative", "changed_by")
