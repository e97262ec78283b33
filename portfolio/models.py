"""Users, business units and initiatives, with the initiative's stage machine."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from gates import clock
from gates.criteria import gate_open
from gates.models import AppendOnly
from gates.stages import PATH, STOPPABLE, Stage, StopReason
from gates.stages import Transition as T
from portfolio import permissions


def case_folded(field: str, max_length: int) -> models.GeneratedField:
    """`field` in lower case, kept by the database on every write: what the list sorts by, so
    that a sort reads a column instead of running lower() on every initiative's row."""
    return models.GeneratedField(
        expression=Lower(field),
        output_field=models.CharField(max_length=max_length),
        db_persist=True,
    )


class User(AbstractUser):
    """Gantry's user. Roles are Django groups (see portfolio.roles)."""

    # Where times are shown to this person; blank: the organisation's (settings.TIME_ZONE).
    time_zone = models.CharField(max_length=64, blank=True)
    # The list's sort by owner.
    last_name_key = case_folded("last_name", 150)
    first_name_key = case_folded("first_name", 150)

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class BusinessUnit(models.Model):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    # The list's sort by unit.
    name_key = case_folded("name", 120)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def stage_order() -> models.Case:
    """Each stage's place on the path, stopped last: how the list sorts by stage. The list's
    index on it is built from this same expression, so that the planner matches the two."""
    return models.Case(
        *[models.When(stage=s, then=models.Value(n)) for n, s in enumerate([*PATH, Stage.STOPPED])],
        output_field=models.IntegerField(),
    )


class Initiative(ConcurrentTransitionMixin, models.Model):
    """An AI initiative moving through Gantry's gated stages.

    `stage` changes only through the transition methods below, and those are called only by
    `gates.services.decide`, which records the gate decision in the same transaction.
    """

    title = models.CharField(max_length=200)
    # Every sort of the list ends on the title as a person reads it.
    title_key = case_folded("title", 200)
    slug = models.SlugField(max_length=220, unique=True)
    summary = models.TextField(blank=True)
    business_unit = models.ForeignKey(
        BusinessUnit, on_delete=models.PROTECT, related_name="initiatives"
    )
    sponsor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sponsored_initiatives",
        help_text="The executive who pays for it and answers for it.",
    )
    business_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="business_owned_initiatives",
        help_text="Owns the outcome on the business side.",
    )
    operational_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="operated_initiatives",
        help_text="Runs the system once it is in production.",
    )
    delivery_lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="delivered_initiatives",
        help_text="Leads the team that builds it.",
    )
    decision_changed = models.TextField(
        "decision or workflow it changes",
        blank=True,
        help_text="Which business decision or workflow will work differently if this succeeds?",
    )
    security_model = models.TextField(
        "security model sketch",
        blank=True,
        help_text="Who can see and change what data.",
    )
    logging_evidence = models.URLField(
        "logging evidence",
        max_length=500,
        blank=True,
        help_text="A link showing that logging is in place (dashboard, runbook, log query).",
    )
    narrow_audience = models.CharField(
        "narrow-launch audience",
        max_length=300,
        blank=True,
        help_text="One team, one region or one product line.",
    )
    stage = FSMField(default=Stage.FRAME, choices=Stage.choices, protected=True, db_index=True)
    stop_reason = models.CharField(max_length=40, choices=StopReason.choices, blank=True)
    stage_entered_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # From the clock, so an initiative loaded with its history is dated when it was created.
    created_at = models.DateTimeField(default=clock.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        indexes = [
            models.Index(fields=["business_unit", "stage"], name="initiative_unit_stage"),
            # The list's sorts by title, stage and days in stage read a page of ids from these
            # in order instead of sorting every initiative (descending: read backwards).
            models.Index(fields=["title_key", "id"], name="initiative_title_key_sort"),
            models.Index(stage_order(), "title_key", "id", name="initiative_stage_key_sort"),
            models.Index(fields=["stage_entered_at"], name="initiative_entered_sort"),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = self._unique_slug()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("initiative-detail", args=[self.slug])

    def _unique_slug(self) -> str:
        base = slugify(self.title)[:200] or "initiative"
        slug, n = base, 2
        while Initiative.objects.filter(slug=slug).exclude(pk=self.pk).exists():
            slug, n = f"{base}-{n}", n + 1
        return slug

    # Reads used by criteria and pages ------------------------------------------------------
    @property
    def owner_ids(self) -> set[int]:
        ids = {self.business_owner_id, self.operational_owner_id, self.delivery_lead_id}
        return {pk for pk in ids if pk is not None}

    def is_owned_by(self, user) -> bool:
        return bool(user and user.is_authenticated and user.pk in self.owner_ids)

    @property
    def primary_metric(self):
        """The primary metric, read from a prefetch of `metrics` when the selector made one."""
        return next((m for m in self.metrics.all() if m.is_primary), None)

    @property
    def where(self) -> str:
        """Where the initiative stands, as a sentence says it: "in thin slice", "stopped"."""
        if self.stage == Stage.STOPPED:
            return "stopped"
        return f"in {self.get_stage_display().lower()}"

    @property
    def days_in_stage(self) -> int:
        return (timezone.now() - self.stage_entered_at).days

    # The stage machine (DESIGN.md). Criteria come from the registry in gates.criteria ------
    def _enter_stage(self) -> None:
        self.stage_entered_at = clock.now()

    @transition(
        field=stage,
        source=Stage.FRAME,
        target=Stage.THIN_SLICE,
        conditions=[gate_open(T.APPROVE_FRAME)],
        permission=permissions.executive_or_manager,
    )
    def approve_frame(self):
        self._enter_stage()

    @transition(
        field=stage,
        source=Stage.THIN_SLICE,
        target=Stage.READINESS_REVIEW,
        conditions=[gate_open(T.SUBMIT_FOR_REVIEW)],
        permission=permissions.may_submit_for_review,
    )
    def submit_for_review(self):
        self._enter_stage()

    @transition(
        field=stage,
        source=Stage.READINESS_REVIEW,
        target=Stage.NARROW_LAUNCH,
        conditions=[gate_open(T.PASS_REVIEW)],
        permission=permissions.may_decide_review,
    )
    def pass_review(self):
        self._enter_stage()

    @transition(
        field=stage,
        source=Stage.READINESS_REVIEW,
        target=Stage.THIN_SLICE,
        conditions=[gate_open(T.FAIL_REVIEW)],
        permission=permissions.may_decide_review,
    )
    def fail_review(self):
        self._enter_stage()

    @transition(
        field=stage,
        source=Stage.NARROW_LAUNCH,
        target=Stage.WIDE_LAUNCH,
        conditions=[gate_open(T.WIDEN)],
        permission=permissions.executive_or_manager,
    )
    def widen(self):
        self._enter_stage()

    # Back one step when the numbers no longer hold: a narrow launch returns to thin slice,
    # a wide launch to its narrow audience.
    @transition(
        field=stage,
        source=Stage.NARROW_LAUNCH,
        target=Stage.THIN_SLICE,
        conditions=[gate_open(T.ROLL_BACK)],
        permission=permissions.executive_or_manager,
    )
    @transition(
        field=stage,
        source=Stage.WIDE_LAUNCH,
        target=Stage.NARROW_LAUNCH,
        conditions=[gate_open(T.ROLL_BACK)],
        permission=permissions.executive_or_manager,
    )
    def roll_back(self):
        self._enter_stage()

    @transition(
        field=stage,
        source=STOPPABLE,
        target=Stage.STOPPED,
        conditions=[gate_open(T.STOP)],
        permission=permissions.executive_or_manager,
    )
    def stop(self, reason: str):
        self.stop_reason = reason
        self._enter_stage()

    @transition(
        field=stage,
        source=Stage.STOPPED,
        target=Stage.FRAME,
        conditions=[gate_open(T.REOPEN)],
        permission=permissions.executive_or_manager,
    )
    def reopen(self):
        self.stop_reason = ""
        self._enter_stage()


# The initiative's framing fields, in the order a person reads them: the framing form edits
# them and every change to one of them is recorded as a FramingChange.
FRAMING_FIELDS = (
    "title",
    "summary",
    "business_unit",
    "sponsor",
    "business_owner",
    "operational_owner",
    "delivery_lead",
    "decision_changed",
    "security_model",
    "logging_evidence",
    "narrow_audience",
)

FRAMING_LABELS = {
    "business_unit": "Business unit",
    "decision_changed": "Decision or workflow it changes",
    "security_model": "Security model",
    "logging_evidence": "Logging evidence",
    "narrow_audience": "Narrow-launch audience",
    "metric.name": "Metric name",
    "metric.unit": "Metric unit",
    "metric.direction": "Metric direction",
    "metric.ship_threshold": "Ship threshold",
    "metric.baseline": "Baseline",
    "metric.aggregation": "Aggregation",
    "metric.comparison_window_days": "Comparison window (days)",
    "metric.unit_value": "Value of one unit of improvement",
    "metric.value_currency": "Currency of the value",
    "metric.monthly_volume": "Volume per month",
    "metric.volume_source": "Source of the volume",
}


def framing_label(field: str) -> str:
    """A framing field's name as a person reads it ("metric.ship_threshold": "Ship threshold")."""
    return FRAMING_LABELS.get(field, field.replace("_", " ").capitalize())


class FramingChange(AppendOnly):
    """One change to one field of an initiative's framing: append-only, sealed in the audit.

    Kept for every field that frames an initiative (owners, sponsor, the decision it changes,
    the primary metric's definition, security sketch, logging evidence, narrow audience),
    before and after gate 1. People are stored by id, as text like every other value, so that
    "who held a stake when" is one query. A change made by a reframe points at its decision.
    """

    initiative = models.ForeignKey(
        Initiative, on_delete=models.PROTECT, related_name="framing_changes"
    )
    field = models.CharField(max_length=60)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField()
    reason = models.TextField(blank=True)
    decision = models.ForeignKey(
        "gates.GateDecision",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="framing_changes",
        help_text="The reframe decision that made this change, if one did.",
    )

    class Meta(AppendOnly.Meta):
        ordering = ["changed_at", "id"]
        indexes = [
            # Segregation of duties: who held an owner field since a review opened.
            models.Index(fields=["initiative", "field", "changed_at"], name="framing_change_field"),
        ]

    def __str__(self) -> str:
        return f"{self.initiative}: {self.field} changed {self.changed_at:%Y-%m-%d %H:%M}"

    audit_kind = "framing"
    audit_time_field = "changed_at"
    audit_actor_field = "changed_by"

    def audit_payload(self) -> dict:
        return {
            "field": self.field,
            "old": self.old_value,
            "new": self.new_value,
            "changed_by": self.changed_by_id,
            "changed_at": self.changed_at,
            "reason": self.reason,
            "decision": self.decision_id,
        }


class ProposalStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPLIED = "applied", "Applied"
    DECLINED = "declined", "Declined"


class ReframeProposal(models.Model):
    """An owner's proposal to change the frozen success definition. Only a programme manager
    with no stake applies it, through a reframe decision, or declines it."""

    initiative = models.ForeignKey(
        Initiative, on_delete=models.PROTECT, related_name="reframe_proposals"
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField()
    changes = models.JSONField(help_text="{field: proposed value as text}")
    reason = models.TextField()
    status = models.CharField(
        max_length=10, choices=ProposalStatus.choices, default=ProposalStatus.OPEN
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]

    def __str__(self) -> str:
        return f"Reframe proposed for {self.initiative} ({self.get_status_display()})"

    def described(self) -> list[tuple[str, str]]:
        """(label, proposed value) per proposed change."""
        return [(framing_label(f"metric.{f}"), v or "—") for f, v in self.changes.items()]


class FlagKind(models.TextChoices):
    NO_BUSINESS_OWNER = "no_business_owner", "No business owner"
    NO_SUCCESS_METRIC = "no_success_metric", "No numeric success metric"
    BORROWED_DATA = "borrowed_data", "Borrowed or stale data"
    STUCK = "stuck", "Stuck in stage"
    BELOW_THRESHOLD = "below_threshold", "Primary metric below threshold"
    METRIC_ERROR = "metric_error", "Metric status could not be computed"
    # The next gate waits on work past its due date or on a review open past its limit.
    BLOCKED_AT_GATE = "blocked_at_gate", "Blocked at gate"
    # Launched, and nobody has granted the money to keep it running this period.
    NO_UPKEEP = "no_upkeep", "No budget line for its upkeep"


class StageLimit(models.Model):
    """How long an initiative may stay in a stage before it is flagged as stuck."""

    stage = models.CharField(max_length=40, choices=Stage.choices, unique=True)
    days = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_stage_display()}: {self.days} days"


class PurgatoryFlag(models.Model):
    """A reason an initiative looks stuck in pilot purgatory, from when it was raised until
    it was cleared. Written by the detection job only; the dashboard reads it."""

    initiative = models.ForeignKey(Initiative, on_delete=models.CASCADE, related_name="flags")
    kind = models.CharField(max_length=30, choices=FlagKind.choices)
    reason = models.CharField(max_length=300)
    raised_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)
    # When the problem itself began (the stage entered, the first snapshot below threshold,
    # the feed's missed window, the due date passed), which is usually long before the job
    # raised the flag. Empty on flags the job has not seen since this was recorded.
    since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["initiative", "kind"],
                condition=models.Q(cleared_at__isnull=True),
                name="flag_one_active_per_kind",
            ),
        ]
        indexes = [
            models.Index(
                fields=["kind", "initiative"],
                condition=models.Q(cleared_at__isnull=True),
                name="flag_active_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.initiative}"

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    @property
    def problem_since(self):
        """When the problem began; the raising time for a flag recorded without it."""
        return self.since or self.raised_at
