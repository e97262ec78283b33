"""The tick: a heartbeat, then every due periodic job once, each job held by one worker at a
time, a failure kept to its own job, and nothing dropped when ticks are lost."""

import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError, connection, connections
from django.utils import timezone

from jobs import registry, runner, tasks
from jobs.models import Job, WorkerHeartbeat
from jobs.registry import Periodic

pytestmark = pytest.mark.django_db


class Counter:
    def __init__(self, *, fail: bool = False, sleep: float = 0):
        self.runs, self.fail, self.sleep = 0, fail, sleep
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.runs += 1
        time.sleep(self.sleep)
        if self.fail:
            raise RuntimeError("feed table on fire")
        return self.runs


def make_due(name: str) -> None:
    Job.objects.filter(name=name).update(due_at=timezone.now() - timedelta(seconds=1))


def test_a_tick_records_the_worker_s_heartbeat():
    with registry.override():
        runner.tick(hostname="celery@w1")
        first = WorkerHeartbeat.objects.get().seen_at
        runner.tick(hostname="celery@w1")
    beat = WorkerHeartbeat.objects.get()  # one row per worker, moved forward
    assert beat.hostname == "celery@w1"
    assert beat.seen_at >= first


def test_heartbeats_of_long_gone_workers_are_forgotten():
    WorkerHeartbeat.objects.create(
        hostname="celery@old", seen_at=timezone.now() - runner.FORGET_WORKERS_AFTER * 2
    )
    with registry.override():
        runner.tick(hostname="celery@w1")
    assert list(WorkerHeartbeat.objects.values_list("hostname", flat=True)) == ["celery@w1"]


def test_a_due_job_runs_once_then_waits_its_interval():
    hourly = Counter()
    with registry.override(Periodic("hourly", every=3600, run=hourly)):
        assert runner.tick(hostname="w") == {"hourly": "ok"}  # new: due at once
        assert runner.tick(hostname="w") == {}
        job = Job.objects.get(name="hourly")
        assert job.runs == 1
        assert job.claimed_at is None
        assert timedelta(minutes=59) < job.due_at - timezone.now() <= timedelta(hours=1)
        make_due("hourly")
        runner.tick(hostname="w")
    assert hourly.runs == 2


def test_a_job_of_every_tick_runs_once_per_tick():
    sweep = Counter()
    with registry.override(Periodic("sweep", every=0, run=sweep)):
        for _ in range(3):
            assert runner.tick(hostname="w") == {"sweep": "ok"}
    assert sweep.runs == 3


def test_lost_ticks_delay_a_job_and_never_drop_it_or_pile_it_up():
    every_five = Counter()
    with registry.override(Periodic("five", every=300, run=every_five)):
        runner.tick(hostname="w")
        # An hour without ticks (broker down, beat stopped): twelve runs were due.
        Job.objects.filter(name="five").update(due_at=timezone.now() - timedelta(hours=1))
        runner.tick(hostname="w")
        runner.tick(hostname="w")
    assert every_five.runs == 2  # caught up once, not twelve times


def test_a_failing_job_is_recorded_retried_sooner_and_stops_no_other():
    broken, healthy = Counter(fail=True), Counter()
    with registry.override(
        Periodic("broken", every=3600, run=broken), Periodic("healthy", every=3600, run=healthy)
    ):
        outcomes = runner.tick(hostname="w")
        assert outcomes["healthy"] == "ok"
        assert outcomes["broken"] == "RuntimeError: feed table on fire"
        row = Job.objects.get(name="broken")
        assert (row.failures, row.runs, row.claimed_at) == (1, 0, None)
        assert "feed table on fire" in row.last_error
        assert row.due_at <= timezone.now() + timedelta(seconds=runner.RETRY_SECONDS)
        broken.fail = False
        make_due("broken")
        runner.tick(hostname="w")
    row.refresh_from_db()
    assert (row.failures, row.runs, row.last_error) == (0, 1, "")
    assert healthy.runs == 1


@pytest.mark.django_db(transaction=True)
def test_a_job_another_worker_runs_is_skipped_and_freed_when_that_worker_dies(
    require_postgres,
):
    job = Counter()
    running, stop = threading.Event(), threading.Event()
    holder = {}

    def other_worker():
        # Claims the job and dies in the middle of it: its connection is cut.
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                holder["pid"] = cursor.fetchone()[0]
            assert runner._claim_next(registry.registered(), set()) is not None
            running.set()
            stop.wait(timeout=20)
        finally:
            connections.close_all()

    with registry.override(Periodic("held", every=60, run=job)):
        Job.objects.create(name="held", due_at=timezone.now() - timedelta(seconds=1))
        thread = threading.Thread(target=other_worker)
        thread.start()
        try:
            assert running.wait(timeout=10)
            assert runner.tick(hostname="w") == {}  # the other worker is on it
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [holder["pid"]])
            deadline = time.monotonic() + 5
            while not (outcome := runner.tick(hostname="w")) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert outcome == {"held": "ok"}  # at once, not after a lease
        finally:
            stop.set()
            thread.join(timeout=10)
    assert job.runs == 1


def test_the_tick_task_waits_out_a_database_outage(caplog):
    with mock.patch.object(runner, "tick", side_effect=OperationalError("server closed")):
        assert tasks.tick.run() == {}
    assert "database unavailable" in caplog.text


def test_a_name_names_one_job():
    with registry.override():
        registry.register("job", every=60, run=print)
        registry.register("job", every=60, run=print)  # the same, again: fine
        with pytest.raises(ValueError, match="already registered"):
            registry.register("job", every=60, run=repr)


def test_the_apps_register_their_periodic_jobs():
    jobs = registry.registered()
    assert {name: job.every for name, job in jobs.items()} == {
        "recompute-sweep": 0,
        "recompute-all-metrics": 3600,
        "mark-stale-feeds": 300,
        "sync-purgatory-flags": 900,
        "deliver-notifications": 0,
        "reminders": 3600,
        "weekly-digest": 900,
        "observation-partitions": 6 * 3600,
        "retention": 24 * 3600,
        "prune-section-changes": 3600,
    }


def test_beat_sends_only_the_tick_and_a_late_tick_expires():
    assert list(settings.CELERY_BEAT_SCHEDULE) == ["tick"]
    tick = settings.CELERY_BEAT_SCHEDULE["tick"]
    assert tick["task"] == tasks.tick.name
    assert tick["schedule"] == settings.GANTRY_TICK_SECONDS <= 15
    assert tick["options"]["expires"] <= 2 * settings.GANTRY_TICK_SECONDS


@pytest.mark.django_db(transaction=True)
def test_workers_ticking_at_once_run_a_job_once(require_postgres):
    slow = Counter(sleep=1)
    start = threading.Barrier(3)
    errors = []

    def tick(name: str) -> None:
        try:
            start.wait(timeout=10)
            runner.tick(hostname=name)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    with registry.override(Periodic("slow", every=600, run=slow)):
        Job.objects.create(name="slow", due_at=timezone.now() - timedelta(seconds=1))
        threads = [threading.Thread(target=tick, args=(f"celery@w{i}",)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors
    assert slow.runs == 1
    assert Job.objects.get(name="slow").runs == 1
    assert WorkerHeartbeat.objects.count() == 3
