"""The tick: record that a worker is alive, then run each periodic job that is due.

Jobs are claimed one at a time, skipping what another worker holds, so two workers ticking at
once share the due jobs instead of running one twice, and a long job holds only itself. A
failed job is logged, kept due sooner than its interval, and does not stop the jobs after it.
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from datetime import timedelta

from django.db import DatabaseError, connection
from django.db.models import F
from django.utils import timezone

from jobs import registry
from jobs.models import Job, WorkerHeartbeat

log = logging.getLogger(__name__)

# A failed job is tried again after its interval or this, whichever is sooner.
RETRY_SECONDS = 60
# Heartbeats of workers gone this long are deleted (hostnames change with containers).
FORGET_WORKERS_AFTER = timedelta(days=7)


def heartbeat(hostname: str) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.bulk_create(
        [WorkerHeartbeat(hostname=hostname, seen_at=now)],
        update_conflicts=True,
        unique_fields=["hostname"],
        update_fields=["seen_at"],
    )
    WorkerHeartbeat.objects.filter(seen_at__lt=now - FORGET_WORKERS_AFTER).delete()


def _schedule(jobs: dict[str, registry.Periodic]) -> None:
    """A row for every registered job, due at once when new."""
    now = timezone.now()
    Job.objects.bulk_create([Job(name=name, due_at=now) for name in jobs], ignore_conflicts=True)


def _claim_next(jobs: dict[str, registry.Periodic], done: set[str]) -> registry.Periodic | None:
    """The first due job no other worker is running, claimed. Jobs another worker holds are
    skipped, not waited for."""
    due = (
        Job.objects.filter(name__in=set(jobs) - done, due_at__lte=timezone.now())
        .order_by("due_at", "name")
        .values_list("name", flat=True)
    )
    for name in due:
        if not _try_lock(name):
            continue
        # Read again under the claim: another worker may have run it just before.
        now = timezone.now()
        if Job.objects.filter(name=name, due_at__lte=now).update(
            claimed_at=now, last_started_at=now
        ):
            return jobs[name]
        _unlock(name)
    return None


# A job's claim is a session advisory lock held by the worker's database connection: it
# ends with the run, or with the connection if the worker dies, so no lease is waited out.
LOCK_SPACE = 0x4A42 << 48


def _key(name: str) -> int:
    return LOCK_SPACE + zlib.crc32(name.encode())


def _try_lock(name: str) -> bool:
    if connection.vendor != "postgresql":
        return True  # one process (SQLite): nobody to share the jobs with
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_key(name)])
        return cursor.fetchone()[0]


def _unlock(name: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_key(name)])


def _finish(job: registry.Periodic, error: str = "") -> None:
    now = timezone.now()
    row = Job.objects.filter(name=job.name)
    if error:
        row.update(
            claimed_at=None,
            last_finished_at=now,
            due_at=now + timedelta(seconds=min(job.every, RETRY_SECONDS)),
            failures=F("failures") + 1,
            last_error=error[:2000],
        )
    else:
        row.update(
            claimed_at=None,
            last_finished_at=now,
            due_at=now + timedelta(seconds=job.every),
            runs=F("runs") + 1,
            failures=0,
            last_error="",
        )


def tick(*, hostname: str) -> dict[str, str]:
    """Beat, then run each due job at most once. Returns {job name: "ok" or the error}."""
    heartbeat(hostname)
    jobs = registry.registered()
    if not jobs:
        return {}
    _schedule(jobs)
    outcomes: dict[str, str] = {}
    while job := _claim_next(jobs, set(outcomes)):
        try:
            result = job.run()
        except Exception as exc:  # one failing job must not stop the others
            log.exception("periodic job %s failed", job.name)
            outcomes[job.name] = f"{type(exc).__name__}: {exc}"
        else:
            log.info("periodic job %s: %s", job.name, result)
            outcomes[job.name] = "ok"
        try:
            _finish(job, "" if outcomes[job.name] == "ok" else outcomes[job.name])
        except Exception:
            # The database went away, and with it the connection's claim.
            log.warning("could not record the end of periodic job %s", job.name)
            raise
        finally:
            with contextlib.suppress(DatabaseError):
                _unlock(job.name)
    return outcomes
