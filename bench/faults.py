"""Fault benchmark: how long each fault delays recomputes, and what a hung Redis costs ingestion.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gantry_bench \\
        .venv/bin/python -m bench.faults [--faults pool-kill,redis-hang] [--timeout 400]

Real processes, as docker-compose runs them (tests.faults.stack): a redis-server without
persistence, gunicorn, a Celery worker (prefork) and beat, with production settings and the
application's own intervals (GANTRY_TICK_SECONDS and GANTRY_RECOMPUTE_DEBOUNCE_SECONDS are
left unset). A feed delivers batches over HTTP while one fault strikes:

- pool-kill: SIGKILL of one pool process in the middle of a recompute it has claimed;
- worker-kill: SIGKILL of the whole worker while it holds an unacknowledged message, and a
  new worker 3 s later;
- redis-restart: Redis stopped for 10 s while the worker holds a message, started empty;
- redis-hang: Redis stopped with SIGSTOP for 5 s, then SIGCONT;
- postgres-restart: a PostgreSQL cluster of the benchmark's own stopped for 6 s (fast
  shutdown) in the middle of a claimed recompute, then started.

For each it prints the seconds from the end of the fault until every metric's latest
snapshot agrees with a fresh SQL aggregate of the observations (tests.faults.stack.agree),
against the 60-second goal. A worker or beat that died is started again at once, as
docker-compose's `restart: unless-stopped` would, and the table says so. redis-hang also
measures ingestion: accepted observations per second while Redis hangs against the same
deliverer's rate before (the goal: at least 0.8 times).

The benchmark database (see bench.common) holds the shared faults' data; postgres-restart
uses a cluster of its own (initdb, needs the PostgreSQL server binaries).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    add_database_arguments,
    add_quick_argument,
    apply_quick,
    log,
    phase,
    ratio_line,
    run_in_own_database,
)
from tests.faults import stack as faults

FAULTS = ("pool-kill", "worker-kill", "redis-restart", "redis-hang", "postgres-restart")
THROUGHPUT_GOAL = 0.8
QUICK = {"timeout": 90, "hang": 3, "baseline": 5}


@dataclass
class Outcome:
    """One fault's figures: how long it lasted, how long until the snapshots agreed."""

    fault: str
    lasted: float = 0.0
    recovered: float | None = None  # None: not within --timeout
    accepted: int = 0
    notes: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"comma-separated faults to run (default: all of {', '.join(FAULTS)})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=180,
        help="seconds to wait for the snapshots to agree after a fault (180: three times "
        "the goal, so a miss shows as a figure)",
    )
    parser.add_argument("--batch", type=int, default=40, help="observations per POST (40)")
    parser.add_argument(
        "--rate", type=float, default=4.0, help="batches per second during the faults (4)"
    )
    parser.add_argument(
        "--hang", type=float, default=5.0, help="seconds Redis is stopped by SIGSTOP (5)"
    )
    parser.add_argument(
        "--baseline",
        type=float,
        default=10.0,
        help="seconds of back-to-back deliveries before the hang, the throughput baseline (10)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the processes' log files at the end"
    )
    add_quick_argument(parser, QUICK)
    add_database_arguments(parser, "faults")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK)
    args.faults = [name.strip() for name in args.faults.split(",") if name.strip()]
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run_in_own_database(args, "faults", benchmark)


def benchmark(args: argparse.Namespace) -> None:
    from django.conf import settings

    logs = Path(tempfile.mkdtemp(prefix="gantry-bench-faults-"))
    tick = getattr(settings, "GANTRY_TICK_SECONDS", None)
    log(
        f"production intervals: tick {tick if tick is not None else 'n/a'} s, recompute "
        f"debounce {settings.GANTRY_RECOMPUTE_DEBOUNCE_SECONDS} s; logs in {logs}"
    )
    outcomes: list[Outcome] = []
    throughput: dict | None = None
    runners = {
        "pool-kill": pool_kill,
        "worker-kill": worker_kill,
        "redis-restart": redis_restart,
        "postgres-restart": postgres_restart,
    }
    failed = False
    try:
        for name in args.faults:
            with phase(name):
                try:
                    if name == "redis-hang":
                        outcome, throughput = redis_hang(args, logs / name)
                    else:
                        outcome = runners[name](args, logs / name)
                except (faults.Unavailable, TimeoutError, RuntimeError) as exc:
                    failed = True
                    outcome = Outcome(name, notes=[f"could not run: {exc}".splitlines()[0]])
                outcomes.append(outcome)
    finally:
        report(args, outcomes, throughput, tick=tick)
        if args.keep_logs or failed:
            log(f"process logs kept in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)


# The faults -------------------------------------------------------------------------------


def _stack(args, logdir: Path, database_url: str | None = None) -> faults.Stack:
    return faults.Stack(
        logdir, database_url or os.environ["DATABASE_URL"], fast=False, settings="gantry.settings"
    )


def pool_kill(args, logdir: Path) -> Outcome:
    outcome = Outcome("pool-kill")
    with _stack(args, logdir) as stack:
        stack.start()
        deliverer = _delivering(stack, args)
        with faults.HeldRows(stack.database_url, stack.fixture.metrics) as held:
            victim = faults.wait_for(
                lambda: faults.recompute_in_flight(stack, held),
                timeout=90,
                what="a pool process in the middle of a claimed recompute",
            )
            os.kill(victim, 9)
            end = time.monotonic()
        outcome.notes.append(f"killed pool process {victim} holding its claim")
        _recover(stack, deliverer, outcome, end, args)
    return outcome


def worker_kill(args, logdir: Path) -> Outcome:
    outcome = Outcome("worker-kill")
    with _stack(args, logdir) as stack:
        stack.start()
        deliverer = _delivering(stack, args)
        held = faults.wait_for(
            lambda: (
                not faults.claimed(stack.database_url, stack.fixture.metrics)
                and stack.redis.unacked()
            ),
            timeout=90,
            interval=0.02,
            what="the worker to hold an unacknowledged message",
        )
        start = time.monotonic()
        stack.worker.kill()
        time.sleep(3)
        stack.worker.start()
        end = time.monotonic()
        outcome.lasted = end - start
        outcome.notes.append(f"killed holding {held} message(s); new worker after 3 s")
        _recover(stack, deliverer, outcome, end, args)
    return outcome


def redis_restart(args, logdir: Path) -> Outcome:
    outcome = Outcome("redis-restart")
    with _stack(args, logdir) as stack:
        stack.start()
        deliverer = _delivering(stack, args)
        held = faults.wait_for(
            stack.redis.unacked, timeout=90, interval=0.02, what="the worker to hold a message"
        )
        start = time.monotonic()
        stack.redis.stop()
        time.sleep(10)
        stack.redis.start()
        end = time.monotonic()
        outcome.lasted = end - start
        outcome.notes.append(f"stopped while the worker held {held} message(s)")
        _recover(stack, deliverer, outcome, end, args)
    return outcome


def redis_hang(args, logdir: Path) -> tuple[Outcome, dict]:
    outcome = Outcome("redis-hang")
    with _stack(args, logdir) as stack:
        stack.start()
        deliverer = stack.deliver(batch=args.batch, rate=None)
        deliverer.wait_accepted(10 * args.batch, timeout=60)
        time.sleep(args.baseline)
        start = time.monotonic()
        stack.redis.pause()
        time.sleep(args.hang)
        stack.redis.resume()
        end = time.monotonic()
        outcome.lasted = end - start
        time.sleep(2)
        delivered = deliverer.stop()
        latencies = [a.seconds for a in delivered.between(start, end)]
        throughput = {
            "before": delivered.throughput_between(start - args.baseline, start),
            "during": delivered.throughput_between(start, end),
            "median": statistics.median(latencies) if latencies else None,
            "max": max(latencies) if latencies else None,
            "requests": len(latencies),
            "refused": sum(a.status != 201 for a in delivered.between(start, end)),
        }
        outcome.accepted = len(delivered.accepted)
        _supervise(stack, outcome)
        outcome.recovered = _agreement(stack, delivered.accepted, outcome, end, args)
    return outcome, throughput


def postgres_restart(args, logdir: Path) -> Outcome:
    outcome = Outcome("postgres-restart")
    cluster = faults.PostgresCluster()
    try:
        cluster.init()
        cluster.start()
        url = cluster.create_database("gantry_bench_faults")
        faults.run_manage(["migrate", "--no-input"], {**os.environ, "DATABASE_URL": url})
        with _stack(args, logdir, url) as stack:
            stack.start()
            deliverer = _delivering(stack, args)
            with faults.HeldRows(url, stack.fixture.metrics) as held:
                faults.wait_for(
                    lambda: faults.recompute_in_flight(stack, held),
                    timeout=90,
                    what="a pool process in the middle of a claimed recompute",
                )
                start = time.monotonic()
                cluster.stop("fast")
            time.sleep(6)
            cluster.start()
            end = time.monotonic()
            outcome.lasted = end - start
            outcome.notes.append("stopped in the middle of a claimed recompute")
            _recover(stack, deliverer, outcome, end, args)
            refused = [a for a in deliverer.attempts if start <= a.started <= end]
            answers = sorted({(a.status, a.retry_after) for a in refused if a.status != 201})
            outcome.notes.append(
                "answers while down: "
                + ", ".join(f"{s or 'no answer'} (Retry-After {r})" for s, r in answers)
            )
    finally:
        cluster.close()
    return outcome


# Measuring --------------------------------------------------------------------------------


def _delivering(stack: faults.Stack, args) -> faults.Deliverer:
    deliverer = stack.deliver(batch=args.batch, rate=args.rate)
    deliverer.wait_accepted(5 * args.batch, timeout=60)
    return deliverer


def _recover(stack, deliverer, outcome: Outcome, end: float, args) -> None:
    """Stop delivering at the fault's end (re-sending a failed batch until it is taken), then
    time the snapshots' agreement from the fault's end."""
    delivered = deliverer.stop()
    outcome.accepted = len(delivered.accepted)
    outcome.recovered = _agreement(stack, delivered.accepted, outcome, end, args)


def _agreement(stack, accepted, outcome: Outcome, end: float, args) -> float | None:
    """Seconds from `end` until the snapshots agree, or None after --timeout. Restarts a
    dead worker or beat as docker-compose would, and notes it."""
    problems: list[str] = []
    while time.monotonic() - end <= args.timeout:
        _supervise(stack, outcome)
        try:
            problems = faults.agree(stack.database_url, stack.fixture.metrics, accepted)
        except faults.psycopg.OperationalError as exc:
            problems = [str(exc)]
        if not problems:
            return time.monotonic() - end
        time.sleep(0.5)
    outcome.notes.append(f"still disagreeing: {problems[0]}")
    marks = faults.recompute_marks(stack.database_url, stack.fixture.metrics)
    held = [m["metric"] for m in marks if m["claimed"]]
    if held:
        outcome.notes.append(f"marks still claimed by a dead recompute: metrics {held}")
    return None


def _supervise(stack: faults.Stack, outcome: Outcome) -> None:
    for service in (stack.worker, stack.beat):
        if not service.alive:
            code = service.process.returncode
            outcome.notes.append(
                f"{service.name} died (exit {code}); started again, as docker-compose would"
            )
            service.start()


# Reporting --------------------------------------------------------------------------------


def report(args, outcomes: list[Outcome], throughput: dict | None, *, tick) -> None:
    goal = faults.GOAL_SECONDS
    print()
    print(
        f"Recovery after each fault (production intervals: tick {tick} s); goal: snapshots "
        f"agree within {goal} s of the fault's end"
    )
    print(f"  {'fault':<18} {'lasted':>8} {'agreed after':>14}  {'goal':<6} observations")
    # One line per goal at the end: seconds to agree (a miss counts as the whole timeout).
    ratios = [
        ratio_line(
            f"recovery_seconds_{o.fault.replace('-', '_')}",
            args.timeout if o.recovered is None else o.recovered,
            goal,
        )
        for o in outcomes
    ]
    for o in outcomes:
        if o.recovered is None:
            agreed, verdict = f"> {args.timeout:.0f} s", "MISSED"
        else:
            agreed = f"{o.recovered:.1f} s"
            verdict = "met" if o.recovered <= goal else "MISSED"
        lasted = f"{o.lasted:.1f} s" if o.lasted else "instant"
        print(f"  {o.fault:<18} {lasted:>8} {agreed:>14}  {verdict:<6} {o.accepted:,}")
        for note in o.notes:
            print(f"      {note}")
    if throughput is None:
        print("\n".join(ratios))
        return
    before, during = throughput["before"], throughput["during"]
    ratio = during / before if before else 0.0
    verdict = "met" if ratio >= THROUGHPUT_GOAL else "MISSED"
    print()
    print(f"Ingestion while Redis hangs ({args.hang:.0f} s, batches of {args.batch}, back to back)")
    rows = {
        f"without a hang ({args.baseline:.0f} s before)": f"{before:10,.0f} observations/s",
        "during the hang": f"{during:10,.0f} observations/s",
        "ratio": f"{ratio:10.2f}x  ({verdict}: goal >= {THROUGHPUT_GOAL}x)",
    }
    for label, value in rows.items():
        print(f"  {label + ':':<32} {value}")
    if throughput["requests"]:
        print(
            f"  requests during the hang: {throughput['requests']}, {throughput['refused']} "
            f"refused; latency median {throughput['median'] * 1000:.0f} ms, "
            f"max {throughput['max'] * 1000:.0f} ms"
        )
    ratios.append(ratio_line("ingest_during_redis_hang", ratio, THROUGHPUT_GOAL, at_least=True))
    print("\n".join(ratios))


if __name__ == "__main__":
    main()
