"""Gate decisions: the immutable audit trail of every stage change."""

from django.conf import settings
from django.db import models

from gates.stages import Stage, StopReason, Transition


class ImmutableError(Exception):
    """Raised on any attempt to change or delete a recorded gate decision."""


class GateDecisionQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableError("Gate decisions cannot be changed.")

    def delete(self):
        raise ImmutableError("Gate decisions cannot be deleted.")


class GateDecision(models.Model):
    initiative = models.ForeignKey(
        "portfolio.Initiative", on_delete=models.PROTECT, related_name="decisions"
    )
    transition = models.CharField(max_length=40, choices=Transition.choices)
    from_stage = models.CharField(max_length=40, choices=Stage.choices)
    to_stage = models.CharField(max_length=40, choices=Stage.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="gate_decisions"
    )
    decided_at = models.DateTimeField()
    rationale = models.TextField()
    stop_reason = models.CharField(max_length=40, choices=StopReason.choices, blank=True)
    evidence = models.JSONField(
        default=dict, help_text="What the gate saw: the criteria results at the moment of decision."
    )

    objects = GateDecisionQuerySet.as_manager()

    class Meta:
        ordering = ["-decided_at", "-id"]
        # Related lookups and cascades use the base manager: make it the guarded one too.
        base_manager_name = "objects"
        indexes = [
            models.Index(fields=["initiative", "-decided_at"], name="decision_initiative_time"),
            models.Index(fields=["-decided_at"], name="decision_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(rationale=""), name="decision_rationale_required"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_transition_display()} — {self.initiative} ({self.decided_at:%Y-%m-%d})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ImmutableError("Gate decisions cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("Gate decisions cannot be deleted.")
