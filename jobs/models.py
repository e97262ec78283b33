"""The schedule of periodic jobs, kept in the database, and the workers' heartbeats.

Beat only sends a tick; what is due, who runs it and when it last ran live here, so a tick
lost to a broker outage or a killed worker delays a job until the next tick and never drops
it.
"""

from django.db import models


class Job(models.Model):
    """One periodic job: when it is next due and who holds it now."""

    name = models.CharField(max_length=80, primary_key=True)
    due_at = models.DateTimeField()
    # When the current (or last unfinished) run began; shown in the admin. Who runs the job
    # is a lock held by that worker's database connection (jobs.runner).
    claimed_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    # Failures since the last success; the job is tried again sooner than its interval.
    failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkerHeartbeat(models.Model):
    """The last moment a worker ran a tick: what /healthz reads instead of pinging."""

    hostname = models.CharField(max_length=200, primary_key=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return self.hostname
