"""Notifications: one row per event and person, delivered in the app, by email and to webhooks.

A row is written in the transaction of what caused it (see `gates.events`), unique per
(cause, recipient), so a retried cause notifies nobody twice. Delivery reads the rows as a
work queue: a worker claims a pending row, sends it and records the result in one
transaction, so a crash or a broker outage delays mail and loses none.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from gates import clock
from gates.models import AppendOnly


class Kind(models.TextChoices):
    FLAG_RAISED = "flag_raised", "Purgatory flag raised"
    FLAG_CLEARED = "flag_cleared", "Purgatory flag cleared"
    FLAG_REMINDER = "flag_reminder", "Open purgatory flag, weekly reminder"
    ITEM_ASSIGNED = "item_assigned", "Checklist item assigned to you"
    ITEM_UNASSIGNED = "item_unassigned", "Checklist item taken from you"
    DUE = "due", "Your work due in 3 days, due today or overdue"
    ESCALATION = "escalation", "Work overdue by more than 7 days"
    REVIEW_READY = "review_ready", "Readiness review ready to decide"
    DECISION = "decision", "Gate decision recorded"
    FEED_STALE = "feed_stale", "Data feed went stale"
    FEED_BACK = "feed_back", "Data feed came back"
    VERDICT = "verdict", "Primary metric's verdict changed"
    BUDGET_REQUESTED = "budget_requested", "Budget request awaiting your decision"
    BUDGET_DECIDED = "budget_decided", "Budget request decided"
    DIGEST = "digest", "Weekly portfolio digest"


class EmailState(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENT = "sent", "Sent"
    # The person turned email off for this kind, or has no address: in-app only.
    SKIPPED = "skipped", "Not emailed"
    FAILED = "failed", "Could not be sent"


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # The cause, e.g. "decision:412" or "due:work:88:2026-12-05": with the recipient, unique.
    key = models.CharField(max_length=200)
    initiative = models.ForeignKey(
        "portfolio.Initiative",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    # Where the person acts on it: a path inside Gantry.
    url = models.CharField(max_length=500, blank=True)
    # What the email's richer parts are made from (the digest's sections, for one).
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    read_at = models.DateTimeField(null=True, blank=True)

    email = models.CharField(max_length=10, choices=EmailState.choices, default=EmailState.PENDING)
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_next_at = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "recipient"], name="notification_once_per_cause"
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox"),
            models.Index(
                fields=["recipient"],
                condition=Q(read_at__isnull=True),
                name="notification_unread",
            ),
            # The mail queue: only rows still to send are indexed.
            models.Index(
                fields=["email_next_at", "id"],
                condition=Q(email="pending"),
                name="notification_mail_queue",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} → {self.recipient}"

    @property
    def unread(self) -> bool:
        return self.read_at is None


class Preference(models.Model):
    """A person's choice for one kind: email on or off (in-app is always on). A kind without
    a row takes its default (`notifications.preferences.DEFAULTS`)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    email = models.BooleanField()
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="preference_one_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.get_kind_display()} email {'on' if self.email else 'off'}"


class FlagSnooze(AppendOnly):
    """A flag's weekly reminders held back until a date, by whom and why. The newest row of a
    flag is the one in force; earlier ones stay as its history, and none is ever changed."""

    flag = models.ForeignKey(
        "portfolio.PurgatoryFlag", on_delete=models.PROTECT, related_name="snoozes"
    )
    until = models.DateField()
    reason = models.CharField(max_length=300)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=clock.now)

    # Sealed in the flag's initiative's audit chain (gates.audit).
    audit_initiative_path = "flag__initiative"
    audit_kind = "snooze"

    class Meta(AppendOnly.Meta):
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["flag", "-at"], name="snooze_newest_per_flag")]

    def __str__(self) -> str:
        return f"{self.flag} snoozed until {self.until}"

    def audit_payload(self) -> dict:
        return {
            "flag": self.flag_id,
            "until": self.until,
            "reason": self.reason,
            "by": self.by_id,
            "at": self.at,
        }


class Webhook(models.Model):
    """An endpoint that hears every event, as JSON signed with its secret (admin-managed)."""

    name = models.CharField(max_length=120, unique=True)
    url = models.URLField(max_length=500)
    # The HMAC key: the receiver holds it too, so it is kept as given, not hashed.
    secret = models.CharField(max_length=200)
    # Empty: every kind.
    kinds = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def hears(self, kind: str) -> bool:
        return self.active and (not self.kinds or kind in self.kinds)


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Waiting"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Gave up"


class WebhookDelivery(models.Model):
    """One event for one endpoint, retried with backoff until it is accepted or given up."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    key = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=clock.now)
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_at = models.DateTimeField(default=clock.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["webhook", "key"], name="webhook_delivery_once"),
        ]
        indexes = [
            models.Index(
                fields=["next_at", "id"],
                condition=Q(state="pending"),
                name="webhook_delivery_queue",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.webhook}"


class WebhookAttempt(models.Model):
    """Every try of a delivery: when, the answer's status (none when it never came), how
    long it took and what went wrong."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField()
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery}: {self.status or self.error}"
