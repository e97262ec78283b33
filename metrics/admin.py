from django.contrib import admin

from metrics.models import Metric


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("name", "initiative", "unit", "direction", "ship_threshold", "is_primary")
    list_filter = ("direction", "is_primary")
    search_fields = ("name", "initiative__title")
    list_select_related = ("initiative",)
