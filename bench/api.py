"""API benchmark: /api/v1/ reads on a large portfolio, against the empty authenticated page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gantry_bench \\
        .venv/bin/python -m bench.api [--initiatives 5000] [--repeat 50]

In a database of its own (gantry_bench_api by default; see bench.common) it builds the
portfolio bench.dashboard builds (5,000 initiatives in every stage with their decisions, 4
metrics each, feeds, observations, snapshot history, one recompute, flags; fewer
observations by default, since the API's reads do not scan them), makes a read token for an
executive, and requests in turn, --repeat times each after --warmup rounds, with Django's test
Client (production settings, DEBUG off):

- /bench/empty/, the baseline: `base.html` with no content, signed in by session, through
  the same middleware as every page (bench/dashboard_urls.py);
- GET /api/v1/initiatives, the first page of 50 in title order;
- the same list filtered and sorted as the list page's benchmark (thin slice by days);
- the list's 20th page (the last but one below 1,050 initiatives), reached through its
  cursor (a keyset condition, not an offset);
- GET /api/v1/initiatives/<slug> for the initiative with the longest decision history.

It prints the median and p95 of each, their ratios to the baseline, and the queries each
request makes, counted at this size and again on the smallest page: the counts do not grow
with the portfolio (tests/api/test_reads.py asserts it at two sizes). The per-token rate
limit is lifted for the run: it would otherwise refuse the benchmark's own requests.
"""

from __future__ import annotations

import argparse
import time

from bench import dashboard
from bench.common import (
    add_database_arguments,
    add_quick_argument,
    apply_quick,
    log,
    median,
    phase,
    ratio_line,
    run_in_own_database,
    server_version,
)

GOAL = 5.0  # p95 within 5x the empty page's, as the pages' goal
QUICK = {"initiatives": 500, "observations": 100_000, "history_days": 2, "repeat": 20}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--initiatives", type=int, default=5_000, help="initiatives (5,000)")
    parser.add_argument(
        "--observations", type=int, default=1_000_000, help="observations (1,000,000)"
    )
    parser.add_argument("--history-days", type=int, default=5, help="daily snapshots (5)")
    parser.add_argument("--repeat", type=int, default=50, help="timed requests per URL (50)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--load", choices=["rebuild", "indexed"], default="rebuild")
    add_quick_argument(parser, QUICK)
    add_database_arguments(parser, "api")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK)
    if args.initiatives < 100 or args.repeat < 1:
        parser.error("need at least 100 initiatives and one request")
    return args


def main(argv: list[str] | None = None) -> None:
    run_in_own_database(parse_args(argv), "api", benchmark)


def benchmark(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from accounts import tokens
    from portfolio.models import Initiative

    log(f"PostgreSQL {server_version()}; {args.initiatives:,} initiatives")
    built = dashboard.build(args)
    executive = built["people"]["executive"][0]
    _, secret = tokens.create(user=executive, name="bench", scope="read")
    busiest = (
        Initiative.objects.annotate(n=Count("decisions"))
        .order_by("-n", "pk")
        .values_list("slug", "n")[0]
    )
    api = Client(headers={"Authorization": f"Bearer {secret}"})
    with override_settings(ROOT_URLCONF="bench.dashboard_urls", GANTRY_API_RATE_LIMIT=10**9):
        page = Client()
        page.force_login(executive)
        # A page well into the list: the 20th, or the last but one on a small portfolio.
        deep = min(20, args.initiatives // 50 - 1)
        cursor_url = "/api/v1/initiatives?limit=50"
        for _ in range(deep - 1):
            cursor_url = api.get(cursor_url).json()["next"].split("testserver", 1)[1]
        urls = [
            ("empty page (baseline)", page, "/bench/empty/"),
            ("API list, first page", api, "/api/v1/initiatives"),
            (
                "API list, thin slice by days",
                api,
                "/api/v1/initiatives?stage=thin_slice&sort=-days",
            ),
            (f"API list, page {deep} by cursor", api, cursor_url),
            (f"API initiative ({busiest[1]} decisions)", api, f"/api/v1/initiatives/{busiest[0]}"),
        ]
        queries = {}
        for label, client, url in urls:
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"bench: {url} answered {response.status_code}")
            queries[label] = len(captured)
        with phase(f"warm-up: {args.warmup} round(s)"):
            for _ in range(args.warmup):
                for _, client, url in urls:
                    client.get(url)
        times: dict[str, list[float]] = {label: [] for label, _, _ in urls}
        with phase(f"measure: {args.repeat} round(s), the URLs in turn"):
            for _ in range(args.repeat):
                for label, client, url in urls:
                    started = time.perf_counter()
                    client.get(url)
                    times[label].append(time.perf_counter() - started)
    base = urls[0][0]
    base_median, base_p95 = median(times[base]), dashboard.percentile(times[base], 0.95)
    print()
    print(f"Server time per request, {args.repeat} requests each; test Client, DEBUG off")
    columns = ("queries", 7), ("median ms", 9), ("p95 ms", 8), ("x median", 8), ("x p95", 7)
    print(f"  {'request':<36} " + " ".join(f"{name:>{width}}" for name, width in columns))
    for label, _, _ in urls:
        mid, p95 = median(times[label]), dashboard.percentile(times[label], 0.95)
        print(
            f"  {label:<36} {queries[label]:>7} {mid * 1000:>9.1f} {p95 * 1000:>8.1f} "
            f"{mid / base_median:>7.1f}x {p95 / base_p95:>6.1f}x"
        )
    print()
    for name, label in (
        ("api_list_p95", urls[1][0]),
        ("api_list_filtered_p95", urls[2][0]),
        ("api_list_cursor_p95", urls[3][0]),
        ("api_initiative_p95", urls[4][0]),
    ):
        print(ratio_line(name, dashboard.percentile(times[label], 0.95) / base_p95, GOAL))


if __name__ == "__main__":
    main()
