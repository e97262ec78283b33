"""Ingestion benchmark: the JSON API against a raw COPY of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gantry_bench \\
        .venv/bin/python -m bench.ingest [--rows 1000000] [--batch 10000]

In a database of its own (see bench.common) it creates one initiative with a few metrics and
one live feed through the services, generates the observations, and measures

1. the API: every batch POSTed through Django's test Client to the real view (middleware,
   bearer-token check, JSON parsing, validation, the set-based insert, the on_commit recompute
   scheduling). The batches are JSON-encoded before the clock starts; that encoding is timed
   and reported separately. The only thing replaced is the Celery publish:
   `recompute_metrics.apply_async` is a counting no-op and CELERY_TASK_ALWAYS_EAGER is off, so
   no recompute runs inside the measurement (the debounce through the cache still runs).
2. a raw `COPY metrics_observation (...) FROM STDIN` of the same rows, as one stream, into the
   truncated table with the same indexes and constraints; and, for reference, one COPY per
   batch, each committed on its own as the API commits each batch.

It prints both times, rows/s and the ratio API/COPY (the goal: within 1.5x), with a
breakdown of the API time by stage. --profile runs the API phase under cProfile instead and
prints where the time goes (the times are then inflated by the profiler).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from datetime import timedelta

import numpy as np

from bench.common import (
    StageTimer,
    add_database_arguments,
    add_quick_argument,
    apply_quick,
    checkpoint,
    log,
    phase,
    rate,
    ratio_line,
    run_in_own_database,
    server_version,
    table_size,
)

COHORTS = ("pilot", "baseline", "production")
SPAN = timedelta(days=60)
COLUMNS = "metric_id, feed_id, cohort, observed_at, value, ingested_at"
GOAL = 1.5  # the API within 1.5x raw COPY
QUICK = {"rows": 200_000}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="observations (1,000,000)")
    parser.add_argument("--batch", type=int, default=10_000, help="observations per POST (10,000)")
    parser.add_argument("--metrics", type=int, default=4, help="metrics of the initiative (4)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the values")
    parser.add_argument(
        "--profile", action="store_true", help="run the API phase under cProfile and print it"
    )
    parser.add_argument(
        "--skip-copy", action="store_true", help="measure the API only (no COPY phases)"
    )
    parser.add_argument(
        "--unnest",
        action="store_true",
        help="force the one-statement unnest insert for every batch size (the path used "
        "before batches of metrics.ingest.COPY_FROM_ROWS rows or more went through COPY)",
    )
    add_quick_argument(parser, QUICK)
    add_database_arguments(parser, "ingest")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK)
    if args.rows < 1 or not 1 <= args.batch <= 10_000 or args.metrics < 1:
        parser.error("--rows and --metrics must be positive and --batch within 1..10,000")
    return args


def create_fixture(metric_count: int):
    """One initiative owned by one user, its metrics and one live feed; returns (feed, token)."""
    from django.contrib.auth.models import Group

    from metrics import services
    from metrics.models import FeedKind, Metric
    from portfolio.models import BusinessUnit, Initiative, User
    from portfolio.roles import Role

    owner = User.objects.create_user("bench-owner", password=None)
    # The role bounds every power: only an owner by role may manage the feed it is named on.
    owner.groups.add(Group.objects.get_or_create(name=Role.OWNER)[0])
    unit = BusinessUnit.objects.create(name="Benchmarks", slug="benchmarks")
    initiative = Initiative.objects.create(
        title="Ingestion benchmark", business_unit=unit, business_owner=owner
    )
    for n in range(metric_count):
        Metric.objects.create(
            initiative=initiative,
            name=f"Benchmark metric {n + 1}",
            unit="%",
            ship_threshold=100,
            is_primary=n == 0,
        )
    return services.create_feed(
        initiative=initiative,
        user=owner,
        name="Benchmark live feed",
        kind=FeedKind.LIVE,
        owner=owner,
        freshness_hours=24,
    )


class Payload:
    """The observations, as JSON bodies for the API and as COPY text for the raw load.

    Row i is for metric i % M and cohort (i // M) % 3, observed at a distinct millisecond
    (spread evenly over the 60 days before the start, in time order, as a feed sends them),
    with a value rounded to three decimals. Every row is new: no duplicates.
    """

    def __init__(self, *, rows: int, batch: int, metrics, feed_id: int, seed: int) -> None:
        from django.utils import timezone

        self.rows = rows
        rng = np.random.default_rng(seed)
        end_ms = int((timezone.now() - timedelta(minutes=10)).timestamp() * 1000)
        span_ms = int(SPAN.total_seconds() * 1000)
        step = max(span_ms // rows, 1)
        moments = end_ms - step * (rows - 1) + np.arange(rows, dtype=np.int64) * step
        stamps = np.datetime_as_string(moments.astype("datetime64[ms]"), unit="ms", timezone="UTC")
        values = np.round(rng.normal(100.0, 15.0, rows), 3).tolist()
        stamps = stamps.tolist()
        slugs = [m.slug for m in metrics]
        ids = [m.pk for m in metrics]
        ingested = timezone.now().isoformat()
        self.bodies: list[bytes] = []
        self.copy_chunks: list[bytes] = []
        self.encode_seconds = 0.0
        count = len(metrics)
        for start in range(0, rows, batch):
            span = range(start, min(start + batch, rows))
            items = [
                {
                    "metric": slugs[i % count],
                    "cohort": COHORTS[(i // count) % 3],
                    "observed_at": stamps[i],
                    "value": values[i],
                }
                for i in span
            ]
            started = time.perf_counter()
            self.bodies.append(json.dumps(items).encode())
            self.encode_seconds += time.perf_counter() - started
            self.copy_chunks.append(
                "".join(
                    f"{ids[i % count]}\t{feed_id}\t{COHORTS[(i // count) % 3]}\t{stamps[i]}"
                    f"\t{values[i]!r}\t{ingested}\n"
                    for i in span
                ).encode()
            )

    @property
    def json_bytes(self) -> int:
        return sum(len(b) for b in self.bodies)


def no_broker() -> dict[str, int]:
    """Make the recompute enqueue a counting no-op; returns the counter."""
    from django.conf import settings

    from gantry.celery import app
    from metrics.tasks import recompute_metrics

    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    calls = {"apply_async": 0, "metrics": 0}

    def apply_async(args=None, **options):
        calls["apply_async"] += 1
        calls["metrics"] += len(args[0]) if args else 0

    recompute_metrics.apply_async = apply_async
    return calls


def run_api(payload: Payload, feed, token: str, *, profile: bool) -> dict:
    """POST every body; returns the wall time, per-request latencies and the breakdown."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.test import Client
    from django.urls import reverse

    from metrics import ingest, services

    client = Client()
    url = reverse("api-observations", args=[feed.pk])
    headers = {"Authorization": f"Bearer {token}"}
    stages = StageTimer()
    stages.wrap(services, "authenticate_feed", "authenticate")
    stages.wrap(ingest, "parse_json_body", "parse JSON")
    stages.wrap(ingest, "validate", "validate")
    stages.wrap(ingest, "_insert", "INSERT")
    stages.wrap(ingest, "store", "store (INSERT + feed update + commit)")
    # The foreign keys are DEFERRABLE INITIALLY DEFERRED: their row checks run at COMMIT.
    stages.wrap(connections[DEFAULT_DB_ALIAS], "commit", "COMMIT")
    latencies = []
    created = 0
    profiler = cProfile.Profile() if profile else None
    report_every = max(len(payload.bodies) // 10, 1)
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for n, body in enumerate(payload.bodies, start=1):
        before = time.perf_counter()
        response = client.post(url, data=body, content_type="application/json", headers=headers)
        latencies.append(time.perf_counter() - before)
        if response.status_code != 201:
            sys.exit(f"bench: batch {n} got {response.status_code}: {response.content[:500]!r}")
        created += json.loads(response.content)["created"]
        if n % report_every == 0:
            log(f"  API: {n}/{len(payload.bodies)} batches, {created:,} rows")
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    stages.restore()
    if created != payload.rows:
        sys.exit(f"bench: the API created {created} rows, expected {payload.rows}")
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    return {"seconds": elapsed, "latencies": latencies, "stages": dict(stages.seconds)}


def truncate() -> None:
    from django.db import connection

    from metrics.models import Observation

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Observation._meta.db_table}")
    checkpoint()


def count_rows() -> int:
    from metrics.models import Observation

    return Observation.objects.count()


def run_copy(chunks: list[bytes], *, per_batch: bool) -> float:
    """COPY the chunks in one transaction, or each in its own; returns the seconds."""
    from django.db import connection, transaction

    from metrics.models import Observation

    statement = f"COPY {Observation._meta.db_table} ({COLUMNS}) FROM STDIN"
    groups = [[chunk] for chunk in chunks] if per_batch else [chunks]
    started = time.perf_counter()
    for group in groups:
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.cursor.copy(statement) as copy,
        ):
            for chunk in group:
                copy.write(chunk)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    run_in_own_database(parse_args(argv), "ingest", benchmark)


def benchmark(args: argparse.Namespace) -> None:
    from metrics.models import Metric, Observation

    table = Observation._meta.db_table
    log(f"PostgreSQL {server_version()}; {args.rows:,} rows in batches of {args.batch:,}")
    with phase("fixture: initiative, metrics, live feed (services.create_feed)"):
        feed, token = create_fixture(args.metrics)
        metrics = list(Metric.objects.filter(initiative=feed.initiative).order_by("pk"))
    with phase("generate rows, JSON bodies and COPY text (not timed below)"):
        payload = Payload(
            rows=args.rows, batch=args.batch, metrics=metrics, feed_id=feed.pk, seed=args.seed
        )
    log(
        f"JSON encoding (json.dumps, excluded from the API time): {payload.encode_seconds:.2f} s "
        f"for {len(payload.bodies)} bodies, {payload.json_bytes / 1e6:,.1f} MB"
    )
    calls = no_broker()
    if args.unnest:
        from metrics import ingest

        ingest.COPY_FROM_ROWS = args.batch + 1
        log("--unnest: every batch is inserted by the one-statement unnest")
    truncate()
    with phase("API: POST every batch through the test Client"):
        api = run_api(payload, feed, token, profile=args.profile)
    if count_rows() != args.rows:
        sys.exit("bench: the table does not hold every row after the API phase")
    log(f"table after the API: {table_size(table)}")
    log(
        f"recompute enqueues (no-op): {calls['apply_async']} call(s) for {calls['metrics']} "
        f"metric(s); debounced by the cache"
    )
    copy_seconds = copy_batched = None
    if not args.skip_copy:
        truncate()
        with phase("COPY: one stream, one transaction"):
            copy_seconds = run_copy(payload.copy_chunks, per_batch=False)
        if count_rows() != args.rows:
            sys.exit("bench: the table does not hold every row after COPY")
        log(f"table after COPY: {table_size(table)}")
        truncate()
        with phase(f"COPY: one per batch of {args.batch:,}, each committed"):
            copy_batched = run_copy(payload.copy_chunks, per_batch=True)
        truncate()
    report(args, payload, api, copy_seconds, copy_batched)


def report(args, payload: Payload, api: dict, copy_seconds, copy_batched) -> None:
    rows, seconds = args.rows, api["seconds"]
    latencies = sorted(api["latencies"])
    p50 = latencies[len(latencies) // 2]
    p95 = latencies[min(int(len(latencies) * 0.95), len(latencies) - 1)]
    print()
    print(f"Ingestion of {rows:,} observations, {len(payload.bodies)} batches of {args.batch:,}")
    if args.profile:
        print("  (under cProfile: the API time is inflated by the profiler)")
    print(f"  JSON encoding in the benchmark (excluded):  {payload.encode_seconds:8.2f} s")
    print(f"  API (test Client -> view -> DB):            {seconds:8.2f} s  {rate(rows, seconds)}")
    print(f"      per request: median {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    stages = api["stages"]
    insert = stages.get("INSERT", 0.0)
    store = stages.get("store (INSERT + feed update + commit)", 0.0)
    commit = stages.get("COMMIT", 0.0)
    parts = {
        "authenticate": stages.get("authenticate", 0.0),
        "parse JSON": stages.get("parse JSON", 0.0),
        "validate": stages.get("validate", 0.0),
        "INSERT (unnest or COPY + INSERT ... SELECT)": insert,
        "COMMIT (deferred foreign-key checks)": commit,
        "rest of store (dedupe, feed update)": store - insert - commit,
    }
    parts["Django, middleware, test Client, scheduling"] = seconds - sum(parts.values())
    for label, part in parts.items():
        print(f"      {label:<44} {part:7.2f} s  {part / seconds:6.1%}")
    if copy_seconds is not None:
        ratio = seconds / copy_seconds
        print(
            f"  COPY, one stream:                           {copy_seconds:8.2f} s  "
            f"{rate(rows, copy_seconds)}"
        )
        print(
            f"  COPY, one per batch:                        {copy_batched:8.2f} s  "
            f"{rate(rows, copy_batched)}"
        )
        verdict = "within" if ratio <= GOAL else "ABOVE"
        print(f"  ratio API / COPY:                           {ratio:8.2f}x  ({verdict} {GOAL}x)")
        print(ratio_line("ingest_api_vs_copy", ratio, GOAL))


if __name__ == "__main__":
    main()
