from django.contrib import admin, messages
from django.db import transaction

from gates.admin import ReadOnlyAdmin
from readiness.models import (
    ChecklistItemTemplate,
    ChecklistTemplate,
    PreLaunchWorkItem,
    ReadinessReview,
    ReviewItem,
)


class ItemInline(admin.TabularInline):
    model = ChecklistItemTemplate
    extra = 1
    fields = ("position", "key", "title", "guidance", "asks_numbers", "system_evidence")

    def _locked(self, obj) -> bool:
        return obj is not None and obj.in_use

    def has_add_permission(self, request, obj=None) -> bool:
        return not self._locked(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return not self._locked(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not self._locked(obj) and super().has_delete_permission(request, obj)


@admin.register(ChecklistTemplate)
class ChecklistTemplateAdmin(admin.ModelAdmin):
    """Versions in use by a review are read-only; change the checklist by making a new version."""

    list_display = ("__str__", "notes", "item_count", "in_use", "created_at")
    inlines = [ItemInline]
    actions = ["new_version"]

    @admin.display(description="Items")
    def item_count(self, obj) -> int:
        return obj.items.count()

    @admin.display(boolean=True, description="In use")
    def in_use(self, obj) -> bool:
        return obj.in_use

    def get_readonly_fields(self, request, obj=None):
        return ("version", "notes") if obj is not None and obj.in_use else ("version",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not (obj is not None and obj.in_use) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if obj.version is None:
            latest = ChecklistTemplate.objects.order_by("-version").first()
            obj.version = (latest.version if latest else 0) + 1
        super().save_model(request, obj, form, change)

    @admin.action(description="Make a new version from the selected checklist")
    def new_version(self, request, queryset):
        source = queryset.order_by("-version").first()
        latest = ChecklistTemplate.objects.order_by("-version").first()
        with transaction.atomic():
            copy = ChecklistTemplate.objects.create(
                version=latest.version + 1, notes=f"Copied from v{source.version}."
            )
            ChecklistItemTemplate.objects.bulk_create(
                [
                    ChecklistItemTemplate(
                        template=copy,
                        key=i.key,
                        title=i.title,
                        guidance=i.guidance,
                        asks_numbers=i.asks_numbers,
                        system_evidence=i.system_evidence,
                        position=i.position,
                    )
                    for i in source.items.all()
                ]
            )
        messages.success(request, f"Made {copy}; add or edit its items, new reviews will use it.")


class ReviewItemInline(admin.TabularInline):
    model = ReviewItem
    extra = 0
    fields = ("template_item", "assignee", "checked", "checked_by", "checked_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReadinessReview)
class ReadinessReviewAdmin(admin.ModelAdmin):
    """Read-only: reviews change through their page and the gate decisions."""

    list_display = ("initiative", "outcome", "opened_at", "decided_at", "template")
    list_filter = ("outcome",)
    list_select_related = ("initiative", "template")
    inlines = [ReviewItemInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PreLaunchWorkItem)
class PreLaunchWorkItemAdmin(ReadOnlyAdmin):
    """View only: gate 4 reads open work items, so they are made by a failed review and
    closed through `complete_work_item`, which locks the initiative and seals the change; an
    edit or a deletion here would unblock a gate without a trace."""

    list_display = ("title", "initiative", "assignee", "due_date", "status")
    list_filter = ("status",)
    list_select_related = ("initiative", "assignee")
