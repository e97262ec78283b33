"""Dashboard benchmark: the portfolio dashboard, the initiative list and its export on a large
portfolio, against an empty authenticated page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gantry_bench \\
        .venv/bin/python -m bench.dashboard [--observations 10000000] [--repeat 30]

In a database of its own (gantry_bench_dashboard by default; see bench.common) it builds

- 468 people in the four roles, 12 business units;
- 5,000 initiatives in every stage (and stopped from every stage, with every stop reason;
  some failed a review or rolled back), with sponsors, business, operational and delivery
  owners (some missing), and each one's gate decisions as imported history: GateDecision
  rows in bulk, then the stage and its entry time set from the last decision in one UPDATE,
  as gates.services.import_history does for one initiative;
- 20,000 metrics (4 per initiative, one primary; thresholds set so that a share of them is
  below), live feeds (some stale), one-off extracts, and initiatives with no feed at all;
- 10,000,000 observations COPYed as bench.recompute loads them (its numpy binary COPY and
  index rebuild), for the metrics of initiatives that have a feed;
- --history-days of daily snapshots per metric (COPY), then one `metrics.status.recompute()`
  (timed), which writes a snapshot per metric and sets `latest_snapshot`;
- then `pages.purgatory.sync_flags()` once (timed).

It then requests, in turn and --repeat times each after --warmup rounds, with Django's test
Client logged in as an executive (production settings, DEBUG off):

- /bench/empty/ — the baseline: `base.html` with no content through the same middleware,
  context processors and login (see bench/dashboard_urls.py);
- / — the portfolio dashboard, and /?unit=... — filtered to one business unit;
- /initiatives/?stage=thin_slice&sort=-days — the filtered list;
- /initiatives/export.csv?flag=any — the export of every flagged initiative (streamed and
  read to the end; --no-export leaves it out).

It prints the median and p95 of each, their ratios to the baseline (the goal: dashboard p95
within 5x), the queries each page makes with the slowest of them, and with --explain the
EXPLAIN (ANALYZE, BUFFERS) of the slowest dashboard and list queries.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from bench.common import (
    BenchDatabase,
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
from bench.recompute import load_observations, secondary_indexes_dropped

UNITS = [
    "Claims operations", "Customer service", "Underwriting", "Finance", "Procurement",
    "Human resources", "Legal", "Marketing", "Supply chain", "IT operations", "Risk",
    "Retail banking",
]  # fmt: skip
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Katherine",
         "Linus", "Margaret", "Niklaus", "Radia", "Tim", "Shafi", "Whitfield"]  # fmt: skip
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus",
        "Johnson", "Torvalds", "Hamilton", "Wirth", "Perlman", "Berners-Lee", "Goldwasser",
        "Diffie"]  # fmt: skip
WORDS = ["claims", "triage", "invoice", "matching", "churn", "forecast", "fraud", "routing",
         "summaries", "assistant", "search", "pricing", "contract", "review", "demand",
         "scheduling", "translation", "extraction", "anomaly", "detection"]  # fmt: skip
PEOPLE = {"executive": 20, "programme_manager": 8, "owner": 400, "viewer": 40}
# Share of initiatives per current stage, and the stage a stopped one stopped in.
STAGES = {
    "frame": 0.18,
    "thin_slice": 0.30,
    "readiness_review": 0.08,
    "narrow_launch": 0.14,
    "wide_launch": 0.12,
    "stopped": 0.18,
}
STOPPED_IN = {"frame": 0.30, "thin_slice": 0.45, "readiness_review": 0.10, "narrow_launch": 0.15}
# Days in the current stage are drawn up to 1.5x these (so a share is stuck).
TYPICAL_DAYS = {
    "frame": 30,
    "thin_slice": 90,
    "readiness_review": 30,
    "narrow_launch": 60,
    "wide_launch": 200,
    "stopped": 300,
}
ROUTES = {
    "frame": [],
    "thin_slice": ["approve_frame"],
    "readiness_review": ["approve_frame", "submit_for_review"],
    "narrow_launch": ["approve_frame", "submit_for_review", "pass_review"],
    "wide_launch": ["approve_frame", "submit_for_review", "pass_review", "widen"],
}
TARGETS = {
    "approve_frame": "thin_slice",
    "submit_for_review": "readiness_review",
    "pass_review": "narrow_launch",
    "fail_review": "thin_slice",
    "widen": "wide_launch",
    "roll_back": "thin_slice",
    "stop": "stopped",
}
METRICS_PER_INITIATIVE = 4
ROOT = Path(__file__).resolve().parent.parent  # where `celery -A gantry` finds the project
BELOW_SHARE = 0.3  # of metrics whose threshold the pilot misses


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dashboard", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--initiatives", type=int, default=5_000, help="initiatives, 4 metrics each (5,000)"
    )
    parser.add_argument(
        "--observations", type=int, default=10_000_000, help="observations (10,000,000)"
    )
    parser.add_argument(
        "--history-days", type=int, default=30, help="daily snapshots per metric before (30)"
    )
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page (30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--chunk", type=int, default=500_000, help="observations per COPY transaction"
    )
    parser.add_argument(
        "--load",
        choices=["rebuild", "indexed"],
        default="rebuild",
        help="as in bench.recompute: rebuild the observation indexes after the load (default)",
    )
    parser.add_argument("--no-export", action="store_true", help="do not measure the export")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE the slowest page queries"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one request of each page (untimed)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure a benchmark database kept by an earlier --keep run, without building "
        "(implies --keep)",
    )
    live = parser.add_argument_group(
        "live load",
        "--live measures the pages a second time while a writer process posts observation "
        "batches through the ingestion API and a Celery worker and beat (started here, on "
        "CELERY_BROKER_URL) recompute them",
    )
    live.add_argument("--live", action="store_true", help="add the live-load measurement")
    live.add_argument(
        "--live-rate", type=float, default=2.0, help="batches the writer posts a second (2)"
    )
    live.add_argument("--live-batch", type=int, default=100, help="observations per batch (100)")
    live.add_argument(
        "--live-repeat", type=int, default=100, help="timed requests per page under load (100)"
    )
    live.add_argument(
        "--live-settle",
        type=float,
        default=None,
        help="seconds of load before measuring (default: twice the recompute debounce)",
    )
    live.add_argument(
        "--worker-concurrency", type=int, default=2, help="Celery worker processes (2)"
    )
    add_quick_argument(parser, QUICK)
    add_database_arguments(parser, "dashboard")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK)
    args.keep = args.keep or args.reuse
    if args.initiatives < 10 or args.observations < 1 or args.history_days < 0:
        parser.error("need at least 10 initiatives and one observation")
    if args.repeat < 1 or args.warmup < 0 or args.live_repeat < 1:
        parser.error("--repeat and --live-repeat must be positive, --warmup not negative")
    if args.live_rate <= 0 or not 1 <= args.live_batch <= 10_000:
        parser.error("--live-rate must be positive and --live-batch within 1..10,000")
    return args


# The portfolio ----------------------------------------------------------------------------------
def create_people(rng) -> dict[str, list]:
    from django.contrib.auth.models import Group

    from portfolio.models import User

    groups = dict(Group.objects.filter(name__in=PEOPLE).values_list("name", "pk"))
    made = {}
    for role, count in PEOPLE.items():
        made[role] = User.objects.bulk_create(
            [
                User(
                    username=f"{role}-{n}",
                    first_name=FIRST[rng.integers(len(FIRST))],
                    last_name=LAST[rng.integers(len(LAST))],
                    email=f"{role}-{n}@example.com",
                    password="!",  # noqa: S106 unusable: the benchmark uses force_login
                )
                for n in range(count)
            ]
        )
    through = User.groups.through
    through.objects.bulk_create(
        [through(user_id=u.pk, group_id=groups[role]) for role, us in made.items() for u in us]
    )
    return made


def plan_history(rng, now) -> tuple[str, list[tuple[str, object]], object]:
    """(final stage, [(transition, decided_at)] oldest first, creation time)."""
    stage = rng.choice(list(STAGES), p=list(STAGES.values()))
    if stage == "stopped":
        stopped_in = rng.choice(list(STOPPED_IN), p=list(STOPPED_IN.values()))
        route = [*ROUTES[stopped_in], "stop"]
    else:
        route = list(ROUTES[stage])
        if stage == "thin_slice":
            detour = rng.random()
            if detour < 0.10:
                route = ["approve_frame", "submit_for_review", "fail_review"]
            elif detour < 0.15:
                route = ["approve_frame", "submit_for_review", "pass_review", "roll_back"]
    days = int(rng.integers(0, int(TYPICAL_DAYS[stage] * 1.5) + 1))
    moment = now - timedelta(days=days, hours=float(rng.uniform(1, 23)))
    dated = []
    for transition in reversed(route):
        dated.append((transition, moment))
        moment -= timedelta(days=int(rng.integers(3, 60)), hours=float(rng.uniform(0, 23)))
    dated.reverse()
    return stage, dated, moment


def create_portfolio(args, rng, now, people) -> dict:
    """Initiatives with their decisions, metrics and feeds; returns what the load needs."""
    from decimal import Decimal

    from django.db import connection

    from gates.models import GateDecision
    from gates.stages import StopReason
    from metrics.models import DataFeed, Direction, FeedKind, Metric
    from portfolio.models import BusinessUnit, Initiative

    units = BusinessUnit.objects.bulk_create(
        [BusinessUnit(name=name, slug=name.lower().replace(" ", "-")) for name in UNITS]
    )
    owners, managers = people["owner"], people["programme_manager"]

    def anyone(group, none_share: float = 0.0):
        return None if rng.random() < none_share else group[rng.integers(len(group))]

    plans = [plan_history(rng, now) for _ in range(args.initiatives)]
    initiatives = Initiative.objects.bulk_create(
        [
            Initiative(
                title=" ".join(rng.choice(WORDS, 2)).capitalize() + f" {n}",
                slug=f"initiative-{n}",
                summary=f"{' '.join(rng.choice(WORDS, 6)).capitalize()}.",
                business_unit=units[rng.integers(len(units))],
                sponsor=anyone(people["executive"], 0.02),
                business_owner=anyone(owners, 0.06),
                operational_owner=anyone(owners, 0.4 if stage == "frame" else 0.1),
                delivery_lead=anyone(owners, 0.03),
                decision_changed="Which cases a person looks at first.",
                stage_entered_at=created,
            )
            for n, (stage, _, created) in enumerate(plans)
        ],
        batch_size=2000,
    )
    decisions = []
    for initiative, (_, dated, _) in zip(initiatives, plans, strict=True):
        stage = "frame"
        for transition, decided_at in dated:
            decisions.append(
                GateDecision(
                    initiative=initiative,
                    transition=transition,
                    from_stage=stage,
                    to_stage=TARGETS[transition],
                    decided_by=anyone(managers),
                    decided_at=decided_at,
                    rationale="Decided before Gantry held this initiative.",
                    stop_reason=(
                        StopReason.values[rng.integers(len(StopReason.values))]
                        if transition == "stop"
                        else ""
                    ),
                    evidence={"imported": True},
                )
            )
            stage = TARGETS[transition]
    GateDecision.objects.bulk_create(decisions, batch_size=5000)
    # The stage and its entry time from each initiative's last decision: import_history's
    # closing UPDATE, for every initiative at once.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Initiative._meta.db_table} AS i
            SET stage = d.to_stage, stage_entered_at = d.decided_at, stop_reason = d.stop_reason
            FROM (
                SELECT DISTINCT ON (initiative_id) initiative_id, to_stage, decided_at, stop_reason
                FROM {GateDecision._meta.db_table}
                ORDER BY initiative_id, decided_at DESC, id DESC
            ) AS d
            WHERE d.initiative_id = i.id
            """
        )
    stages = dict(zip((i.pk for i in initiatives), (p[0] for p in plans), strict=True))

    metrics, verdicts = [], []
    for n, initiative in enumerate(initiatives):
        framing = stages[initiative.pk] == "frame"
        for k in range(METRICS_PER_INITIATIVE):
            higher = (n + k) % 2 == 0
            below = rng.random() < BELOW_SHARE
            # Observations average 100 (the pilot 101): 95 is met from above, 105 from below.
            threshold = 105 if below == higher else 95
            if k == 0 and rng.random() < (0.3 if framing else 0.04):
                threshold = None  # not framed yet, or never given a number
            metrics.append(
                Metric(
                    initiative=initiative,
                    name=f"{' '.join(rng.choice(WORDS, 2)).capitalize()} rate",
                    slug=f"metric-{k}",
                    unit="%",
                    direction=Direction.HIGHER if higher else Direction.LOWER,
                    ship_threshold=None if threshold is None else Decimal(threshold),
                    baseline=Decimal(100),
                    comparison_window_days=(14, 7, 14, 28)[k],
                    is_primary=k == 0,
                )
            )
            verdicts.append("below" if below and threshold is not None else "meeting")
    metrics = Metric.objects.bulk_create(metrics, batch_size=5000)

    feeds, token = [], 0
    for initiative in initiatives:
        framing = stages[initiative.pk] == "frame"
        draw = rng.random()
        kinds = []
        if draw < (0.4 if framing else 0.84):
            kinds.append(FeedKind.LIVE)
            if rng.random() < 0.1:
                kinds.append(FeedKind.ONE_OFF_EXTRACT)
        elif draw < (0.6 if framing else 0.92):
            kinds.append(FeedKind.ONE_OFF_EXTRACT)
        stale = rng.random() < 0.1
        for kind in kinds:
            token += 1
            live = kind == FeedKind.LIVE
            feeds.append(
                DataFeed(
                    initiative=initiative,
                    name="Live feed" if live else "Historical extract",
                    kind=kind,
                    owner=anyone(owners),
                    token_hash=hashlib.sha256(f"bench-dashboard-{token}".encode()).hexdigest(),
                    token_hint=f"gf_{token}"[:10],
                    token_rotated_at=now,
                    last_delivery_at=now - timedelta(days=3 if live and stale else 0, hours=1),
                    is_stale=live and stale,
                )
            )
    feeds = DataFeed.objects.bulk_create(feeds, batch_size=5000)
    feed_of = {}
    for feed in feeds:  # the live feed when there is one
        if feed.initiative_id not in feed_of or feed.kind == FeedKind.LIVE:
            feed_of[feed.initiative_id] = feed.pk
    # Metrics of initiatives with a feed get observations, except 3% (insufficient data).
    observed = [m for m in metrics if m.initiative_id in feed_of and rng.random() >= 0.03]
    return {
        "metric_ids": np.array([m.pk for m in observed], dtype=np.int64),
        "feed_ids": np.array([feed_of[m.initiative_id] for m in observed], dtype=np.int64),
        "metrics": metrics,
        "verdicts": verdicts,
        "observed": {m.pk for m in observed},
        "unit": units[0].slug,
    }


def load_history(args, portfolio, now) -> int:
    """Daily snapshots for --history-days before now, as the hourly recompute would have left
    (thinned to one a day): the verdict each metric is built to get."""
    from django.db import connection, transaction

    from metrics.models import MetricSnapshot

    columns = (
        "metric_id", "computed_at", "window_start", "window_end", "pilot_value", "pilot_count",
        "baseline_value", "baseline_count", "verdict", "summary", "ship_threshold",
        "aggregation", "direction",
    )  # fmt: skip
    statement = f"COPY {MetricSnapshot._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    rows = 0
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for metric, verdict in zip(portfolio["metrics"], portfolio["verdicts"], strict=True):
            if metric.pk not in portfolio["observed"]:
                verdict = "insufficient_data"
            window = timedelta(days=metric.comparison_window_days)
            for day in range(args.history_days, 0, -1):
                computed = now - timedelta(days=day)
                copy.write_row(
                    (
                        metric.pk, computed, computed - window, computed,
                        99.0 if verdict == "below" else 101.0, 40, 100.0, 40, verdict,
                        f"{verdict} (benchmark history)",
                        None if metric.ship_threshold is None else float(metric.ship_threshold),
                        metric.aggregation, metric.direction,
                    )
                )  # fmt: skip
                rows += 1
    return rows


# Measurements -----------------------------------------------------------------------------------
def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def fetch(client, url: str) -> int:
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"bench: {url} answered {response.status_code}")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return len(body)


def profile(client, url: str, *, top: int = 5) -> tuple[int, float, list[dict]]:
    """(queries, their total seconds, the slowest ones) of one request, each query timed
    with perf_counter around the driver call."""
    from django.db import connection

    queries = []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append({"sql": sql, "params": params, "seconds": time.perf_counter() - started})

    with connection.execute_wrapper(timed):
        fetch(client, url)
    total = sum(q["seconds"] for q in queries)
    slowest = sorted(queries, key=lambda q: -q["seconds"])[:top]
    return len(queries), total, slowest


def python_profile(client, url: str, *, lines: int = 25) -> str:
    """cProfile of one request, by cumulative time."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    fetch(client, url)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


def explain(sql: str, params) -> str:
    from django.db import connection

    if sql.lstrip().upper().startswith("DECLARE"):  # a server-side cursor: explain its query
        sql = sql.split(" FOR ", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_in_own_database(args, "dashboard", benchmark, prepare=require_kept if args.reuse else None)


def require_kept(db: BenchDatabase) -> None:
    """Exit unless the database exists, is marked as a benchmark's and holds a portfolio."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from bench.common import MARKER

    with psycopg.connect(make_conninfo(db.server_url, dbname="postgres")) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [db.name],
        ).fetchone()
    if row is None or row[0] != MARKER:
        raise SystemExit(f"bench: --reuse needs a kept benchmark database {db.name!r}")
    log(f"reusing the kept database {db.name!r}")


def build(args) -> dict:
    from django.db import connection
    from django.utils import timezone

    from metrics import status
    from metrics.models import Observation
    from pages import purgatory

    rng = np.random.default_rng(args.seed)
    now = timezone.now()
    timings: dict[str, float] = {}
    with phase("people, units, initiatives, decisions, metrics, feeds (bulk)", timings):
        people = create_people(rng)
        portfolio = create_portfolio(args, rng, now, people)
    table = Observation._meta.db_table
    dropped = secondary_indexes_dropped(table) if args.load == "rebuild" else nullcontext()
    started = time.perf_counter()
    with phase(f"load observations (--load {args.load})", timings), dropped:
        load_observations(args, portfolio["metric_ids"], portfolio["feed_ids"], now)
    log(f"  load rate: {rate(args.observations, time.perf_counter() - started)}")
    with phase(f"snapshot history ({args.history_days} days, COPY)", timings):
        history = load_history(args, portfolio, now)
    log(f"  {history:,} snapshots")
    with phase("VACUUM ANALYZE", timings), connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    with phase("metrics.status.recompute() (all metrics, once)", timings):
        snapshots = status.recompute()
    log(f"  {snapshots:,} snapshots written, latest_snapshot set")
    status.mark_stale_feeds()
    with phase("one readiness review opened (readiness.services.open_review)", timings):
        open_one_review()
    with phase("pages.purgatory.sync_flags() (once)", timings):
        counts = purgatory.sync_flags()
    log(f"  flags: {counts}")
    with phase("ANALYZE", timings), connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"timings": timings, "unit": portfolio["unit"], "people": people}


def open_one_review():
    """The review of the first initiative in readiness review, opened as its submission's
    effect opens one (the bulk history has none): the review page to measure."""
    from gates.models import GateDecision
    from gates.stages import Stage
    from gates.stages import Transition as T
    from readiness import services as review_services
    from readiness.models import ReadinessReview

    review = ReadinessReview.objects.order_by("pk").first()
    if review is not None:
        return review
    decision = (
        GateDecision.objects.filter(
            initiative__stage=Stage.READINESS_REVIEW, transition=T.SUBMIT_FOR_REVIEW
        )
        .select_related("initiative", "decided_by")
        .order_by("initiative_id", "-decided_at")
        .first()
    )
    return review_services.open_review(decision.initiative, decision)


def detail_pages() -> list[tuple[str, str]]:
    """One initiative page (a narrow launch with a live feed: metrics, trend charts, feeds)
    and the readiness review page."""
    from gates.stages import Stage
    from metrics.models import FeedKind
    from portfolio.models import Initiative

    initiative = (
        Initiative.objects.filter(stage=Stage.NARROW_LAUNCH, feeds__kind=FeedKind.LIVE)
        .order_by("pk")
        .first()
    )
    review = open_one_review()
    return [
        ("initiative page", initiative.get_absolute_url()),
        ("readiness review page", review.get_absolute_url()),
    ]


def describe() -> None:
    from django.db.models import Count

    from gates.models import GateDecision
    from metrics.models import DataFeed, Metric, MetricSnapshot
    from portfolio.models import Initiative, PurgatoryFlag

    stages = dict(Initiative.objects.values_list("stage").annotate(n=Count("id")).order_by())
    flags = Counter(
        PurgatoryFlag.objects.filter(cleared_at__isnull=True).values_list("kind", flat=True)
    )
    verdicts = Counter(
        Metric.objects.filter(is_primary=True).values_list("latest_snapshot__verdict", flat=True)
    )
    flagged = (
        PurgatoryFlag.objects.filter(cleared_at__isnull=True)
        .values("initiative")
        .distinct()
        .count()
    )
    log(f"initiatives per stage: {stages}")
    log(
        f"decisions {GateDecision.objects.count():,}; metrics {Metric.objects.count():,}; "
        f"feeds {DataFeed.objects.count():,}; snapshots {MetricSnapshot.objects.count():,}"
    )
    log(f"primary verdicts: {dict(verdicts)}")
    log(f"active flags: {dict(flags)} on {flagged:,} initiatives")
    log(f"metrics_observation: {table_size('metrics_observation')}")
    log(f"metrics_metricsnapshot: {table_size('metrics_metricsnapshot')}")


def benchmark(args: argparse.Namespace) -> None:
    from django.test import Client
    from django.test.utils import override_settings

    log(
        f"PostgreSQL {server_version()}; {args.initiatives:,} initiatives, "
        f"{args.initiatives * METRICS_PER_INITIATIVE:,} metrics, "
        f"{args.observations:,} observations"
    )
    if args.reuse:
        from portfolio.models import BusinessUnit, User

        built = {
            "timings": {},
            "unit": BusinessUnit.objects.order_by("pk").values_list("slug", flat=True)[0],
            "people": {"executive": [User.objects.get(username="executive-0")]},
        }
    else:
        built = build(args)
    describe()

    pages = [
        ("empty page (baseline)", "/bench/empty/"),
        ("dashboard", "/"),
        ("dashboard, one unit", f"/?unit={built['unit']}"),
        (LIST_LABEL, LIST),
        ("list, filtered by owner", "/initiatives/?owner=owner-1&sort=-days"),
    ]
    if not args.no_export:
        pages.append(("export, flagged", "/initiatives/export.csv?flag=any"))
    # Measured in rounds of its own, since it empties the cache the other pages read: the
    # dashboard with its figures computed, as after any change to what it shows.
    pages.append(("dashboard, cache cleared", COLD))

    with override_settings(ROOT_URLCONF="bench.dashboard_urls"):
        client = Client()
        client.force_login(built["people"]["executive"][0])
        sizes = {url: fetch(client, url) for _, url in pages}
        profiles = {}
        for _, url in pages:
            _cool(url)
            profiles[url] = profile(client, url)
        with phase(f"warm-up: {args.warmup} round(s)"):
            for _ in range(args.warmup):
                for _, url in pages:
                    fetch(client, url)
        times: dict[str, list[float]] = {url: [] for _, url in pages}
        with phase(f"measure: {args.repeat} round(s), the pages in turn"):
            for cold in (False, True):
                for _ in range(args.repeat):
                    for _, url in pages:
                        if (url == COLD) != cold:
                            continue
                        _cool(url)
                        started = time.perf_counter()
                        fetch(client, url)
                        times[url].append(time.perf_counter() - started)
        ratios = report(args, built["timings"], pages, times, sizes, profiles)
        if args.profile:
            for label, url in pages:
                print(f"cProfile of {label} ({url}):\n{python_profile(client, url)}")
        if args.live:
            ratios += measure_live(args, client, built)
    for line in ratios:
        print(line)


COLD = "/?cache=cleared"  # an unknown parameter: the dashboard ignores it
LIST_LABEL, LIST = "list, thin slice by days", "/initiatives/?stage=thin_slice&sort=-days"
GOAL = 5.0  # p95 within 5x the empty page's
QUICK = {
    "initiatives": 500,
    "observations": 500_000,
    "history_days": 10,
    "repeat": 15,
    "live_repeat": 40,
}


def _cool(url: str) -> None:
    """Empty the cache before a request of the cold dashboard (not part of its time)."""
    if url == COLD:
        from django.core.cache import cache

        cache.clear()


def report(args, timings, pages, times, sizes, profiles) -> list[str]:
    """Print the quiet measurement; returns its `ratio:` lines, printed last."""
    base_url = pages[0][1]
    base_median, base_p95 = median(times[base_url]), percentile(times[base_url], 0.95)
    print()
    if timings:
        print("Set-up (once): " + "; ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    print()
    print(
        f"Server time per request, {args.repeat} requests each after {args.warmup} warm-up "
        f"round(s); test Client, logged in as an executive, DEBUG off"
    )
    header = (
        f"  {'page':<28} {'url':<44} {'queries':>7} {'SQL ms':>7} {'median ms':>9} "
        f"{'p95 ms':>8} {'x median':>8} {'x p95':>7} {'bytes':>9}"
    )
    print(header)
    for label, url in pages:
        queries, sql_seconds, _ = profiles[url]
        mid, p95 = median(times[url]), percentile(times[url], 0.95)
        print(
            f"  {label:<28} {url:<44} {queries:>7} {sql_seconds * 1000:>7.1f} "
            f"{mid * 1000:>9.1f} {p95 * 1000:>8.1f} {mid / base_median:>7.1f}x "
            f"{p95 / base_p95:>6.1f}x {sizes[url]:>9,}"
        )
    ratios = []
    for name, label, url in (
        ("dashboard_p95_cached", "dashboard", "/"),
        ("dashboard_p95_computed", "dashboard, cache cleared", COLD),
        ("list_p95", LIST_LABEL, LIST),
    ):
        ratio = percentile(times[url], 0.95) / base_p95
        verdict = "within" if ratio <= GOAL else "ABOVE"
        print(
            f"  {label} p95 / baseline p95: {ratio:.1f}x ({verdict} the {GOAL:g}x goal); "
            f"medians: {median(times[url]) / base_median:.1f}x"
        )
        ratios.append(ratio_line(name, ratio, GOAL))
    print("  (SQL ms: the summed query time of one profiled request of the page)")
    print()
    for label, url in pages[1:]:
        _, _, slowest = profiles[url]
        print(f"Slowest queries of {label} ({url}):")
        for q in slowest:
            sql = " ".join(q["sql"].split())
            print(f"  {q['seconds'] * 1000:7.2f} ms  {sql[:150]}")
        if args.explain and not url.startswith("/initiatives/export"):
            for q in slowest[:3]:
                print(f"\n--- EXPLAIN (ANALYZE, BUFFERS):\n{q['sql']}\n{q['params']}\n")
                print(explain(q["sql"], q["params"]))
        print()
    return ratios


# Live load --------------------------------------------------------------------------------------
LIVE_COHORTS = ("pilot", "baseline")


def live_pages(built) -> list[tuple[str, str]]:
    """What a live measurement requests in turn: the baseline first, then the dashboard, the
    list (as it opens, by owner, by each sortable column) and one of each detail page."""
    from pages.listing import SORTS

    return [
        ("empty page (baseline)", "/bench/empty/"),
        ("dashboard", "/"),
        ("dashboard, one unit", f"/?unit={built['unit']}"),
        ("list", "/initiatives/"),
        ("list, by owner", "/initiatives/?owner=owner-1"),
        *(
            (f"list, sorted by {key}", f"/initiatives/?sort={key}")
            for key in SORTS
            if key != "title"
        ),
        *detail_pages(),
    ]


def writer_feeds() -> list[tuple[int, str, list[str]]]:
    """(feed id, bearer token, metric slugs) of every active live feed of an initiative that
    is not stopped. The build stored each token's hash, sha256("bench-dashboard-<n>"), with
    the hint "gf_<n>", so the tokens are known without rotating them."""
    from collections import defaultdict

    from gates.stages import Stage
    from metrics.models import DataFeed, FeedKind, FeedStatus, Metric

    feeds = list(
        DataFeed.objects.filter(kind=FeedKind.LIVE, status=FeedStatus.ACTIVE)
        .exclude(initiative__stage=Stage.STOPPED)
        .order_by("pk")
        .values_list("pk", "initiative_id", "token_hint")
    )
    slugs = defaultdict(list)
    for initiative_id, slug in Metric.objects.filter(
        initiative_id__in={initiative for _, initiative, _ in feeds}
    ).values_list("initiative_id", "slug"):
        slugs[initiative_id].append(slug)
    return [
        (pk, f"bench-dashboard-{hint[3:]}", sorted(slugs[initiative]))
        for pk, initiative, hint in feeds
        if slugs[initiative]
    ]


def write_load(environ: dict, feeds: list, rate: float, batch: int, seed: int, stop, results):
    """The writer process: every 1/rate seconds, POST a batch of fresh observations (each at
    its own millisecond of the last minute, pilot and baseline in turn) to the ingestion API
    of a random live feed, with its bearer token, until `stop` is set. The request takes the
    production path: token check, validation, insert, recompute mark and, on commit, the
    debounced task to the broker. Puts its counts and latencies on `results`."""
    import json

    os.environ.update(environ)
    import django

    django.setup()
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from jobs import publish

    rng = np.random.default_rng(seed)
    client = Client()
    latencies: list[float] = []
    statuses: Counter = Counter()
    created = 0
    interval = 1 / rate
    started = due = time.monotonic()
    while not stop.is_set():
        pk, token, slugs = feeds[rng.integers(len(feeds))]
        now = timezone.now()
        offsets = rng.choice(60_000, size=batch, replace=False)
        values = rng.normal(100.0, 15.0, batch)
        items = [
            {
                "metric": slugs[i % len(slugs)],
                "cohort": LIVE_COHORTS[(i // len(slugs)) % 2],
                "observed_at": (now - timedelta(milliseconds=int(offsets[i]))).isoformat(),
                "value": round(float(values[i]) + ((i // len(slugs)) % 2 == 0), 3),
            }
            for i in range(batch)
        ]
        before = time.perf_counter()
        response = client.post(
            reverse("api-observations", args=[pk]),
            data=json.dumps(items),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        latencies.append(time.perf_counter() - before)
        statuses[response.status_code] += 1
        if response.status_code == 201:
            created += json.loads(response.content)["created"]
        due += interval
        if (wait := due - time.monotonic()) > 0:
            stop.wait(wait)
        else:
            due = time.monotonic()  # behind: keep the rate from here, no burst to catch up
    publish.flush()
    results.put(
        {
            "seconds": time.monotonic() - started,
            "statuses": dict(statuses),
            "created": created,
            "latencies": latencies,
        }
    )


class LiveLoad:
    """A Celery worker and beat on CELERY_BROKER_URL and the writer process, for the length
    of a `with` block. Each is a process this script starts and ends by its id."""

    def __init__(self, args, feeds) -> None:
        import tempfile

        self.args, self.feeds = args, feeds
        self.dir = tempfile.mkdtemp(prefix="gantry-bench-live-")
        self.hostname = f"bench-dashboard-{os.getpid()}@{socket.gethostname()}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.writer = None

    def _celery(self, name: str, *argv: str) -> None:
        out = open(os.path.join(self.dir, f"{name}.log"), "w")  # noqa: SIM115 - kept open
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter
            [sys.executable, "-m", "celery", "-A", "gantry", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=os.environ.copy(),
            start_new_session=True,  # its own process group: its pool ends with it
        )

    def __enter__(self) -> LiveLoad:
        import multiprocessing

        from gantry.celery import app

        jobs_just_ran()
        self._celery(
            "worker", "worker", "--loglevel", "WARNING", "--hostname", self.hostname,
            "--concurrency", str(self.args.worker_concurrency), "--without-mingle",
            "--without-gossip",
        )  # fmt: skip
        self._celery(
            "beat", "beat", "--loglevel", "WARNING",
            "--schedule", os.path.join(self.dir, "beat-schedule"),
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while not app.control.ping(destination=[self.hostname], timeout=1.0):
            for name, process in self.processes.items():
                if process.poll() is not None:
                    self.tail(name)
                    raise SystemExit(f"bench: the Celery {name} ended at start")
            if time.monotonic() > deadline:
                raise SystemExit("bench: the Celery worker did not answer a ping in 90 s")
        context = multiprocessing.get_context("spawn")
        self.stop, self.results = context.Event(), context.Queue()
        environ = {k: v for k, v in os.environ.items() if k.isupper()}
        self.writer = context.Process(
            target=write_load,
            args=(environ, self.feeds, self.args.live_rate, self.args.live_batch,
                  self.args.seed, self.stop, self.results),
            name="bench-writer",
        )  # fmt: skip
        self.writer.start()
        return self

    def finish(self) -> dict:
        """Stop the writer; its figures."""
        self.stop.set()
        figures = self.results.get(timeout=60)
        self.writer.join(timeout=30)
        return figures

    def __exit__(self, *exc) -> None:
        if self.writer is not None and self.writer.is_alive():
            self.stop.set()
            self.writer.join(timeout=30)
            if self.writer.is_alive():
                self.writer.kill()
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()  # a warm shutdown: running tasks finish
        for name, process in self.processes.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"the Celery {name} did not stop in 30 s; killing its process group")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def tail(self, name: str, lines: int = 30) -> None:
        with open(os.path.join(self.dir, f"{name}.log")) as out:
            print("".join(out.readlines()[-lines:]))


def jobs_just_ran() -> None:
    """The periodic jobs as if they had just run (the build ran recompute, the stale-feed
    check and the flags): each is next due one interval from now, as in a steady state,
    rather than all at the first tick. The sweep (every tick) is due at once."""
    from django.utils import timezone

    from jobs import registry
    from jobs.models import Job

    now = timezone.now()
    for name, job in registry.registered().items():
        Job.objects.update_or_create(
            name=name, defaults={"due_at": now + timedelta(seconds=job.every), "claimed_at": None}
        )


def section_counter() -> tuple[Counter, callable]:
    """Count the dashboard's computations (each section's, or the whole figures') while the
    pages are measured; returns the counter and a function that undoes the wrapping."""
    from pages import dashboard

    counts: Counter = Counter()
    undo = []
    targets = [
        (section, "compute", name) for name, section in getattr(dashboard, "SECTIONS", {}).items()
    ]
    if not targets:
        targets = [(dashboard, "figures", "figures")]
    for owner, attribute, label in targets:
        original = getattr(owner, attribute)

        def counted(*args, _original=original, _label=label, **kwargs):
            counts[_label] += 1
            return _original(*args, **kwargs)

        setattr(owner, attribute, counted)
        undo.append((owner, attribute, original))

    def restore() -> None:
        for owner, attribute, original in undo:
            setattr(owner, attribute, original)

    return counts, restore


def measure_live(args, client, built) -> list[str]:
    """The pages again, in turn, while data flows; returns the live `ratio:` lines."""
    from django.conf import settings
    from django.core.cache import cache
    from django.db.models import Max

    from metrics.models import MetricSnapshot, RecomputeMark

    broker = getattr(settings, "CELERY_BROKER_URL", "")
    if not broker.startswith(("redis://", "rediss://")):
        raise SystemExit(
            "bench: --live needs CELERY_BROKER_URL=redis://... (the worker's broker); "
            "set CACHE_URL=redis://... too for the production cache"
        )
    debounce = settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS
    settle = 2 * debounce if args.live_settle is None else args.live_settle
    pages = live_pages(built)
    feeds = writer_feeds()
    log(
        f"live load: {len(feeds):,} live feeds; writer {args.live_rate:g} batch(es)/s of "
        f"{args.live_batch} observations; worker concurrency {args.worker_concurrency}; "
        f"recompute debounce {debounce} s; broker {_redacted(broker)}; "
        f"cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]} "
        f"{_redacted(getattr(settings, 'CACHE_URL', ''))}"
    )
    cache.clear()
    times: dict[str, list[float]] = {url: [] for _, url in pages}
    with LiveLoad(args, feeds) as load:
        with phase(f"live: load settling for {settle:g} s (writer, worker and beat running)"):
            time.sleep(settle)
        for _, url in pages:  # per-process caches warm, as in the quiet measurement
            fetch(client, url)
        first = MetricSnapshot.objects.aggregate(last=Max("pk"))["last"] or 0
        counts, restore = section_counter()
        started = time.monotonic()
        try:
            with phase(f"live: measure {args.live_repeat} round(s), the pages in turn"):
                for _ in range(args.live_repeat):
                    for _, url in pages:
                        before = time.perf_counter()
                        fetch(client, url)
                        times[url].append(time.perf_counter() - before)
        finally:
            restore()
        measured = time.monotonic() - started
        snapshots = MetricSnapshot.objects.filter(pk__gt=first).count()
        pending = RecomputeMark.objects.count()
        writer = load.finish()
    return report_live(args, pages, times, writer, counts, measured, snapshots, pending, debounce)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname or "")) if parts.password else url


def report_live(args, pages, times, writer, counts, measured, snapshots, pending, debounce):
    base_url = pages[0][1]
    base = {q: percentile(times[base_url], q) for q in (0.5, 0.95, 0.99)}
    posted = sum(writer["statuses"].values())
    latencies = writer["latencies"] or [0.0]
    dashboards = sum(len(times[url]) for label, url in pages if label.startswith("dashboard"))
    print()
    print(
        f"Under live load, {args.live_repeat} requests per page, the pages in turn "
        f"({measured:.0f} s):"
    )
    print(
        f"  writer: {posted:,} batches in {writer['seconds']:.0f} s "
        f"({posted / writer['seconds']:.2f}/s, goal {args.live_rate:g}/s), "
        f"{writer['created']:,} observations stored, answers {writer['statuses']}, "
        f"POST p50 {percentile(latencies, 0.5) * 1000:.0f} ms / "
        f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms"
    )
    print(
        f"  worker: {snapshots:,} snapshots written while measuring; {pending:,} metrics still "
        f"marked at the end (debounce {debounce} s)"
    )
    print(
        f"  dashboard computations while measuring ({dashboards} dashboard requests): "
        + (", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none")
    )
    print(
        f"  {'page':<28} {'url':<44} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'x p50':>6} {'x p95':>6} {'x p99':>6}"
    )
    for label, url in pages:
        figures = {q: percentile(times[url], q) for q in (0.5, 0.95, 0.99)}
        print(
            f"  {label:<28} {url[:44]:<44} "
            + " ".join(f"{figures[q] * 1000:>7.1f}" for q in (0.5, 0.95, 0.99))
            + " "
            + " ".join(f"{figures[q] / base[q]:>5.1f}x" for q in (0.5, 0.95, 0.99))
        )
    dashboard = percentile(times["/"], 0.95) / base[0.95]
    lists = {
        label: percentile(times[url], 0.95) / base[0.95]
        for label, url in pages
        if url.startswith("/initiatives/?") or url == "/initiatives/"
    }
    worst = max(lists, key=lists.get)
    print(
        f"  dashboard p95 / baseline p95: {dashboard:.1f}x; the list's worst p95 / baseline "
        f"p95: {lists[worst]:.1f}x ({worst}); goal {GOAL:g}x"
    )
    return [
        ratio_line("dashboard_p95_live", dashboard, GOAL),
        ratio_line("list_p95_live", lists[worst], GOAL),
    ]


if __name__ == "__main__":
    main()
