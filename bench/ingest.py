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

3. with --http, the API over HTTP as production runs it: gunicorn (--http-workers sync
   workers) serving the real WSGI application, and --http-clients client threads POSTing
   batches of --http-batch rows over keep-alive connections; against the in-process API
   with the same batches in the same run (the goal: at least 0.5x its rate). The server
   publishes each recompute prompt to a real Redis broker (--broker) that no worker reads.

With --preload N the table first receives N observations of other initiatives' metrics over
the same 60 days (bench.recompute's binary COPY, indexes rebuilt after it, the rollup trigger
firing), so every phase inserts into a table that already holds N rows and their indexes.

The API and the two COPYs run alternately for --repeat rounds (3), each into the emptied
table. It prints each round's times, the medians, rows/s and the ratio of the medians
API/COPY (the goal: within 1.5x), with a breakdown of the median API round by stage.
--profile runs one API phase under cProfile instead and prints where the time goes (the
times are then inflated by the profiler).
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import os
import pstats
import queue
import socket
import statistics
import subprocess
import sys
import threading
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
HTTP_GOAL = 0.5  # gunicorn's rate at least half the in-process API's
QUICK = {"rows": 200_000, "http_rows": 100_000}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="observations (1,000,000)")
    parser.add_argument("--batch", type=int, default=10_000, help="observations per POST (10,000)")
    parser.add_argument("--metrics", type=int, default=4, help="metrics of the initiative (4)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the values")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of API, COPY one stream and COPY per batch, run alternately; the ratio "
        "compares medians (3)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the API phase under cProfile and print it (one round)",
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
    parser.add_argument(
        "--http", action="store_true", help="also measure the API over HTTP through gunicorn"
    )
    parser.add_argument("--http-rows", type=int, default=1_000_000, help="rows (1,000,000)")
    parser.add_argument("--http-batch", type=int, default=1_000, help="rows per POST (1,000)")
    parser.add_argument("--http-clients", type=int, default=16, help="client threads (16)")
    parser.add_argument(
        "--http-workers", type=int, default=5, help="gunicorn sync workers (5: 2 x cores + 1)"
    )
    parser.add_argument(
        "--broker",
        default="redis://127.0.0.1:6379/5",
        help="Redis the HTTP server publishes recompute prompts to; its 'celery' queue is "
        "deleted afterwards (redis://127.0.0.1:6379/5)",
    )
    parser.add_argument(
        "--preload",
        type=int,
        default=0,
        help="observations of other initiatives' metrics loaded before the timed phases, "
        "spread over the same 60 days (0: an empty table)",
    )
    parser.add_argument(
        "--preload-initiatives",
        type=int,
        default=5_000,
        help="initiatives of the preload, one live feed each (5,000)",
    )
    parser.add_argument(
        "--preload-metrics", type=int, default=20_000, help="metrics of the preload (20,000)"
    )
    add_quick_argument(parser, QUICK)
    add_database_arguments(parser, "ingest")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK)
    if args.profile:
        args.repeat = 1
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.rows < 1 or not 1 <= args.batch <= 10_000 or args.metrics < 1:
        parser.error("--rows and --metrics must be positive and --batch within 1..10,000")
    if args.preload < 0 or not 1 <= args.preload_initiatives <= args.preload_metrics:
        parser.error("--preload must not be negative, and each preload initiative needs a metric")
    return args


def create_fixture(metric_count: int):
    """One initiative owned by one user, its metrics and one live feed; returns (feed, token)."""
    from django.contrib.auth.models import Group

    from metrics import services
    from metrics.models import FeedKind, Metric
    from portfolio.models import BusinessUnit, Initiative, User
    from portfolio.roles import Role

    # Names of its own: the preload's portfolio (bench.recompute's) has a "bench-owner" and
    # a "benchmarks" unit.
    owner = User.objects.create_user("bench-ingest-owner", password=None)
    # The role bounds every power: only an owner by role may manage the feed it is named on.
    owner.groups.add(Group.objects.get_or_create(name=Role.OWNER)[0])
    unit = BusinessUnit.objects.create(name="Ingestion benchmark", slug="bench-ingest")
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
    stages.wrap(ingest, "store", "store")
    stages.wrap(services, "store_delivery", "store_delivery")
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


def preload(args: argparse.Namespace, now) -> None:
    """--preload: other initiatives' observations in the table before anything is timed.

    bench.recompute's portfolio (initiatives with a live feed each, 4 metrics per initiative
    by default) and its numpy binary COPY: every metric the same number of rows, in time order
    over the last 60 days, ending now. The table stays partitioned and its rollup trigger
    fires; its secondary indexes and foreign keys are dropped for the load and rebuilt from
    their own definitions, as bench.recompute loads. Then VACUUM ANALYZE, as autovacuum would
    have left a table filled over 60 days.
    """
    from django.db import connection

    from bench.recompute import create_portfolio, load_observations, secondary_indexes_dropped
    from metrics.models import DailyRollup, Observation

    spec = argparse.Namespace(
        initiatives=args.preload_initiatives,
        metrics=args.preload_metrics,
        last_share=0.0,
        observations=args.preload,
        seed=args.seed + 1,
        chunk=500_000,
    )
    table = Observation._meta.db_table
    with phase(f"preload: {spec.initiatives:,} initiatives, {spec.metrics:,} metrics (bulk)"):
        ids, feeds = create_portfolio(spec, now)
    with (
        phase(f"preload: {args.preload:,} observations (binary COPY, indexes rebuilt after)"),
        secondary_indexes_dropped(table),
    ):
        load_observations(spec, ids, feeds, now)
    with phase("preload: VACUUM ANALYZE"), connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(f"table after the preload: {table_size(table)}")
    log(f"rollups after the preload: {DailyRollup.objects.count():,} rows")


def truncate(feed, *, preloaded: bool) -> None:
    """Empty the table of the measured rows before a phase, then CHECKPOINT.

    Without a preload the observations and rollups are truncated. With one, only the measured
    feed's rows and its metrics' rollups are deleted, and VACUUM makes their space and index
    entries free again: the next phase inserts into the preloaded table as it was.
    """
    from django.db import connection

    from metrics.models import DailyRollup, Metric, Observation

    observations, rollups = Observation._meta.db_table, DailyRollup._meta.db_table
    with connection.cursor() as cursor:
        if not preloaded:
            # The rollups too: every phase then inserts its rollups as the first delivery does.
            cursor.execute(f"TRUNCATE {observations}, {rollups}")
        else:
            own = Metric.objects.filter(initiative_id=feed.initiative_id)
            metrics = list(own.values_list("pk", flat=True))
            cursor.execute(f"DELETE FROM {observations} WHERE feed_id = %s", [feed.pk])
            deleted = cursor.rowcount
            cursor.execute(f"DELETE FROM {rollups} WHERE metric_id = ANY(%s)", [metrics])
            if deleted:
                started = time.perf_counter()
                # Index cleanup forced: below 2% of pages with dead rows PostgreSQL would
                # skip it and leave the deleted rows' index entries behind.
                cursor.execute(f"VACUUM (INDEX_CLEANUP ON) {observations}, {rollups}")
                log(
                    f"  deleted the {deleted:,} measured rows; VACUUM "
                    f"{time.perf_counter() - started:.1f} s (not timed)"
                )
    checkpoint()


def count_rows(feed) -> int:
    """The measured feed's rows (a preload's are not counted)."""
    from metrics.models import Observation

    return Observation.objects.filter(feed_id=feed.pk).count()


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(args: argparse.Namespace, port: int) -> subprocess.Popen:
    """gunicorn serving gantry.wsgi on the benchmark's database, ready to take requests."""
    env = dict(os.environ)
    env.update(
        ALLOWED_HOSTS="127.0.0.1",
        CELERY_BROKER_URL=args.broker,
        LOG_LEVEL="WARNING",
    )
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [
            sys.executable, "-m", "gunicorn", "gantry.wsgi",
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(args.http_workers),
            "--worker-class", "sync",
            "--keep-alive", "30",
            "--timeout", "120",
            "--preload",  # Django is imported before the workers fork: they answer at once
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"bench: gunicorn exited: {server.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        sys.exit("bench: gunicorn did not listen within 60 s")
    return server


def run_http(args: argparse.Namespace, payload: Payload, feed, token: str) -> dict:
    """POST every body over HTTP from --http-clients threads; returns wall time and latencies."""
    port = free_port()
    server = start_gunicorn(args, port)
    path = f"/api/v1/feeds/{feed.pk}/observations"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    work: queue.Queue = queue.Queue()
    for body in payload.bodies:
        work.put(body)
    latencies: list[float] = []
    failures: list[str] = []
    created = [0]
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                break
            before = time.perf_counter()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            spent = time.perf_counter() - before
            with lock:
                latencies.append(spent)
                if response.status == 201:
                    created[0] += json.loads(answer)["created"]
                else:
                    failures.append(f"{response.status}: {answer[:300]!r}")
        connection.close()

    try:
        threads = [threading.Thread(target=client) for _ in range(args.http_clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
        forget_prompts(args.broker)
    if failures:
        sys.exit(f"bench: {len(failures)} HTTP batches failed, e.g. {failures[0]}")
    if created[0] != payload.rows:
        sys.exit(f"bench: HTTP created {created[0]} rows, expected {payload.rows}")
    return {"seconds": elapsed, "latencies": latencies}


def forget_prompts(broker: str) -> None:
    """Delete the recompute prompts the server queued (no worker reads this broker)."""
    import redis

    try:
        redis.Redis.from_url(broker, socket_timeout=2).delete("celery")
    except redis.RedisError as exc:
        log(f"could not delete the queued prompts on {broker}: {exc}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)]


def main(argv: list[str] | None = None) -> None:
    run_in_own_database(parse_args(argv), "ingest", benchmark)


def benchmark(args: argparse.Namespace) -> None:
    from django.utils import timezone

    from metrics import partitions
    from metrics.models import Metric, Observation

    table = Observation._meta.db_table
    log(
        f"PostgreSQL {server_version()}; {args.rows:,} rows in batches of {args.batch:,}; "
        f"preload {args.preload:,} observations"
    )
    # The months the 60 days fall into have their partitions, as the monthly job leaves them.
    made = partitions.ensure_partitions(now=timezone.now() - SPAN)
    log(f"observation partitions made: {', '.join(made) or 'none'}")
    with phase("fixture: initiative, metrics, live feed (services.create_feed)"):
        feed, token = create_fixture(args.metrics)
        metrics = list(Metric.objects.filter(initiative=feed.initiative).order_by("pk"))
    if args.preload:
        preload(args, timezone.now())
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
    # The phases alternate, round after round, so a slow spell of a shared machine falls on
    # both sides of the ratio rather than on one phase.
    apis, copies, batched = [], [], []
    for round_ in range(1, args.repeat + 1):
        truncate(feed, preloaded=bool(args.preload))
        with phase(f"round {round_}: API, POST every batch through the test Client"):
            apis.append(run_api(payload, feed, token, profile=args.profile))
        if count_rows(feed) != args.rows:
            sys.exit("bench: the table does not hold every row after the API phase")
        log(f"table after the API: {table_size(table)}")
        if args.skip_copy:
            continue
        truncate(feed, preloaded=bool(args.preload))
        with phase(f"round {round_}: COPY, one stream, one transaction"):
            copies.append(run_copy(payload.copy_chunks, per_batch=False))
        if count_rows(feed) != args.rows:
            sys.exit("bench: the table does not hold every row after COPY")
        truncate(feed, preloaded=bool(args.preload))
        with phase(f"round {round_}: COPY, one per batch of {args.batch:,}, each committed"):
            batched.append(run_copy(payload.copy_chunks, per_batch=True))
    truncate(feed, preloaded=bool(args.preload))
    log(
        f"recompute enqueues (no-op): {calls['apply_async']} call(s) for {calls['metrics']} "
        f"metric(s); debounced by the cache"
    )
    api = median_round(apis)
    copy_seconds = statistics.median(copies) if copies else None
    copy_batched = statistics.median(batched) if batched else None
    http = None
    if args.http:
        with phase(f"generate {args.http_rows:,} rows in batches of {args.http_batch:,}"):
            small = Payload(
                rows=args.http_rows,
                batch=args.http_batch,
                metrics=metrics,
                feed_id=feed.pk,
                seed=args.seed + 1,
            )
        truncate(feed, preloaded=bool(args.preload))
        with phase(f"API in process, batches of {args.http_batch:,}"):
            in_process = run_api(small, feed, token, profile=False)
        truncate(feed, preloaded=bool(args.preload))
        with phase(
            f"API over HTTP: gunicorn, {args.http_workers} workers, {args.http_clients} clients"
        ):
            over_http = run_http(args, small, feed, token)
        if count_rows(feed) != args.http_rows:
            sys.exit("bench: the table does not hold every row after the HTTP phase")
        truncate(feed, preloaded=bool(args.preload))
        http = {"rows": args.http_rows, "in_process": in_process, "http": over_http}
    report(args, payload, api, copy_seconds, copy_batched, rounds=(apis, copies, batched))
    if http:
        report_http(args, http)


def median_round(runs: list[dict]) -> dict:
    """The API round of median wall time, with every round's latencies."""
    chosen = sorted(runs, key=lambda run: run["seconds"])[(len(runs) - 1) // 2]
    return {**chosen, "latencies": [seconds for run in runs for seconds in run["latencies"]]}


def report(args, payload: Payload, api: dict, copy_seconds, copy_batched, *, rounds) -> None:
    rows, seconds = args.rows, api["seconds"]
    latencies = sorted(api["latencies"])
    p50 = latencies[len(latencies) // 2]
    p95 = latencies[min(int(len(latencies) * 0.95), len(latencies) - 1)]
    print()
    print(f"Ingestion of {rows:,} observations, {len(payload.bodies)} batches of {args.batch:,}")
    apis, copies, batched = rounds
    print(
        f"  {len(apis)} round(s), medians; runs: API "
        + ", ".join(f"{run['seconds']:.2f}" for run in apis)
        + (f"; COPY {', '.join(f'{c:.2f}' for c in copies)}" if copies else "")
        + (f"; COPY per batch {', '.join(f'{c:.2f}' for c in batched)}" if batched else "")
        + " s"
    )
    if copies:
        each = ", ".join(f"{run['seconds'] / c:.2f}" for run, c in zip(apis, copies, strict=True))
        print(f"  ratio API / COPY in each round: {each}")
    if args.profile:
        print("  (under cProfile: the API time is inflated by the profiler)")
    print(f"  JSON encoding in the benchmark (excluded):  {payload.encode_seconds:8.2f} s")
    print(f"  API (test Client -> view -> DB):            {seconds:8.2f} s  {rate(rows, seconds)}")
    print(f"      per request: median {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    stages = api["stages"]
    insert = stages.get("INSERT", 0.0)
    store = stages.get("store", 0.0)
    delivery = stages.get("store_delivery", 0.0)
    commit = stages.get("COMMIT", 0.0)
    # store() runs inside store_delivery()'s transaction (its own atomic block is a
    # savepoint there), so the COMMIT comes after store() returns, within store_delivery().
    parts = {
        "authenticate": stages.get("authenticate", 0.0),
        "parse JSON": stages.get("parse JSON", 0.0),
        "validate": stages.get("validate", 0.0),
        "INSERT (held keys, COPY or INSERT ... SELECT)": insert,
        "rest of store (dedupe, sort, locks, delivery row)": store - insert,
        "COMMIT (deferred foreign-key checks)": commit,
        "recompute mark and scheduling": delivery - store - commit,
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


def report_http(args, http: dict) -> None:
    rows = http["rows"]
    local, remote = http["in_process"], http["http"]
    local_rate, remote_rate = rows / local["seconds"], rows / remote["seconds"]
    ratio = remote_rate / local_rate
    print()
    print(f"Ingestion of {rows:,} observations in batches of {args.http_batch:,}")
    for label, run in (("API in process (one client)", local), ("API over HTTP", remote)):
        lat = run["latencies"]
        print(
            f"  {label:<42} {run['seconds']:8.2f} s  {rate(rows, run['seconds'])}  "
            f"(per request p50 {percentile(lat, 0.5) * 1000:.0f} ms, "
            f"p95 {percentile(lat, 0.95) * 1000:.0f} ms)"
        )
    print(f"      gunicorn: {args.http_workers} sync workers; {args.http_clients} client threads")
    verdict = "meets" if ratio >= HTTP_GOAL else "BELOW"
    print(f"  ratio HTTP rate / in-process rate:          {ratio:8.2f}x  ({verdict} {HTTP_GOAL}x)")
    print(ratio_line("ingest_http_vs_inprocess", ratio, HTTP_GOAL, at_least=True))


if __name__ == "__main__":
    main()
