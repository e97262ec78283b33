"""Shared plumbing of the benchmarks: a throw-away PostgreSQL database, Django set-up, timing.

Each benchmark runs in a database of its own on the server named by DATABASE_URL (only the
host, port and credentials of that URL are used). The database is created and marked as a
benchmark database, migrated, and dropped at the end unless --keep is given. An existing
database is only ever replaced when it is a marked, empty benchmark database, or when --reset
is given: a database holding initiatives or users is never wiped by accident.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

MARKER = "Gantry benchmark database (bench/); safe to drop."
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}
EXAMPLE_URL = "postgres://postgres@127.0.0.1:5432/gantry_bench"
_START = time.perf_counter()


def log(message: str) -> None:
    """Print a progress line, prefixed with the seconds since the script started."""
    print(f"[{time.perf_counter() - _START:8.1f}s] {message}", flush=True)


@contextlib.contextmanager
def phase(label: str, results: dict[str, float] | None = None) -> Iterator[None]:
    """Log the start and duration of a phase; store the duration in `results[label]`."""
    log(f"{label} ...")
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    if results is not None:
        results[label] = elapsed
    log(f"{label}: {elapsed:.2f} s")


class StageTimer:
    """Wraps functions and methods to add up the time spent in each, for a breakdown."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._undo: list = []

    def wrap(self, owner, name: str, label: str) -> None:
        """Time calls of `owner.name` (a module function, or a method of one object)."""
        original = getattr(owner, name)
        own = name in vars(owner)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started

        setattr(owner, name, timed)
        self._undo.append((owner, name, original if own else None))

    def take(self) -> dict[str, float]:
        """The seconds added up so far, by label; starts again from zero."""
        taken = dict(self.seconds)
        self.seconds.clear()
        return taken

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._undo.clear()


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "n/a"


def median(values: list[float]) -> float:
    return statistics.median(values)


def add_database_arguments(parser: argparse.ArgumentParser, suffix: str) -> None:
    parser.add_argument(
        "--database",
        help=f"name of the benchmark database (default: DATABASE_URL's name + '_{suffix}', "
        f"e.g. gantry_bench_{suffix})",
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="drop and recreate the database even if it holds initiatives or users, or was "
        "not created by a benchmark",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database at the end (default: drop it)"
    )


def add_quick_argument(parser: argparse.ArgumentParser, scale: dict[str, int]) -> None:
    """--quick: the same code paths and load shape at a reduced `scale` (argument name to
    value), so a run takes a few minutes on the 2-core machine."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a reduced scale, same code paths: "
        + ", ".join(f"--{name.replace('_', '-')} {n:,}" for name, n in scale.items()),
    )


def apply_quick(args: argparse.Namespace, scale: dict[str, int]) -> None:
    if getattr(args, "quick", False):
        vars(args).update(scale)


def ratio_line(name: str, value: float, goal: float, *, at_least: bool = False) -> str:
    """One goal's figure, in the form every benchmark ends with, e.g.
    `ratio: recompute_full 1.42 (goal <= 1.5)`: grep "^ratio:" to check every goal."""
    return f"ratio: {name} {value:.2f} (goal {'>=' if at_least else '<='} {goal:g})"


class BenchDatabase:
    """A PostgreSQL database that a benchmark creates, owns and drops."""

    def __init__(self, server_url: str, name: str) -> None:
        self.server_url = server_url
        self.name = name
        parts = urlsplit(server_url)
        self.url = urlunsplit(parts._replace(path="/" + name))

    @classmethod
    def from_environment(cls, args: argparse.Namespace, suffix: str) -> BenchDatabase:
        """The benchmark database on DATABASE_URL's server; exits unless it is PostgreSQL."""
        url = os.environ.get("DATABASE_URL", "")
        scheme = urlsplit(url).scheme.split("+")[0] if url else ""
        if scheme not in POSTGRES_SCHEMES:
            shown = url or "unset (Gantry would use its SQLite file)"
            sys.exit(
                f"bench: PostgreSQL is required; DATABASE_URL is {shown}.\n"
                f"SQLite is not supported: the benchmarks measure the PostgreSQL code paths "
                f"(set-based insert, COPY, planner).\nRun for example:\n"
                f"  DATABASE_URL={EXAMPLE_URL} .venv/bin/python -m bench.{suffix}"
            )
        base = urlsplit(url).path.lstrip("/") or "gantry_bench"
        return cls(url, args.database or f"{base}_{suffix}")

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(make_conninfo(self.server_url, dbname="postgres"), autocommit=True)

    def _held(self) -> dict[str, int]:
        """Rows of initiatives and users the existing database holds."""
        held = {}
        with psycopg.connect(make_conninfo(self.server_url, dbname=self.name)) as conn:
            for table in ("portfolio_initiative", "portfolio_user"):
                if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0]:
                    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                    held[table] = conn.execute(query).fetchone()[0]
        return held

    def create(self, *, reset: bool) -> None:
        """Create the database; replace an existing one only when that is safe or --reset."""
        if self.name in {"postgres", "template0", "template1"}:
            sys.exit(f"bench: {self.name!r} is a system database; choose another --database.")
        ident = sql.Identifier(self.name)
        with self._admin() as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                [self.name],
            ).fetchone()
            if row is not None:
                held = {table: n for table, n in self._held().items() if n}
                if (held or row[0] != MARKER) and not reset:
                    what = ", ".join(f"{t}: {n} rows" for t, n in held.items())
                    sys.exit(
                        f"bench: database {self.name!r} already exists and "
                        + (f"holds data ({what})" if held else "was not created by a benchmark")
                        + "; refusing to touch it. Pass --reset to drop and recreate it, or "
                        "--database to choose another name."
                    )
                log(f"dropping the existing database {self.name!r}")
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(MARKER)))
        log(f"created database {self.name!r}")

    def drop(self) -> None:
        from django.db import connections

        connections.close_all()
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )
        log(f"dropped database {self.name!r}")


def setup_django(db: BenchDatabase) -> None:
    """Point Django at the benchmark database with production settings, then migrate.

    DEBUG stays off (as in production: no query log) with a throw-away SECRET_KEY; the TLS
    redirect is off and the test client's host is allowed, so requests reach the views.
    """
    os.environ["DJANGO_SETTINGS_MODULE"] = "gantry.settings"
    os.environ["DATABASE_URL"] = db.url
    os.environ["DEBUG"] = "0"
    os.environ["SECRET_KEY"] = "bench-" + secrets.token_urlsafe(40)
    os.environ["SECURE_SSL_REDIRECT"] = "0"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ["STATIC_MANIFEST"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    with phase("migrate"):
        call_command("migrate", verbosity=0, interactive=False)


def server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def checkpoint() -> None:
    """Flush dirty buffers so one phase's writes are not paid for by the next."""
    from django.db import connection

    with connection.cursor() as cursor:
        try:
            cursor.execute("CHECKPOINT")
        except Exception as exc:  # CHECKPOINT needs superuser or pg_checkpoint
            log(f"(CHECKPOINT skipped: {exc})")


def table_size(table: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        # A partitioned table holds nothing itself: its partitions are summed. A plain table
        # has no partition tree, so it is added by name (UNION drops a root listed twice).
        cursor.execute(
            "SELECT pg_size_pretty(sum(pg_table_size(relid))), "
            "pg_size_pretty(sum(pg_indexes_size(relid))) FROM ("
            "SELECT relid FROM pg_partition_tree(%s) UNION SELECT %s::regclass) AS tree",
            [table, table],
        )
        data, indexes = cursor.fetchone()
    return f"{data} data + {indexes} indexes"


def run_in_own_database(args, suffix: str, benchmark, *, prepare=None) -> None:
    """Create (or, through `prepare`, check) the benchmark's database, set Django up on it,
    run `benchmark(args)`, then drop the database unless --keep was given, even on error."""
    db = BenchDatabase.from_environment(args, suffix)
    if prepare is None:
        db.create(reset=args.reset)
    else:
        prepare(db)
    try:
        setup_django(db)
        benchmark(args)
    finally:
        if args.keep:
            log(f"kept database {db.name!r} (--keep)")
        else:
            db.drop()
