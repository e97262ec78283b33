"""Metrics: the numbers that decide whether an initiative ships."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.text import slugify


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
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})"

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:120] or "metric"
        super().save(*args, **kwargs)

    @property
    def higher_is_better(self) -> bool:
        return self.direction == Direction.HIGHER
