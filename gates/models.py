"""Gate decisions: the immutable audit trail of every stage change."""

from django.conf import settings
from django.db import models

from gates.stages import Stage, StopReason, Transition


class ImmutableError(Exception):
    """Raised on any attempt to change or delete a recorded gate decision or audit entry."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableError(f"{self.model._meta.verbose_name_plural} cannot be changed.")

    def delete(self):
        raise ImmutableError(f"{self.model._meta.verbose_name_plural} cannot be deleted.")


class AppendOnly(models.Model):
    """A row written once and never changed or deleted by the application."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True
        # Related lookups and cascades use the base manager: make it the guarded one too.
        base_manager_name = "objects"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ImmutableError(f"{self._meta.verbose_name_plural} cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError(f"{self._meta.verbose_name_plural} cannot be deleted.")


class GateDecision(AppendOnly):
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

    class Meta(AppendOnly.Meta):
        ordering = ["-decided_at", "-id"]
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

    audit_kind = "decision"
    audit_time_field = "decided_at"
    audit_actor_field = "decided_by"

    def audit_summary(self) -> str:
        if self.from_stage == self.to_stage:
            moves = f"in {self.get_from_stage_display().lower()}"
        else:
            moves = f"{self.get_from_stage_display()} → {self.get_to_stage_display()}"
        return f"{self.get_transition_display()} ({moves}): {self.rationale}"[:500]

    def audit_payload(self) -> dict:
        return {
            "transition": self.transition,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "decided_by": self.decided_by_id,
            "decided_at": self.decided_at,
            "rationale": self.rationale,
            "stop_reason": self.stop_reason,
            "evidence": self.evidence,
        }


class AuditEntry(AppendOnly):
    """One link of an initiative's tamper-evident audit chain (see gates.audit).

    Every record that makes up the audit trail (decisions, framing changes, review events,
    feed events) is sealed here with a copy of its content: `hash` is the SHA-256 of this
    entry's content and the previous entry's hash, so an altered, removed or inserted row
    breaks the chain at that point, and `manage.py verify_audit` finds it.
    """

    id = models.BigAutoField(primary_key=True)
    initiative = models.ForeignKey(
        "portfolio.Initiative", on_delete=models.PROTECT, related_name="audit_entries"
    )
    seq = models.PositiveIntegerField(help_text="Position in the initiative's chain, from 1.")
    kind = models.CharField(max_length=40)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    summary = models.CharField(max_length=500)
    source = models.CharField(max_length=60, blank=True, help_text="app_label.model of the row.")
    source_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta(AppendOnly.Meta):
        ordering = ["initiative", "seq"]
        verbose_name_plural = "audit entries"
        constraints = [
            models.UniqueConstraint(fields=["initiative", "seq"], name="audit_chain_position"),
            models.UniqueConstraint(
                fields=["source", "source_id"],
                condition=models.Q(source_id__isnull=False),
                name="audit_one_entry_per_row",
            ),
        ]

    # What the timeline calls each kind of entry.
    KIND_LABELS = {
        "decision": "Decision",
        "framing": "Framing",
        "proposal": "Proposal",
        "review_event": "Review",
        "work_item": "Work item",
        "feed_event": "Feed",
    }

    def __str__(self) -> str:
        return f"{self.initiative_id}#{self.seq} {self.kind}: {self.summary[:60]}"

    @property
    def kind_label(self) -> str:
        return self.KIND_LABELS.get(self.kind, self.kind.replace("_", " ").capitalize())
