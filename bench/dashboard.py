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
import time
from collections import Counter
from contextlib import nullcontext
from datetime import timedelta

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
    add_quick_argument(parser, QUICK)
    add_database_arguments(parser, "dashboard")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK)
    args.keep = args.keep or args.reuse
    if args.initiatives < 10 or args.observations < 1 or args.history_days < 0:
        parser.error("need at least 10 initiatives and one observation")
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be positive, --warmup not negative")
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
    with phase("pages.purgatory.sync_flags() (once)", timings):
        counts = purgatory.sync_flags()
    log(f"  flags: {counts}")
    with phase("ANALYZE", timings), connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"timings": timings, "unit": portfolio["unit"], "people": people}


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
        report(args, built["timings"], pages, times, sizes, profiles)
        if args.profile:
            for label, url in pages:
                print(f"cProfile of {label} ({url}):\n{python_profile(client, url)}")


COLD = "/?cache=cleared"  # an unknown parameter: the dashboard ignores it
LIST_LABEL, LIST = "list, thin slice by days", "/initiatives/?stage=thin_slice&sort=-days"
GOAL = 5.0  # p95 within 5x the empty page's
QUICK = {"initiatives": 500, "observations": 500_000, "history_days": 10, "repeat": 15}


def _cool(url: str) -> None:
    """Empty the cache before a request of the cold dashboard (not part of its time)."""
    if url == COLD:
        from django.core.cache import cache

        cache.clear()


def report(args, timings, pages, times, sizes, profiles) -> None:
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
    for line in ratios:
        print(line)


if __name__ == "__main__":
    main()
