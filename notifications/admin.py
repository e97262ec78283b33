from django.contrib import admin

from notifications.models import (
    FlagSnooze,
    Notification,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)


class ReadOnly(admin.ModelAdmin):
    """A record of what was sent: looked at, never edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ["name", "url", "active", "kinds", "created_at"]
    list_filter = ["active"]
    fields = ["name", "url", "secret", "kinds", "active"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.base_fields[
            "secret"
        ].help_text = (
            "Shared with the receiver, which checks each request's Gantry-Signature with it."
        )
        form.base_fields[
            "kinds"
        ].help_text = 'The kinds it hears, e.g. ["flag_raised", "decision"]; [] for every kind.'
        return form


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["at", "status", "latency_ms", "error"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnly):
    list_display = ["kind", "webhook", "state", "attempts", "created_at", "next_at", "delivered_at"]
    list_filter = ["state", "kind", "webhook"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [AttemptInline]


@admin.register(Notification)
class NotificationAdmin(ReadOnly):
    list_display = [
        "title",
        "recipient",
        "kind",
        "created_at",
        "read_at",
        "email",
        "email_attempts",
    ]
    list_filter = ["kind", "email"]
    search_fields = ["title", "recipient__username", "key"]
    readonly_fields = [f.name for f in Notification._meta.fields]


@admin.register(FlagSnooze)
class FlagSnoozeAdmin(ReadOnly):
    list_display = ["flag", "until", "by", "at", "reason"]
    readonly_fields = [f.name for f in FlagSnooze._meta.fields]
