"""Budget lines and budget requests: money asked for and granted on measured evidence.

Every row is written once (append-only) and sealed in the initiative's audit chain. A
request carries the evidence it rests on, frozen when it is made; the sponsor's decision is
a row of its own; an approval opens the budget line. The value model itself (what a unit of
improvement is worth, and its volume) is part of the primary metric's success definition.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from gates.models import AppendOnly

currency_code = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter currency code, e.g. EUR.")
MONEY = {"max_digits": 14, "decimal_places": 2}


class BudgetKind(models.TextChoices):
    BUILD = "build", "Build"
    RUN = "run", "Run / upkeep"


class Outcome(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class BudgetRequest(AppendOnly):
    """Money asked for one initiative, one kind and one period, with the evidence (latest
    verdict, value realised with its interval, running cost, stage, open flags) as it stood
    when the request was made."""

    initiative = models.ForeignKey(
        "portfolio.Initiative", on_delete=models.PROTECT, related_name="budget_requests"
    )
    kind = models.CharField(max_length=10, choices=BudgetKind.choices)
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    currency = models.CharField(max_length=3, validators=[currency_code])
    starts_on = models.DateField("period starts")
    ends_on = models.DateField("period ends")
    purpose = models.TextField(max_length=2000)
    answerable = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="person answerable",
        help_text="Who answers for the money once it is granted.",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="budget_requests"
    )
    requested_at = models.DateTimeField()
    evidence = models.JSONField(default=dict, editable=False)

    audit_initiative_path = "initiative"
    audit_kind = "budget"
    audit_time_field = "requested_at"
    audit_actor_field = "requested_by"

    class Meta(AppendOnly.Meta):
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="budget_request_positive"),
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")), name="budget_request_period"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()} budget {self.currency} {self.amount} for {self.initiative}"
        )

    @property
    def status(self) -> str:
        """ "open" until the sponsor decides, then the decision's outcome."""
        decision = getattr(self, "decision", None)
        return decision.outcome if decision is not None else "open"

    @property
    def status_label(self) -> str:
        return "Awaiting the sponsor" if self.status == "open" else Outcome(self.status).label

    def get_absolute_url(self) -> str:
        return reverse("budget-request", args=[self.initiative.slug, self.pk])

    def audit_summary(self) -> str:
        return (
            f"Requested {self.get_kind_display().lower()} budget of {self.currency} "
            f"{self.amount:,.2f} for {self.starts_on:%Y-%m-%d} to {self.ends_on:%Y-%m-%d}: "
            f"{self.purpose}"
        )

    def audit_payload(self) -> dict:
        return {
            "kind": self.kind,
            "amount": self.amount,
            "currency": self.currency,
            "starts_on": self.starts_on,
            "ends_on": self.ends_on,
            "purpose": self.purpose,
            "answerable": self.answerable_id,
            "requested_by": self.requested_by_id,
            "requested_at": self.requested_at,
            "evidence": self.evidence,
        }


class BudgetDecision(AppendOnly):
    """The sponsor's decision on a request: approved or rejected, with the rationale."""

    request = models.OneToOneField(BudgetRequest, on_delete=models.PROTECT, related_name="decision")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="budget_decisions"
    )
    decided_at = models.DateTimeField()
    rationale = models.TextField(max_length=5000)

    audit_initiative_path = "request__initiative"
    audit_kind = "budget"
    audit_time_field = "decided_at"
    audit_actor_field = "decided_by"

    class Meta(AppendOnly.Meta):
        ordering = ["-decided_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} by {self.decided_by} at {self.decided_at:%Y-%m-%d}"

    def audit_summary(self) -> str:
        return (
            f"{self.get_outcome_display()} the {self.request.get_kind_display().lower()} budget "
            f"request of {self.request.currency} {self.request.amount:,.2f}: {self.rationale}"
        )

    def audit_payload(self) -> dict:
        return {
            "request": self.request_id,
            "outcome": self.outcome,
            "decided_by": self.decided_by_id,
            "decided_at": self.decided_at,
            "rationale": self.rationale,
        }


class BudgetLine(AppendOnly):
    """Money granted: opened by an approved request, for its kind, amount and period."""

    initiative = models.ForeignKey(
        "portfolio.Initiative", on_delete=models.PROTECT, related_name="budget_lines"
    )
    kind = models.CharField(max_length=10, choices=BudgetKind.choices)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, validators=[currency_code])
    starts_on = models.DateField("period starts")
    ends_on = models.DateField("period ends")
    answerable = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="budget_lines",
        verbose_name="person answerable",
    )
    request = models.OneToOneField(BudgetRequest, on_delete=models.PROTECT, related_name="line")
    opened_at = models.DateTimeField()

    audit_initiative_path = "initiative"
    audit_kind = "budget"
    audit_time_field = "opened_at"
    audit_actor_field = None

    class Meta(AppendOnly.Meta):
        ordering = ["-starts_on", "kind", "-id"]
        indexes = [
            models.Index(fields=["initiative", "kind", "ends_on"], name="budget_line_period"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="budget_line_positive"),
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")), name="budget_line_period_order"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()} {self.currency} {self.amount} "
            f"{self.starts_on:%Y-%m-%d}–{self.ends_on:%Y-%m-%d}"
        )

    def audit_summary(self) -> str:
        return (
            f"Budget line opened: {self.get_kind_display().lower()}, {self.currency} "
            f"{self.amount:,.2f}, {self.starts_on:%Y-%m-%d} to {self.ends_on:%Y-%m-%d}, "
            f"answerable {self.answerable}"
        )

    def audit_payload(self) -> dict:
        return {
            "kind": self.kind,
            "amount": self.amount,
            "currency": self.currency,
            "starts_on": self.starts_on,
            "ends_on": self.ends_on,
            "answerable": self.answerable_id,
            "request": self.request_id,
            "opened_at": self.opened_at,
        }
