from django.contrib import admin

from gates.admin import ReadOnlyAdmin
from metrics.models import DataFeed, Delivery, FeedEvent, Metric
from portfolio.admin import InitiativeAdmin
from portfolio.services import METRIC_FIELDS


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("name", "initiative", "unit", "direction", "ship_threshold", "is_primary")
    list_filter = ("direction", "is_primary")
    search_fields = ("name", "initiative__title")
    list_select_related = ("initiative",)
    # A metric added here is a secondary one: the primary metric is the success definition,
    # framed on the initiative's page and changed after gate 1 only by a recorded reframe.
    readonly_fields = ("is_primary",)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_primary:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting the primary metric would take its observations and snapshots with it.
        if obj is not None and obj.is_primary:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(DataFeed)
class DataFeedAdmin(ReadOnlyAdmin):
    list_display = ("name", "initiative", "kind", "status", "last_fresh_at", "is_stale")
    list_filter = ("kind", "status", "is_stale")
    search_fields = ("name", "initiative__title")
    list_select_related = ("initiative",)
    exclude = ("token_hash",)


@admin.register(FeedEvent)
class FeedEventAdmin(ReadOnlyAdmin):
    list_display = ("feed", "action", "by", "at", "reason")
    list_filter = ("action",)
    list_select_related = ("feed", "by")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("feed", "at", "source", "received", "created", "duplicates", "fresh")
    list_filter = ("source",)
    list_select_related = ("feed",)


class MetricInline(admin.TabularInline):
    model = Metric
    extra = 0
    fields = (*METRIC_FIELDS, "is_primary")


# The initiative admin (view only) shows its metrics; the domain app does not know them.
InitiativeAdmin.inlines = [*InitiativeAdmin.inlines, MetricInline]
