"""Recompute benchmark: metrics.status.recompute() against the raw aggregate SQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gantry_bench \\
        .venv/bin/python -m bench.recompute [--observations 10000000] [--repeat 3]

In a database of its own (see bench.common) it bulk-creates 5,000 initiatives, each with one
live feed and 4 metrics (20,000 metrics; comparison windows of 7, 14 and 28 days in turn,
aggregated by mean or sum), and COPYs 10,000,000 observations in PostgreSQL's binary format,
built with numpy: every metric gets the same number, in time order over the last 60 days, in
the pilot, baseline and production cohorts (40/40/20%). The table keeps its indexes and
constraints during the load, as it would in production. Then VACUUM ANALYZE.

It then times, alternately and --repeat times each after one warm-up,

- `metrics.status.recompute()` for all metrics: the aggregate queries, the verdicts and
  statistics in Python, and the writes of 20,000 snapshots and of `latest_snapshot`;
- the raw SQL that computes the same aggregates in one GROUP BY (all rows fetched), with
  the same bounds recompute applies: each metric's own window, and the widest window
  bounding the scan before the join:

      SELECT metric_id, cohort, count(*), avg(value), sum(value), stddev_samp(value)
      FROM metrics_observation o JOIN metrics_metric m ON m.id = o.metric_id
      WHERE o.cohort IN ('pilot', 'baseline')
        AND o.observed_at > now() - m.comparison_window_days * interval '1 day'
        AND o.observed_at > now() - interval '28 days'   -- the widest window, read first
        AND o.observed_at <= now()
      GROUP BY 1, 2

and prints the medians, the ratio recompute/raw (goal: within 1.5x; its last line reads
`ratio: recompute_full <value> (goal <= 1.5)`) and where recompute's time goes. --quick
runs the same code at a reduced scale in a few minutes. It also checks that recompute's
aggregates equal the raw query's. --explain prints EXPLAIN (ANALYZE, BUFFERS) of
recompute's aggregate queries and of the raw query. --last-share makes a share of the
metrics aggregate by their last value, which costs recompute a window-function query the
raw SQL does not do (off by default).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import timedelta

import numpy as np

from bench.common import (
    StageTimer,
    add_database_arguments,
    add_quick_argument,
    apply_quick,
    log,
    median,
    phase,
    rate,
    ratio_line,
    run_in_own_database,
    server_version,
    table_size,
)

WINDOWS = (7, 14, 28)
SPAN = timedelta(days=60)
COHORTS = (b"pilot", b"baseline", b"production")
COHORT_SHARES = (0.4, 0.4, 0.2)
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in microseconds since the Unix epoch
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
# Like for like with recompute(): each metric's own window, and the widest window bounding
# the scan before the join, as metrics.status._in_window does.
RAW_SQL = """
    SELECT metric_id, cohort, count(*), avg(value), sum(value), stddev_samp(value)
    FROM metrics_observation o JOIN metrics_metric m ON m.id = o.metric_id
    WHERE o.cohort IN ('pilot', 'baseline')
      AND o.observed_at > {now} - m.comparison_window_days * interval '1 day'
      AND o.observed_at > {now} - interval '{widest} days'
      AND o.observed_at <= {now}
    GROUP BY 1, 2
"""
# The second baseline reads what recompute reads: each metric's whole days of the window
# from the daily rollups and only the partial first and last day from the raw rows, combined
# as recompute combines them (Chan's formula for the spread). Hand-written, one statement.
ROLLUP_SQL = """
    WITH bounds AS (
        SELECT id AS metric_id,
            {now} - comparison_window_days * interval '1 day' AS start,
            least(
                date_trunc('day', {now} - comparison_window_days * interval '1 day', 'UTC')
                    + interval '1 day',
                date_trunc('day', {now}, 'UTC')
            ) AS first_day,
            date_trunc('day', {now}, 'UTC') AS today
        FROM metrics_metric
    ),
    parts AS (
        SELECT r.metric_id, r.cohort, r.count AS n, r.total AS s, r.sum_sq_dev AS m2
        FROM metrics_dailyrollup r JOIN bounds b USING (metric_id)
        WHERE r.cohort IN ('pilot', 'baseline')
          AND r.day >= (b.first_day AT TIME ZONE 'UTC')::date
          AND r.day < (b.today AT TIME ZONE 'UTC')::date
        UNION ALL
        SELECT o.metric_id, o.cohort, count(*), sum(o.value), var_pop(o.value) * count(*)
        FROM metrics_observation o JOIN bounds b USING (metric_id)
        WHERE o.cohort IN ('pilot', 'baseline')
          AND ((o.observed_at > b.start AND o.observed_at < b.first_day)
               OR (o.observed_at >= b.today AND o.observed_at <= {now}))
          AND ({partial_days})
        GROUP BY 1, 2
    )
    SELECT metric_id, cohort, n, moments[2] / n, moments[2],
        sqrt(moments[3] / nullif(n - 1, 0))
    FROM (
        SELECT metric_id, cohort, sum(n) AS n,
            gantry_moments(ARRAY[n, s, m2]::float8[]) AS moments  -- Chan's merge, in C
        FROM parts GROUP BY 1, 2
    ) AS q
"""
GOAL = 1.5  # recompute within 1.5x the like-for-like raw aggregate
QUICK = {"observations": 2_000_000, "initiatives": 1_000, "metrics": 4_000, "repeat": 5}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.recompute", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--observations", type=int, default=10_000_000, help="observations (10,000,000)"
    )
    parser.add_argument("--initiatives", type=int, default=5_000, help="initiatives (5,000)")
    parser.add_argument("--metrics", type=int, default=20_000, help="metrics (20,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (3)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the data")
    parser.add_argument(
        "--last-share",
        type=float,
        default=0.0,
        help="share of metrics aggregated by their last value (default 0)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of both sides"
    )
    parser.add_argument(
        "--chunk", type=int, default=500_000, help="observations per COPY transaction"
    )
    parser.add_argument(
        "--load",
        choices=["rebuild", "indexed"],
        default="rebuild",
        help="rebuild: drop the observation table's secondary indexes and foreign keys for "
        "the load and recreate them from their definitions after it (fast, the default); "
        "indexed: COPY into the fully indexed table (slower)",
    )
    add_quick_argument(parser, QUICK)
    add_database_arguments(parser, "recompute")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK)
    if args.initiatives < 1 or args.metrics < args.initiatives or args.observations < 1:
        parser.error("need at least one initiative, one metric per initiative, one observation")
    if args.repeat < 1 or not 0 <= args.last_share <= 1:
        parser.error("--repeat must be positive and --last-share within 0..1")
    return args


# Data -------------------------------------------------------------------------------------------
def create_portfolio(args: argparse.Namespace, now) -> tuple[np.ndarray, np.ndarray]:
    """Initiatives, feeds and metrics in bulk; returns (metric ids, feed id of each metric)."""
    from decimal import Decimal

    from metrics.models import Aggregation, DataFeed, Direction, FeedKind, Metric
    from portfolio.models import BusinessUnit, Initiative, User

    owner = User.objects.create_user("bench-owner", password=None)
    unit = BusinessUnit.objects.create(name="Benchmarks", slug="benchmarks")
    initiatives = Initiative.objects.bulk_create(
        [
            Initiative(
                title=f"Initiative {n}",
                slug=f"initiative-{n}",
                business_unit=unit,
                business_owner=owner,
            )
            for n in range(args.initiatives)
        ],
        batch_size=2000,
    )
    # One live feed each; one initiative in twenty has gone stale.
    feeds = DataFeed.objects.bulk_create(
        [
            DataFeed(
                initiative=initiative,
                name="Live feed",
                kind=FeedKind.LIVE,
                owner=owner,
                token_hash=hashlib.sha256(f"bench-{n}".encode()).hexdigest(),
                token_hint=f"gf_{n}"[:10],
                last_delivery_at=now - (timedelta(days=3) if n % 20 == 0 else timedelta(0)),
                is_stale=n % 20 == 0,
            )
            for n, initiative in enumerate(initiatives)
        ],
        batch_size=2000,
    )
    last_every = round(1 / args.last_share) if args.last_share else 0
    metrics = []
    for n in range(args.metrics):
        home = n % args.initiatives  # metric n belongs to initiative n % I
        aggregation = Aggregation.SUM if n % 4 == 3 else Aggregation.MEAN
        if last_every and n % last_every == 0:
            aggregation = Aggregation.LAST
        metrics.append(
            Metric(
                initiative=initiatives[home],
                name=f"Metric {n}",
                slug=f"metric-{n}",
                unit="%",
                direction=Direction.HIGHER if n % 2 == 0 else Direction.LOWER,
                ship_threshold=Decimal("100.5"),
                baseline=Decimal("100"),
                aggregation=aggregation,
                comparison_window_days=WINDOWS[n % len(WINDOWS)],
                is_primary=n < args.initiatives,
            )
        )
    metrics = Metric.objects.bulk_create(metrics, batch_size=2000)
    feed_of = {feed.initiative_id: feed.pk for feed in feeds}
    ids = np.array([m.pk for m in metrics], dtype=np.int64)
    metric_feeds = np.array([feed_of[m.initiative_id] for m in metrics], dtype=np.int64)
    return ids, metric_feeds


def binary_rows(metric_ids, feed_ids, cohort: bytes, observed_us, values) -> bytes:
    """Tuples of PostgreSQL's binary COPY format for one cohort (its text has one length)."""
    dtype = np.dtype(
        [
            ("fields", ">i2"),
            ("metric_len", ">i4"), ("metric", ">i8"),
            ("feed_len", ">i4"), ("feed", ">i8"),
            ("cohort_len", ">i4"), ("cohort", f"S{len(cohort)}"),
            ("observed_len", ">i4"), ("observed", ">i8"),
            ("value_len", ">i4"), ("value", ">f8"),
            ("ingested_len", ">i4"), ("ingested", ">i8"),
        ]
    )  # fmt: skip
    rows = np.empty(len(metric_ids), dtype=dtype)
    rows["fields"] = 6
    for name in ("metric", "feed", "observed", "value", "ingested"):
        rows[f"{name}_len"] = 8
    rows["cohort_len"] = len(cohort)
    rows["metric"], rows["feed"], rows["cohort"] = metric_ids, feed_ids, cohort
    rows["observed"] = observed_us - PG_EPOCH_US
    rows["ingested"] = observed_us - PG_EPOCH_US + 60_000_000  # a minute after it happened
    rows["value"] = values
    return rows.tobytes()


def load_observations(args: argparse.Namespace, ids, feeds, now) -> None:
    """COPY the observations in chunks, each in its own transaction.

    Observation i is metric i % M's k-th (k = i // M), observed at a random moment of the k-th
    of `per` equal slots of the last 60 days: distinct for each metric, in time order overall.
    Values: N(100, 15), the pilot 1 higher; rounded to 3 decimals.
    """
    from django.db import connection, transaction

    rng = np.random.default_rng(args.seed)
    count, total = len(ids), args.observations
    per = math.ceil(total / count)
    end_us = int(now.timestamp() * 1_000_000) - 1
    span_us = int(SPAN.total_seconds() * 1_000_000)
    slot_us = span_us / per
    statement = (
        "COPY metrics_observation "
        "(metric_id, feed_id, cohort, observed_at, value, ingested_at) FROM STDIN (FORMAT BINARY)"
    )
    generating = 0.0
    chunk = max(args.chunk - args.chunk % count, count)  # whole rounds of metrics
    for start in range(0, total, chunk):
        began = time.perf_counter()
        i = np.arange(start, min(start + chunk, total), dtype=np.int64)
        which = i % count
        slots = i // count
        moments = (end_us - span_us + (slots + rng.random(len(i))) * slot_us).astype(np.int64)
        moments = np.minimum(moments, end_us)
        cohorts = rng.choice(len(COHORTS), size=len(i), p=COHORT_SHARES)
        values = np.round(rng.normal(100.0, 15.0, len(i)) + (cohorts == 0), 3)
        blocks = []
        for c, cohort in enumerate(COHORTS):
            pick = cohorts == c
            metric = which[pick]
            blocks.append(
                binary_rows(ids[metric], feeds[metric], cohort, moments[pick], values[pick])
            )
        generating += time.perf_counter() - began
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.cursor.copy(statement) as copy,
        ):
            copy.write(COPY_HEADER)
            for block in blocks:
                copy.write(block)
            copy.write(COPY_TRAILER)
        done = min(start + chunk, total)
        if done // chunk % 4 == 0 or done == total:
            log(f"  {done:,}/{total:,} observations")
    log(f"  of which generating the binary COPY data with numpy: {generating:.1f} s")


@contextlib.contextmanager
def secondary_indexes_dropped(table: str) -> Iterator[None]:
    """Drop the table's unique and foreign-key constraints and plain indexes; recreate after.

    Recreated from their own definitions (pg_get_constraintdef, pg_get_indexdef) under the
    same names, so the schema ends as migrate left it; building an index once is far faster
    than maintaining it row by row. The primary key and check constraints stay.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY conname",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname "
            "NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            [table, table],
        )
        indexes = cursor.fetchall()
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    yield
    with phase("recreate indexes and constraints"), connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in indexes:
            # A partitioned table's index reads "ON ONLY" (the parent alone); built again
            # it must reach every partition.
            cursor.execute(definition.replace(" ON ONLY ", " ON "))
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute("RESET maintenance_work_mem")


# Measurements -----------------------------------------------------------------------------------
def raw_query(now_sql: str = "now()") -> str:
    """The raw aggregate, with the widest window written in as a constant: recompute reads
    the metrics' windows first too, and a constant lets the planner bound the index scan."""
    from metrics.models import Metric

    widest = max(Metric.objects.values_list("comparison_window_days", flat=True))
    return RAW_SQL.format(now=now_sql, widest=int(widest))


def rollup_query(now) -> str:
    """The rollup baseline at `now` (a literal), with the partial days' time ranges written
    in as recompute writes them, so the planner can prune and use the time index too."""
    from metrics.models import Metric
    from metrics.rollups import Split

    windows = sorted(set(Metric.objects.values_list("comparison_window_days", flat=True)))
    ranges = set()
    for days in windows:
        split = Split.of(days, now)
        ranges.add((split.start, split.first_day, "<"))
        ranges.add((split.today, now, "<="))
    partial = " OR ".join(
        f"(o.observed_at {'>=' if upper == '<=' else '>'} '{lo.isoformat()}' "
        f"AND o.observed_at {upper} '{hi.isoformat()}')"
        for lo, hi, upper in sorted(ranges)
    )
    return ROLLUP_SQL.format(now=f"'{now.isoformat()}'::timestamptz", partial_days=partial)


def run_raw() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(raw_query())
        return len(cursor.fetchall())


def run_rollup_sql() -> int:
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute(rollup_query(timezone.now()))
        return len(cursor.fetchall())


BREAKDOWN = {
    "aggregates": "aggregate queries (_window_stats)",
    "stale": "stale initiatives query",
    "evaluate": "verdicts and Welch tests (evaluate)",
    "insert": "write snapshots (_insert_snapshots: COPY on PostgreSQL)",
    "update": "lock metrics, UPDATE latest snapshot and verdict",
    "commit": "COMMIT (deferred foreign-key checks)",
}


def instrument() -> StageTimer:
    """Time recompute()'s parts: its helpers, the snapshot insert, the update, the commit.

    The update is `_point_at_newest`: the metric rows locked, then one UPDATE.
    """
    from django.db import DEFAULT_DB_ALIAS, connections

    from metrics import status

    timer = StageTimer()
    timer.wrap(status, "_window_stats", "aggregates")
    timer.wrap(status, "_stale_initiatives", "stale")
    timer.wrap(status, "evaluate", "evaluate")
    timer.wrap(status, "_insert_snapshots", "insert")
    timer.wrap(status, "_point_at_newest", "update")
    timer.wrap(connections[DEFAULT_DB_ALIAS], "commit", "commit")
    return timer


def check_same_aggregates(now) -> None:
    """recompute's aggregates (one metric window at a time or not) equal the raw query's."""
    from django.db import connection

    from metrics import status
    from metrics.models import Metric

    metrics = list(Metric.objects.only("id", "aggregation", "comparison_window_days"))
    ours = status._window_stats(metrics, now, filtered=False)
    with connection.cursor() as cursor:
        cursor.execute(raw_query("%(now)s::timestamptz"), {"now": now})
        raw = {(m, c): (n, mean, total, sd) for m, c, n, mean, total, sd in cursor.fetchall()}
    if set(ours) != set(raw):
        sys.exit(f"bench: recompute and the raw SQL see {len(ours)} and {len(raw)} groups")
    for key, (n, mean, total, sd) in raw.items():
        mine = ours[key]
        close = all(
            a == b or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9))
            for a, b in ((mine.mean, mean), (mine.total, total), (mine.stddev, sd))
        )
        if mine.count != n or not close:
            sys.exit(f"bench: aggregates differ for {key}: {mine} vs {(n, mean, total, sd)}")
    with connection.cursor() as cursor:
        cursor.execute(rollup_query(now))
        rolled = {(m, c): (n, mean, total, sd) for m, c, n, mean, total, sd in cursor.fetchall()}
    for key, (n, mean, total, sd) in rolled.items():
        mine = ours[key]
        close = all(
            a == b or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9))
            for a, b in ((mine.mean, mean), (mine.total, total), (mine.stddev, sd))
        )
        if mine.count != n or not close or len(rolled) != len(ours):
            sys.exit(f"bench: rollup SQL differs for {key}: {mine} vs {(n, mean, total, sd)}")
    log(f"check: recompute's aggregates equal both baselines' ({len(raw):,} groups)")


def explain(now) -> None:
    """EXPLAIN ANALYZE of each aggregate query recompute makes, then of the raw query."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from metrics import status
    from metrics.models import Metric

    metrics = list(Metric.objects.only("id", "aggregation", "comparison_window_days"))
    with CaptureQueriesContext(connection) as captured:
        status._window_stats(metrics, now, filtered=False)
    queries = [q["sql"] for q in captured.captured_queries]
    queries.append(raw_query())
    with connection.cursor() as cursor:
        for n, query in enumerate(queries, start=1):
            label = "raw query" if n == len(queries) else f"recompute's query {n}"
            print(f"\n--- EXPLAIN (ANALYZE, BUFFERS) of {label}:\n{query.strip()}\n")
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}")
            print("\n".join(row[0] for row in cursor.fetchall()))
    print()


def main(argv: list[str] | None = None) -> None:
    run_in_own_database(parse_args(argv), "recompute", benchmark)


def benchmark(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.utils import timezone

    from metrics import partitions, status
    from metrics.models import DailyRollup, MetricSnapshot, Observation

    log(
        f"PostgreSQL {server_version()}; {args.initiatives:,} initiatives, {args.metrics:,} "
        f"metrics, {args.observations:,} observations"
    )
    now = timezone.now()
    with phase("bulk-create initiatives, feeds, metrics"):
        ids, feeds = create_portfolio(args, now)
    table = Observation._meta.db_table
    # The months the data spans have their partitions, as the monthly job leaves them.
    made = partitions.ensure_partitions(now=now - SPAN)
    log(f"observation partitions made: {', '.join(made) or 'none'}")
    dropped = secondary_indexes_dropped(table) if args.load == "rebuild" else nullcontext()
    started = time.perf_counter()
    with (
        phase(f"load observations (--load {args.load})"),
        dropped,
        phase("COPY observations (binary, numpy-generated)"),
    ):
        load_observations(args, ids, feeds, now)
    log(f"  load rate: {rate(args.observations, time.perf_counter() - started)}")
    with phase("VACUUM ANALYZE"), connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    log(f"metrics_observation: {table_size('metrics_observation')}")
    log(
        f"metrics_dailyrollup: {DailyRollup.objects.count():,} rows, "
        f"{table_size('metrics_dailyrollup')}"
    )
    check_same_aggregates(timezone.now())
    if args.explain:
        explain(timezone.now())

    with phase("warm-up: both baselines and recompute() once each"):
        run_raw()
        run_rollup_sql()
        status.recompute()
    timer = instrument()
    raw_times, rollup_times, recompute_times, parts = [], [], [], []
    try:
        for n in range(1, args.repeat + 1):
            started = time.perf_counter()
            groups = run_raw()
            raw_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            run_rollup_sql()
            rollup_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            count = status.recompute()
            recompute_times.append(time.perf_counter() - started)
            parts.append(timer.take())
            log(
                f"  run {n}: raw {raw_times[-1]:.2f} s ({groups:,} groups), "
                f"rollup SQL {rollup_times[-1]:.2f} s, "
                f"recompute {recompute_times[-1]:.2f} s ({count:,} snapshots)"
            )
    finally:
        timer.restore()
    report(args, raw_times, rollup_times, recompute_times, parts)
    log(f"snapshots written: {MetricSnapshot.objects.count():,}")
    log(f"metric row updates written heap-only (no index touched): {hot_updates()}")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        log(f"jit in this connection: {cursor.fetchone()[0]} (DATABASE_JIT)")


def hot_updates() -> str:
    """How many of metrics_metric's row updates so far were heap-only (HOT)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables "
            "WHERE relname = 'metrics_metric'"
        )
        hot, updated = cursor.fetchone()
    return f"{hot:,} of {updated:,}"


def report(args, raw_times, rollup_times, recompute_times, parts) -> None:
    raw, ours = median(raw_times), median(recompute_times)
    rolled = median(rollup_times)
    ratio = ours / raw
    print()
    print(
        f"Recompute of {args.metrics:,} metrics over {args.observations:,} observations "
        f"(median of {args.repeat}; runs: raw {', '.join(f'{t:.2f}' for t in raw_times)}; "
        f"recompute {', '.join(f'{t:.2f}' for t in recompute_times)})"
    )
    print(f"  raw aggregate SQL (fetch all rows):  {raw:7.2f} s")
    print(f"  rollup SQL (whole days + raw partial days): {rolled:7.2f} s")
    print(f"  metrics.status.recompute():          {ours:7.2f} s")
    spent = 0.0
    for name, label in BREAKDOWN.items():
        part = median([p.get(name, 0.0) for p in parts])
        spent += part
        print(f"      {label:<42} {part:6.2f} s")
    print(f"      {'load metrics, the rest':<42} {ours - spent:6.2f} s")
    verdict = "within" if ratio <= GOAL else "ABOVE"
    print(f"  ratio recompute / raw:               {ratio:7.2f}x  ({verdict} {GOAL}x)")
    print(f"  ratio recompute / rollup SQL:        {ours / rolled:7.2f}x  (no goal: recompute also")
    print("      judges and writes every snapshot, which the baselines do not)")
    print(ratio_line("recompute_full", ratio, GOAL))


if __name__ == "__main__":
    main()
