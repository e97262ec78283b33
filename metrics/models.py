"""Metrics: the numbers that decide whether an initiative ships."""

import sys
from datetime import UTC, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

from gates import clock
from gates.models import AppendOnly


class Direction(models.TextChoices):
    HIGHER = "higher", "higher is better"
    LOWER = "lower", "lower is better"


class Aggregation(models.TextChoices):
    MEAN = "mean", "Mean"
    SUM = "sum", "Sum"
    LAST = "last", "Last value"


class Metric(models.Model):
    initiative = models.ForeignKey(
        "portfolio.Initiative", on_delete=models.CASCADE, related_name="metrics"
    )
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120)
    unit = models.CharField(max_length=40, help_text="e.g. %, minutes, claims per hour, EUR.")
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.HIGHER)
    ship_threshold = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="The value that counts as good enough to ship.",
    )
    baseline = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="The existing process's value, if known.",
    )
    aggregation = models.CharField(
        max_length=10, choices=Aggregation.choices, default=Aggregation.MEAN
    )
    comparison_window_days = models.PositiveSmallIntegerField(
        default=14, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    is_primary = models.BooleanField("primary", default=False)
    # The value model, part of the success definition (frozen with it at gate 1): what one
    # unit of improvement of this metric is worth, and how many times a month it applies.
    unit_value = models.DecimalField(
        "value of one unit of improvement",
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="e.g. 38 when an hour of analyst time saved is worth € 38 and the metric "
        "counts hours per case.",
    )
    value_currency = models.CharField(
        "currency",
        max_length=3,
        blank=True,
        validators=[RegexValidator(r"^[A-Z]{3}$", "Use a three-letter currency code, e.g. EUR.")],
        help_text="Three-letter code (ISO 4217) of the value above, e.g. EUR.",
    )
    monthly_volume = models.DecimalField(
        "volume per month",
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="How many transactions or cases a month one unit of improvement applies to.",
    )
    volume_source = models.CharField(
        "source of the volume",
        max_length=200,
        blank=True,
        help_text="Where the volume comes from, e.g. claims system, monthly average of 2026.",
    )
    # The newest snapshot, so that pages read a metric's status with one join.
    latest_snapshot = models.ForeignKey(
        "metrics.MetricSnapshot",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        # Unindexed: every recompute rewrites this column, and an index on it would make each
        # of those updates touch every index of the table. Only deleting a snapshot looks
        # metrics up by it, which is rare.
        db_index=False,
    )
    # The latest snapshot's verdict, written by the same UPDATE that moves `latest_snapshot`,
    # so that the list sorts and filters a portfolio by status with one join instead of a
    # snapshot lookup per initiative.
    latest_verdict = models.CharField(max_length=20, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-is_primary", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["initiative"],
                condition=models.Q(is_primary=True),
                name="metric_one_primary_per_initiative",
            ),
            models.UniqueConstraint(fields=["initiative", "slug"], name="metric_slug_unique"),
            models.CheckConstraint(
                condition=models.Q(comparison_window_days__gte=1),
                name="metric_window_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(unit_value__gte=0) & models.Q(monthly_volume__gte=0),
                name="metric_value_model_not_negative",
                violation_error_message="The value and the volume cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})"

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:120] or "metric"
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """The value model is whole or absent: a value needs its currency and its volume."""
        super().clean()
        if self.unit_value is None and self.monthly_volume is None and not self.value_currency:
            return
        errors = {}
        if self.unit_value is None:
            errors["unit_value"] = "Say what one unit of improvement is worth."
        if not self.value_currency:
            errors["value_currency"] = "Give the currency of the value."
        if self.monthly_volume is None:
            errors["monthly_volume"] = "Give the monthly volume the value applies to."
        if errors:
            raise ValidationError(errors)

    @property
    def has_value_model(self) -> bool:
        return (
            self.unit_value is not None
            and self.monthly_volume is not None
            and bool(self.value_currency)
        )

    @property
    def higher_is_better(self) -> bool:
        return self.direction == Direction.HIGHER


MAX_DOUBLE = sys.float_info.max


class FeedKind(models.TextChoices):
    LIVE = "live", "Live feed"
    ONE_OFF_EXTRACT = "one_off_extract", "One-off extract"


class Cohort(models.TextChoices):
    PILOT = "pilot", "Pilot"
    BASELINE = "baseline", "Baseline"
    PRODUCTION = "production", "Production"


class Verdict(models.TextChoices):
    MEETING = "meeting", "Meeting threshold"
    BELOW = "below", "Below threshold"
    INSUFFICIENT_DATA = "insufficient_data", "Insufficient data"
    STALE = "stale", "Stale data"
    # The recompute failed for this metric (the summary says why); the others were computed.
    ERROR = "error", "Error"


class FeedStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    RETIRED = "retired", "Retired"


class FeedAction(models.TextChoices):
    CREATED = "created", "Created"
    ROTATED = "rotated", "Token rotated"
    PAUSED = "paused", "Paused"
    RESUMED = "resumed", "Resumed"
    RETIRED = "retired", "Retired"


class DeliverySource(models.TextChoices):
    API = "api", "API"
    CSV = "csv", "CSV upload"


class DataFeedManager(models.Manager):
    def get_queryset(self):
        # Pages and the API's 409 say who paused or retired a feed, when and why: joined here
        # so that a list of feeds (the initiative page prefetches them) never queries per feed.
        return super().get_queryset().select_related("status_event__by")


class DataFeed(models.Model):
    """A source of observations for one initiative, authenticated by its own bearer token."""

    initiative = models.ForeignKey(
        "portfolio.Initiative", on_delete=models.CASCADE, related_name="feeds"
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=FeedKind.choices, default=FeedKind.LIVE)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_feeds",
        help_text="Answers for this feed delivering on time.",
    )
    freshness_hours = models.PositiveIntegerField(
        "freshness window (hours)",
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 90)],
        help_text="The feed is stale when it brought no new, recent observations for this long.",
    )
    # Only a SHA-256 of the token is kept; the token itself is shown once. A retired feed's
    # value is replaced by one that no SHA-256 hex digest can equal (see services.retire_feed).
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(max_length=16, editable=False)
    token_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    status = models.CharField(
        max_length=10, choices=FeedStatus.choices, default=FeedStatus.ACTIVE, editable=False
    )
    # The pause, resume or retirement that set the status (who, when, why); None while the
    # feed has been active since it was created.
    status_event = models.ForeignKey(
        "metrics.FeedEvent",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # Any delivery, through the API or a CSV upload, whatever it held.
    last_delivery_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The last API delivery that brought at least one new observation from inside the
    # freshness window: what gate 2, the stale check and the feeds panel call fresh data.
    last_fresh_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_stale = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=clock.now, editable=False)

    objects = DataFeedManager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["initiative", "name"], name="feed_name_unique"),
        ]
        indexes = [
            # The stale check's scan: active feeds by window length.
            models.Index(fields=["status", "freshness_hours"], name="feed_status_window"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def freshness_window(self) -> timedelta:
        return timedelta(hours=self.freshness_hours)

    @property
    def is_live(self) -> bool:
        return self.kind == FeedKind.LIVE

    @property
    def is_active(self) -> bool:
        return self.status == FeedStatus.ACTIVE

    def status_sentence(self) -> str:
        """Why the feed takes no data, e.g. "paused since 2026-03-02 09:15 UTC by Ann Lee:
        vendor outage" (no final full stop: it is said inside a sentence); empty while it is
        active."""
        if self.is_active:
            return ""
        label = self.get_status_display().lower()
        event = self.status_event
        if event is None:
            return label
        by = str(event.by)
        since = event.at.astimezone(UTC)
        return f"{label} since {since:%Y-%m-%d %H:%M} UTC by {by}: {event.reason.rstrip('.')}"


class FeedEvent(AppendOnly):
    """One step of a feed's life cycle (created, token rotated, paused, resumed, retired):
    who, when and why. Append-only and sealed in the initiative's audit chain."""

    feed = models.ForeignKey(DataFeed, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=10, choices=FeedAction.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    reason = models.TextField(blank=True)

    audit_initiative_path = "feed__initiative"
    audit_kind = "feed_event"
    audit_time_field = "at"
    audit_actor_field = "by"

    class Meta(AppendOnly.Meta):
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action__in=["created", "rotated"]) | ~models.Q(reason=""),
                name="feed_event_reason_required",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.feed_id} {self.get_action_display()} by {self.by_id} at {self.at:%Y-%m-%d}"

    def audit_payload(self) -> dict:
        return {
            "feed": self.feed_id,
            "action": self.action,
            "by": self.by_id,
            "at": self.at,
            "reason": self.reason,
        }


class Delivery(models.Model):
    """One delivery of a feed: a batch through the API or a CSV file uploaded in the browser.

    `fresh` counts the new observations (not held before) whose observed_at lies within the
    feed's freshness window of the delivery's time; only an API delivery with fresh rows
    makes the feed fresh. A CSV upload is a one-off extract, whatever the feed's kind.
    """

    id = models.BigAutoField(primary_key=True)
    feed = models.ForeignKey(DataFeed, on_delete=models.CASCADE, related_name="deliveries")
    at = models.DateTimeField()
    source = models.CharField(max_length=4, choices=DeliverySource.choices)
    received = models.PositiveIntegerField()
    created = models.PositiveIntegerField()
    duplicates = models.PositiveIntegerField()
    fresh = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # The delivery record (per day) and gate 2's fresh-data check.
            models.Index(fields=["feed", "at"], name="delivery_feed_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(created__lte=models.F("received"))
                & models.Q(fresh__lte=models.F("created")),
                name="delivery_counts_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.feed_id} {self.source} at {self.at:%Y-%m-%d %H:%M}: {self.created} new"


class Observation(models.Model):
    """One measured value of a metric, delivered by a feed, for one cohort."""

    id = models.BigAutoField(primary_key=True)
    metric = models.ForeignKey(
        Metric, on_delete=models.CASCADE, related_name="observations", db_index=False
    )
    feed = models.ForeignKey(
        DataFeed, on_delete=models.CASCADE, related_name="observations", db_index=False
    )
    cohort = models.CharField(max_length=12, choices=Cohort.choices)
    observed_at = models.DateTimeField()
    value = models.FloatField()
    ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Re-sending an observation is idempotent. The column order makes this index
            # also serve the window queries: metric, cohort, then a range of observed_at.
            models.UniqueConstraint(
                fields=["metric", "cohort", "observed_at", "feed"], name="observation_key"
            ),
            # Finite: NaN and the infinities fall outside the largest double's range.
            models.CheckConstraint(
                condition=models.Q(value__gte=-MAX_DOUBLE, value__lte=MAX_DOUBLE),
                name="observation_value_finite",
            ),
        ]
        indexes = [
            # The feed's delivery record and the freshness checks of gate 2.
            models.Index(fields=["feed", "ingested_at"], name="observation_feed_delivery"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id} {self.cohort} {self.observed_at:%Y-%m-%d %H:%M} = {self.value}"


class MetricSnapshot(models.Model):
    """What one recompute found for a metric over its comparison window."""

    # No index of its own: "snapshot_metric_time" below starts with the metric, and one index
    # fewer is one write fewer for each of the 20,000 snapshots of a full recompute.
    metric = models.ForeignKey(
        Metric, on_delete=models.CASCADE, related_name="snapshots", db_index=False
    )
    computed_at = models.DateTimeField(default=timezone.now)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    pilot_value = models.FloatField(null=True, blank=True)
    pilot_count = models.PositiveIntegerField(default=0)
    baseline_value = models.FloatField(null=True, blank=True)
    baseline_count = models.PositiveIntegerField(default=0)
    lift = models.FloatField(
        null=True, blank=True, help_text="(pilot - baseline) / |baseline| of the aggregated values"
    )
    mean_lift = models.FloatField(
        null=True,
        blank=True,
        help_text="The same of the cohorts' means: the difference the confidence is about.",
    )
    # Each cohort's mean and sample standard deviation over the window: with the counts, the
    # statistics of the Welch test, kept so the interval of the difference (value realised)
    # is read from the very snapshot that decides gate 4.
    pilot_mean = models.FloatField(null=True, blank=True)
    pilot_stddev = models.FloatField(null=True, blank=True)
    baseline_mean = models.FloatField(null=True, blank=True)
    baseline_stddev = models.FloatField(null=True, blank=True)
    p_value = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(
        null=True, blank=True, help_text="One-sided confidence that the pilot beats the baseline."
    )
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    summary = models.CharField(max_length=300)
    # The definition this snapshot was judged against, as the recompute read it: gate 4 uses
    # a snapshot only while the metric's definition is still this one.
    ship_threshold = models.FloatField(null=True, blank=True)
    aggregation = models.CharField(max_length=10, choices=Aggregation.choices, blank=True)
    direction = models.CharField(max_length=10, choices=Direction.choices, blank=True)

    class Meta:
        ordering = ["-computed_at", "-id"]
        get_latest_by = "computed_at"
        indexes = [
            models.Index(fields=["metric", "-computed_at"], name="snapshot_metric_time"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.verdict} at {self.computed_at:%Y-%m-%d %H:%M}"

    def judged_on(self, metric: Metric) -> bool:
        """Whether this snapshot was computed against the metric's current definition.

        Snapshots from before the definition was recorded on them (no aggregation) are taken
        as they are; the reframe's time still guards them.
        """
        if not self.aggregation:
            return True
        threshold = None if metric.ship_threshold is None else float(metric.ship_threshold)
        window = round((self.window_end - self.window_start) / timedelta(days=1))
        return (self.ship_threshold, self.aggregation, self.direction, window) == (
            threshold,
            metric.aggregation,
            metric.direction,
            metric.comparison_window_days,
        )


class RecomputeMark(models.Model):
    """A metric whose status is behind its data: the durable part of a recompute request.

    Written in the transaction that changes the data, so a lost Celery task or a broker
    outage costs latency, never the recompute: the sweep claims whatever is marked. A
    recompute claims marks (metrics.recompute_queue: a lock held by its database
    connection), and clears a mark only if its `token` is still the one it claimed, that is
    if no change came in while it computed.
    """

    metric = models.OneToOneField(
        Metric, on_delete=models.CASCADE, primary_key=True, related_name="recompute_mark"
    )
    dirty_since = models.DateTimeField()  # the oldest change not yet recomputed
    token = models.UUIDField()  # a new one with every change

    def __str__(self) -> str:
        return f"metric {self.metric_id} dirty since {self.dirty_since:%Y-%m-%d %H:%M}"


class DailyRollup(models.Model):
    """One UTC day of a metric's observations in one cohort, summed up as they arrive.

    The database keeps it: triggers on the observation table (migration 0012) merge every
    inserted row in, whoever writes it (the API, a CSV upload, an import), in the statement
    that inserts it. Recompute reads whole days from here and only the partial first and
    last day of a window from the observations; the trend chart plots these days. Rollups
    outlive the raw rows they summarise (see metrics.partitions: retention).

    The spread is kept as the sum of squared deviations from the day's mean rather than the
    plain sum of squares: merged with Chan's formula it stays exact where the sum of squares
    would cancel (values around a million varying in the sixth decimal).
    """

    id = models.BigAutoField(primary_key=True)
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="+", db_index=False)
    cohort = models.CharField(max_length=12, choices=Cohort.choices)
    day = models.DateField()  # in UTC
    count = models.BigIntegerField()
    # NULL when a value of the day lies beyond ±1e50 (written before ingestion bounded
    # values): the day cannot be summed safely, and a recompute reading it says so.
    total = models.FloatField(null=True)
    sum_sq_dev = models.FloatField(null=True)
    minimum = models.FloatField()
    maximum = models.FloatField()
    # The day's last observation (by observed_at, then id), for metrics judged on it.
    last_at = models.DateTimeField()
    last_id = models.BigIntegerField()
    last_value = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["metric", "cohort", "day"], name="rollup_key"),
        ]
        indexes = [
            # A full recompute reads the recent days of every metric; rollups are kept for
            # good, so the days before are most of the table.
            models.Index(fields=["day"], name="rollup_day"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id} {self.cohort} {self.day}: {self.count} observations"

    @property
    def mean(self) -> float | None:
        return None if self.total is None else self.total / self.count

    def value(self, aggregation: str) -> float | None:
        """The day's figure as the metric aggregates: its mean, total or last value."""
        if aggregation == Aggregation.SUM:
            return self.total
        if aggregation == Aggregation.LAST:
            return self.last_value
        return self.mean
