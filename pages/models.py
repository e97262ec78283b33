"""What the read layer stores of its own: a trace of writes its cached sections must see."""

from django.db import models
from django.utils import timezone


class Source(models.TextChoices):
    """Data the dashboard's sections read that changes in place, with no version of its own
    (append-only data, decisions and snapshots, is versioned by its newest id)."""

    INITIATIVES = "initiatives", "Initiatives"
    METRICS = "metrics", "Metrics"
    FLAGS = "flags", "Purgatory flags"
    PEOPLE = "people", "People"
    UNITS = "units", "Business units"
    LIMITS = "limits", "Stage limits"


class Change(models.Model):
    """One write to a `Source`, recorded in the writer's transaction (so it commits and rolls
    back with the data). A source's version is the id of its newest change: inserts never
    wait on each other, where a counter row would queue every writer behind one lock."""

    source = models.CharField(max_length=20, choices=Source.choices)
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.get_source_display()} changed at {self.at:%Y-%m-%d %H:%M:%S}"
