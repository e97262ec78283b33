from django.contrib import admin

from metrics.models import Metric


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
