"""Versions of the data the dashboard's cached sections read, all in one cheap query.

A section's cache key holds the versions of what it reads, so a write to that data makes a
new key and the section is computed again on the next request, while the other sections stay
cached. Two kinds of version:

- append-only data is versioned by its newest id: a gate decision (and with it every stage
  change, stop and passed review), a metric snapshot (every recompute), a budget request
  and a budget decision (with the line an approval opens);
- data changed in place records a `Change` in the writer's transaction: the flag job, when it
  raises, rewords, redates or clears a flag, and every save or delete of an initiative,
  metric, person, business unit or stage limit, by a service or in the admin, heard through
  Django's model signals.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Max
from django.db.models.signals import post_delete, post_save

from gates.models import GateDecision
from metrics.models import Metric, MetricSnapshot
from pages.models import Change, Source
from portfolio.models import BusinessUnit, Initiative, StageLimit
from value.models import BudgetDecision, BudgetRequest

DECISIONS = "decisions"
SNAPSHOTS = "snapshots"
BUDGET_REQUESTS = "budget_requests"
BUDGET_DECISIONS = "budget_decisions"  # an approval opens its budget line in the same write


def changed(*sources: str) -> None:
    """Record that `sources` changed, in the caller's transaction."""
    Change.objects.bulk_create([Change(source=source) for source in sources])


def current() -> dict[str, int]:
    """{source: version} of every source, in one query; a source never written is 0."""
    tables = {
        DECISIONS: GateDecision._meta.db_table,
        SNAPSHOTS: MetricSnapshot._meta.db_table,
        BUDGET_REQUESTS: BudgetRequest._meta.db_table,
        BUDGET_DECISIONS: BudgetDecision._meta.db_table,
    }
    # Table names are our own models'; the values go as parameters. A write that drew a lower
    # id but commits after a higher one leaves the newest id as it was: such a write is seen
    # when the section's cache entry expires (pages.dashboard.CACHE_SECONDS), not sooner.
    sql = " UNION ALL ".join(
        [
            *(f"SELECT %s, MAX(id) FROM {table}" for table in tables.values()),  # noqa: S608
            f"SELECT source, MAX(id) FROM {Change._meta.db_table} GROUP BY source",  # noqa: S608
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(tables))
        found = dict(cursor.fetchall())
    return {name: found.get(name) or 0 for name in [*tables, *Source.values]}


def prune() -> int:
    """Delete every change but the newest of each source (the version is all that is read);
    a periodic job. Returns how many were deleted."""
    newest = Change.objects.values("source").annotate(last=Max("id")).values("last")
    deleted, _ = Change.objects.exclude(pk__in=newest).delete()
    return deleted


# Saves that change nothing a section shows: signing in, a person's own time zone.
UNSHOWN_FIELDS = {"last_login", "password", "time_zone"}


def _on_write(source: str):
    def record(sender, update_fields=None, **kwargs) -> None:
        if update_fields is not None and set(update_fields) <= UNSHOWN_FIELDS:
            return
        changed(source)

    record.__name__ = f"record_{source}_change"
    return record


_RECEIVERS = {}


def connect() -> None:
    """Record a change on every save and delete of the models behind the in-place sources
    (once, at app start). Queryset `update()` sends no signal: the writers that use it on
    these models record their change themselves (`pages.purgatory.sync_flags`) or write a
    gate decision with it (`gates.services.import_history`)."""
    models = {
        Source.INITIATIVES: Initiative,
        Source.METRICS: Metric,
        Source.PEOPLE: get_user_model(),
        Source.UNITS: BusinessUnit,
        Source.LIMITS: StageLimit,
    }
    for source, model in models.items():
        receiver = _RECEIVERS.setdefault(source, _on_write(source))
        for signal in (post_save, post_delete):
            signal.connect(receiver, sender=model, dispatch_uid=f"pages.versions.{source}")
