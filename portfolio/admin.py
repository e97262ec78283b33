from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db import models

from metrics.models import Metric
from portfolio.models import BusinessUnit, Initiative, User


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


class MetricInline(admin.TabularInline):
    model = Metric
    extra = 0
    fields = (
        "name",
        "unit",
        "direction",
        "ship_threshold",
        "baseline",
        "aggregation",
        "comparison_window_days",
        "is_primary",
    )


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
    inlines = [MetricInline]
