"""Readiness reviews: versioned checklist templates, reviews, items, evidence, pre-launch work."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from gates import clock
from gates.models import AppendOnly


class ChecklistTemplate(models.Model):
    """One version of the checklist. A review keeps the version it started with."""

    version = models.PositiveIntegerField(unique=True)
    notes = models.CharField(max_length=300, blank=True, help_text="What changed in this version.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"Checklist v{self.version}"

    @property
    def in_use(self) -> bool:
        return self.reviews.exists()


class SystemEvidence(models.TextChoices):
    """What Gantry measures and attaches to an item by itself."""

    NONE = "", "None"
    FEED_DELIVERIES = "feed_deliveries", "Feed delivery record (14 days)"
    MONTHLY_COST = "monthly_cost", "Computed monthly running cost"
    OPERATIONAL_OWNER = "operational_owner", "Named operational owner"


class ChecklistItemTemplate(models.Model):
    template = models.ForeignKey(ChecklistTemplate, on_delete=models.CASCADE, related_name="items")
    key = models.SlugField(max_length=60, help_text="Stable across versions.")
    title = models.CharField(max_length=160)
    guidance = models.TextField(help_text="What good evidence looks like.")
    asks_numbers = models.BooleanField(
        default=False, help_text="Asks for cost per transaction and expected monthly volume."
    )
    system_evidence = models.CharField(
        max_length=30, choices=SystemEvidence.choices, blank=True, default=SystemEvidence.NONE
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["template", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["template", "key"], name="checklist_item_key_unique"),
        ]

    def __str__(self) -> str:
        return self.title


class ReviewOutcome(models.TextChoices):
    OPEN = "open", "Open"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    # Not a verdict on readiness: the initiative was stopped while its review was open.
    WITHDRAWN = "withdrawn", "Withdrawn"


class ReadinessReview(models.Model):
    initiative = models.ForeignKey(
        "portfolio.Initiative", on_delete=models.CASCADE, related_name="reviews"
    )
    template = models.ForeignKey(
        ChecklistTemplate, on_delete=models.PROTECT, related_name="reviews"
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField()
    outcome = models.CharField(
        max_length=10, choices=ReviewOutcome.choices, default=ReviewOutcome.OPEN
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision = models.OneToOneField(
        "gates.GateDecision",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="review",
        help_text="The pass or fail decision, with its rationale.",
    )

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["initiative"],
                condition=Q(outcome="open"),
                name="review_one_open_per_initiative",
            ),
        ]

    def __str__(self) -> str:
        return f"Readiness review of {self.initiative} ({self.opened_at:%Y-%m-%d})"

    def get_absolute_url(self) -> str:
        return reverse("review-detail", args=[self.initiative.slug, self.pk])

    @property
    def is_open(self) -> bool:
        return self.outcome == ReviewOutcome.OPEN


class ReviewItem(models.Model):
    review = models.ForeignKey(ReadinessReview, on_delete=models.CASCADE, related_name="items")
    template_item = models.ForeignKey(
        ChecklistItemTemplate, on_delete=models.PROTECT, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="review_items",
    )
    checked = models.BooleanField(default=False)
    evidence_text = models.TextField(blank=True)
    evidence_url = models.URLField(max_length=500, blank=True)
    cost_per_transaction = models.DecimalField(
        max_digits=14, decimal_places=6, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    monthly_volume = models.DecimalField(
        "expected monthly volume",
        max_digits=16,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    currency = models.CharField(max_length=3, blank=True)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    # Optimistic lock: each write bumps it; a write based on an older version is refused.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["template_item__position", "id"]
        indexes = [
            models.Index(fields=["assignee", "checked"], name="review_item_assignee_open"),
        ]

    def __str__(self) -> str:
        return f"{self.template_item.title} ({self.review.initiative})"

    @property
    def monthly_cost(self) -> Decimal | None:
        if self.cost_per_transaction is None or self.monthly_volume is None:
            return None
        return (self.cost_per_transaction * self.monthly_volume).quantize(Decimal("0.01"))


class ItemAction(models.TextChoices):
    ASSIGNED = "assigned", "Assigned"
    UNASSIGNED = "unassigned", "Unassigned"
    CHECKED = "checked", "Checked"
    UNCHECKED = "unchecked", "Unchecked"


class ReviewItemEvent(AppendOnly):
    """The history of an item: every assignment, unassignment, check and uncheck, with the
    evidence then. Append-only and sealed in the initiative's audit chain.

    `assignee` names who the item was given to (ASSIGNED only), `previous_assignee` who held
    it before (ASSIGNED and UNASSIGNED). Segregation of duties reads `assignee`: whoever was
    ever given an item of an open review keeps that stake for the rest of the review.
    """

    item = models.ForeignKey(ReviewItem, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=12, choices=ItemAction.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    previous_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    evidence_text = models.TextField(blank=True)
    evidence_url = models.URLField(max_length=500, blank=True)
    numbers = models.JSONField(default=dict, blank=True)

    audit_initiative_path = "item__review__initiative"
    audit_kind = "review_event"
    audit_time_field = "at"
    audit_actor_field = "user"

    class Meta(AppendOnly.Meta):
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.user} at {self.at:%Y-%m-%d %H:%M}"

    def audit_summary(self) -> str:
        """The timeline's sentence for an event sealed after the fact (the services write
        the same sentence as they seal)."""
        title = f"“{self.item.template_item.title}”"
        if self.action == ItemAction.ASSIGNED:
            return f"{title} assigned to {self.assignee} by {self.user}"
        if self.action == ItemAction.UNASSIGNED:
            return f"{title} unassigned from {self.previous_assignee} by {self.user}"
        return f"{title} {self.get_action_display().lower()} by {self.user}"

    def audit_payload(self) -> dict:
        return {
            "item": self.item_id,
            "action": self.action,
            "user": self.user_id,
            "at": self.at,
            "assignee": self.assignee_id,
            "previous_assignee": self.previous_assignee_id,
            "evidence_text": self.evidence_text,
            "evidence_url": self.evidence_url,
            "numbers": self.numbers,
        }


class WorkStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"


class PreLaunchWorkItem(models.Model):
    """Scoped work before launch: what a failed review found missing."""

    initiative = models.ForeignKey(
        "portfolio.Initiative", on_delete=models.CASCADE, related_name="work_items"
    )
    review_item = models.OneToOneField(
        ReviewItem, on_delete=models.PROTECT, related_name="work_item"
    )
    title = models.CharField(max_length=200)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="work_items",
    )
    due_date = models.DateField()
    status = models.CharField(max_length=10, choices=WorkStatus.choices, default=WorkStatus.OPEN)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    class Meta:
        ordering = ["status", "due_date", "id"]
        indexes = [
            models.Index(fields=["initiative", "status"], name="work_item_initiative_status"),
            models.Index(fields=["assignee", "status", "due_date"], name="work_item_assignee_due"),
        ]

    def __str__(self) -> str:
        return self.title


class WorkItemAction(models.TextChoices):
    DONE = "done", "Done"
    REOPENED = "reopened", "Reopened"


class WorkItemEvent(AppendOnly):
    """What happened to a pre-launch work item after the review made it: append-only, sealed
    in the initiative's audit chain, since gate 4 reads whether work is open."""

    work_item = models.ForeignKey(
        PreLaunchWorkItem, on_delete=models.PROTECT, related_name="events"
    )
    action = models.CharField(max_length=12, choices=WorkItemAction.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    # What shows the work is done, or why it was reopened.
    evidence_text = models.TextField(blank=True)
    evidence_url = models.URLField(max_length=500, blank=True)

    audit_initiative_path = "work_item__initiative"
    audit_kind = "work_item"
    audit_time_field = "at"
    audit_actor_field = "user"

    class Meta(AppendOnly.Meta):
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.work_item}: {self.get_action_display()} by {self.user}"

    def audit_payload(self) -> dict:
        return {
            "work_item": self.work_item_id,
            "action": self.action,
            "user": self.user_id,
            "at": self.at,
            "evidence_text": self.evidence_text,
            "evidence_url": self.evidence_url,
        }
