"""Gantry's processes, for real: Redis, PostgreSQL, gunicorn, a Celery worker and beat.

The fault tests (tests/faults) and the fault benchmark (bench/faults.py) start these, break
one of them (SIGKILL, SIGSTOP, a restart) while a client keeps delivering observations over
HTTP, and then check that every metric's latest snapshot agrees with the observations table.
Nothing is mocked: a fault that loses work here loses it in production too.

Every process runs in a session of its own, so that a kill reaches its children (Celery's
pool, gunicorn's workers), and is killed at interpreter exit if a caller forgot to. Only the
Python standard library, psycopg and redis-py are used, all of them Gantry dependencies.

    python -m tests.faults.stack seed --metrics 3

creates an initiative with metrics and a live feed in DATABASE_URL's database (through the
test factories and metrics.services) and prints {"feed", "token", "metrics"} as JSON.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import glob
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPARED = ("pilot", "baseline")
# The goal: a fault delays recomputes by at most this long after it ends.
GOAL_SECONDS = 60
# A snapshot's value and a fresh SQL aggregate may sum the same rows in another order.
RELATIVE_TOLERANCE = 1e-9
# Started and not yet closed, oldest first: closed newest first at exit.
_LIVE: dict[Service, None] = {}


class Unavailable(RuntimeError):
    """A binary the stack needs (redis-server, initdb, gunicorn) is not installed."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# What a service answers while it is still starting, or while it is down on purpose.
NOT_YET = (OSError, http.client.HTTPException, redis.RedisError, psycopg.Error, ValueError)


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1):
    """Poll `condition` until it answers something true, and return that answer.
    TimeoutError names `what`."""
    started = time.monotonic()
    while True:
        # A service still starting refuses connections: that is a "not yet", keep polling.
        with contextlib.suppress(*NOT_YET):
            answer = condition()
            if answer:
                return answer
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _binary(name: str) -> str:
    """The virtualenv's own executable first (gunicorn), else the one on PATH."""
    found = str(BIN / name) if (BIN / name).exists() else shutil.which(name)
    if found is None:
        raise Unavailable(f"`{name}` is not installed")
    return found


# Processes -------------------------------------------------------------------------------


class Service:
    """One child process in its own session, appending its output to a log file.

    `start()` may be called again after `stop()` or `kill()`: the log keeps every run, each
    after a line naming when it started, so a failure shows the whole story.
    """

    name = "service"
    stop_timeout = 20.0

    def __init__(self, logdir: Path) -> None:
        self.logdir = Path(logdir)
        self.log_path = self.logdir / f"{self.name}.log"
        self.process: subprocess.Popen | None = None
        self.run_offset = 0

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        return True

    def start(self, *, timeout: float = 60) -> Service:
        self.logdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:
            self.run_offset = log.tell()
            log.write(f"===== {self.name} started at {datetime.now(UTC).isoformat()}\n")
            log.flush()
            self.process = subprocess.Popen(
                self.argv(),
                cwd=ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _LIVE[self] = None
        try:
            wait_for(self._ready_or_dead, timeout=timeout, what=f"{self.name} to be ready")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.tail()}") from None
        if not self.alive:
            raise RuntimeError(f"{self.name} exited at start\n{self.tail()}")
        return self

    def _ready_or_dead(self) -> bool:
        return not self.alive or self.ready()

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process and everything in its session (pool children included)."""
        if self.process is None:
            return
        self._kill_group()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait for a clean exit; SIGKILL whatever is left after stop_timeout."""
        if self.process is None:
            return
        if self.alive:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=self.stop_timeout)
        self.kill()

    terminate = stop

    def restart(self) -> Service:
        """Stop cleanly, then start again (same port, same log)."""
        self.stop()
        return self.start()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop for good (at the end of a test, even a failed one)."""
        try:
            self.stop()
        finally:
            _LIVE.pop(self, None)

    def log_text(self, *, this_run: bool = False) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[self.run_offset :] if this_run else text

    def tail(self, lines: int = 80) -> str:
        text = "\n".join(self.log_text().splitlines()[-lines:])
        return f"----- last lines of {self.log_path} -----\n{text}"

    def children(self) -> list[int]:
        return children_of(self.pid) if self.alive else []


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid`, read from /proc."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return sorted(found)


def gone(pid: int) -> bool:
    """Whether the process has exited (a zombie waiting to be reaped counts as gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return text[text.rfind(")") + 2 :].split()[0] in {"Z", "X"}


@atexit.register
def _kill_leftovers() -> None:
    """Never leave a child running, whatever happened to the caller's clean-up."""
    for service in reversed(list(_LIVE)):
        with contextlib.suppress(Exception):  # best effort at exit
            service.kill()


class RedisServer(Service):
    """redis-server without persistence, as in docker-compose: a restart comes back empty."""

    name = "redis"
    stop_timeout = 10.0

    def __init__(self, logdir: Path, port: int | None = None) -> None:
        super().__init__(logdir)
        _binary("redis-server")
        self.port = port or free_port()

    def argv(self) -> list[str]:
        return [
            _binary("redis-server"),
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(self.logdir),
        ]  # fmt: skip

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=2)

    def ready(self) -> bool:
        with self.client() as client:
            return bool(client.ping())

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers, as on a hung host."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()  # a stopped process cannot act on SIGTERM
        super().stop()

    def unacked(self) -> int:
        """Messages a worker took from the queue and has not acknowledged yet (kombu keeps
        them in the `unacked` hash until the ack)."""
        with self.client() as client:
            return int(client.hlen("unacked"))


def stack_env(
    database_url: str, redis_server: RedisServer, *, fast: bool, settings: str = "tests.settings"
) -> dict[str, str]:
    """The environment of web, worker and beat.

    `fast` shortens the periodic tick and the recompute debounce to keep tests short; without
    it both are left to the application's defaults, which is what production sees.
    """
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=settings,
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=redis_server.url(0),
        CACHE_URL=redis_server.url(1),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        STATIC_MANIFEST="0",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    for name in ("GANTRY_TICK_SECONDS", "GANTRY_RECOMPUTE_DEBOUNCE_SECONDS"):
        env.pop(name, None)
    if fast:
        env.update(GANTRY_TICK_SECONDS="2", GANTRY_RECOMPUTE_DEBOUNCE_SECONDS="1")
    return env


class _AppProcess(Service):
    def __init__(self, logdir: Path, env: dict[str, str]) -> None:
        super().__init__(logdir)
        self._env = env

    def env(self) -> dict[str, str]:
        return dict(self._env)


class Web(_AppProcess):
    """gunicorn with two sync workers, as `make serve` runs it."""

    name = "web"

    def __init__(self, logdir: Path, env: dict[str, str], port: int | None = None) -> None:
        super().__init__(logdir, env)
        _binary("gunicorn")
        self.port = port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            _binary("gunicorn"), "gantry.wsgi", "--workers", "2",
            "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "5",
            # Its default control socket is one path in $HOME, shared by every gunicorn.
            "--no-control-socket",
        ]  # fmt: skip

    def ready(self) -> bool:
        return self.health(timeout=5)[0] > 0

    def health(self, *, timeout: float = 5) -> tuple[int, dict]:
        """(status, JSON body) of /healthz."""
        status, _, body = http_request(self.url, "GET", "/healthz", timeout=timeout)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, {"raw": body[:300].decode(errors="replace")}


class Worker(_AppProcess):
    """`celery -A gantry worker` with the prefork pool: real pool processes to kill."""

    name = "worker"

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "gantry", "worker",
            "--pool", "prefork", "--concurrency", "2", "--loglevel", "INFO",
        ]  # fmt: skip

    def ready(self) -> bool:
        return " ready." in self.log_text(this_run=True)

    def pool_pids(self) -> list[int]:
        return self.children()


class Beat(_AppProcess):
    """`celery -A gantry beat` with its schedule file in the log directory."""

    name = "beat"

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "gantry", "beat", "--loglevel", "INFO",
            "--schedule", str(self.logdir / "celerybeat-schedule"),
        ]  # fmt: skip

    def ready(self) -> bool:
        return "beat: Starting" in self.log_text(this_run=True)


def run_manage(args: list[str], env: dict[str, str], *, timeout: float = 300) -> str:
    """Run `manage.py <args>` to completion; its output. CalledProcessError on failure."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode:
        raise subprocess.CalledProcessError(
            result.returncode, result.args, result.stdout, result.stderr
        )
    return result.stdout


# PostgreSQL ------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    """The newest PostgreSQL server binaries installed (initdb and pg_ctl)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: float(Path(p).parent.name)
    )
    for directory in reversed(candidates):
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    raise Unavailable("PostgreSQL's initdb and pg_ctl are not installed")


class PostgresCluster:
    """A PostgreSQL cluster of its own, on a free port, to stop and restart at will.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` user
    (its directory handed over to it). Trust authentication, as the shared test server.
    """

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="gantry-faults-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self._initialised = False
        try:
            self._as = self._run_as()
        except Unavailable:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _run_as(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        runuser = shutil.which("runuser")
        if runuser is None:
            raise Unavailable("running as root without `runuser` to run initdb as postgres")
        try:
            shutil.chown(self.root, user="postgres", group="postgres")
        except LookupError:
            raise Unavailable("running as root and there is no `postgres` user") from None
        return [runuser, "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [*self._as, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode:
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{self.tail()}"
            )
        return result.stdout

    def init(self) -> PostgresCluster:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        self._initialised = True
        atexit.register(self.close)  # a server outside the tracked sessions: stop it anyway
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_path),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "restart")

    @property
    def running(self) -> bool:
        result = subprocess.run(
            [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def tail(self, lines: int = 40) -> str:
        try:
            text = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            text = ""
        return f"----- last lines of {self.log_path} -----\n{text}"

    def close(self) -> None:
        try:
            if self._initialised and self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# Data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    """What the deliverer needs: the feed, its token, and the metric ids it delivers to."""

    feed: int
    token: str
    metrics: list[int]


def seed(database_url: str, env: dict[str, str], *, metrics: int = 3) -> Fixture:
    """An initiative with `metrics` metrics (mean, sum and last value in turn) and a live feed,
    created in a subprocess through the test factories and metrics.services."""
    child_env = {**env, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "tests.faults.stack", "seed", "--metrics", str(metrics)],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"seeding failed:\n{result.stdout}\n{result.stderr}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return Fixture(feed=data["feed"], token=data["token"], metrics=data["metrics"])


def _seed_here(metric_count: int) -> dict:
    import uuid

    import django

    django.setup()
    from metrics import services
    from metrics.models import Aggregation, FeedKind
    from portfolio.roles import Role
    from tests.factories import InitiativeFactory, MetricFactory, UserFactory

    tag = uuid.uuid4().hex[:8]
    manager = UserFactory(username=f"faults-pm-{tag}", role=Role.PROGRAMME_MANAGER)
    initiative = InitiativeFactory(framed=True, title=f"Fault suite {tag}")
    metrics = [initiative.metrics.get(is_primary=True)]
    kinds = [Aggregation.MEAN, Aggregation.SUM, Aggregation.LAST]
    for n in range(1, metric_count):
        metrics.append(
            MetricFactory(
                initiative=initiative,
                name=f"Fault metric {n}",
                slug=f"fault-metric-{n}",
                is_primary=False,
                aggregation=kinds[n % len(kinds)],
            )
        )
    feed, token = services.create_feed(
        initiative=initiative,
        user=manager,
        name="Fault suite feed",
        kind=FeedKind.LIVE,
        owner=manager,
        freshness_hours=24,
    )
    return {"feed": feed.pk, "token": token, "metrics": [m.pk for m in metrics]}


# HTTP ------------------------------------------------------------------------------------


def http_request(
    base_url: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of one request on a new connection."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


Key = tuple[int, str, datetime]  # (metric id, cohort, observed_at): one observation


@dataclass(frozen=True)
class Attempt:
    """One POST of a batch: when it started (monotonic), how long it took, what came back."""

    started: float
    seconds: float
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    items: int
    retry: bool  # a re-send of a batch that failed before
    content_type: str = ""
    retry_after: str | None = None
    body: str = ""


@dataclass
class Delivered:
    """What a deliverer got accepted (201), and how every attempt went."""

    accepted: list[Key]
    created: int
    duplicates: int
    attempts: list[Attempt]
    seconds: float
    pending: int  # items of a batch never accepted (only when the drain timed out)

    @property
    def throughput(self) -> float:
        """Accepted items per second over the whole run."""
        return len(self.accepted) / self.seconds if self.seconds else 0.0

    def between(self, start: float, end: float) -> list[Attempt]:
        """Attempts that started within [start, end] (monotonic seconds)."""
        return [a for a in self.attempts if start <= a.started <= end]

    def throughput_between(self, start: float, end: float) -> float:
        """Items per second of the batches accepted within [start, end]."""
        done = [a for a in self.attempts if a.status == 201 and start <= a.started + a.seconds]
        items = sum(a.items for a in done if a.started + a.seconds <= end)
        return items / (end - start) if end > start else 0.0

    def failures(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status != 201]


class Deliverer(threading.Thread):
    """Posts batches of new observations to the API at a steady rate, as a feed would.

    Each observation has its own observed_at, a microsecond after the previous one and about
    a second before now: inside every comparison window, never in the future, and recent
    enough that a snapshot computed before it arrived cannot cover it. A batch that fails
    (an error status or no answer) is sent again, unchanged, until it is accepted: a re-send
    must count as duplicates, never as new rows.
    """

    def __init__(
        self,
        base_url: str,
        fixture: Fixture,
        *,
        batch: int = 40,
        rate: float | None = 4.0,
        timeout: float = 10.0,
        seed: int = 1,
    ) -> None:
        super().__init__(name="deliverer", daemon=True)
        self.base_url = base_url
        self.fixture = fixture
        self.batch = batch
        self.interval = 1 / rate if rate else 0.0
        self.timeout = timeout
        self.random = random.Random(seed)
        self.accepted: list[Key] = []
        self.created = self.duplicates = 0
        self.attempts: list[Attempt] = []
        self.pending: list[dict] | None = None
        self._stop_sending = threading.Event()
        self._drain_deadline = math.inf
        self._last_moment = datetime.now(UTC) - timedelta(seconds=5)
        self._counter = 0
        self._began = self._ended = 0.0

    def _next_batch(self) -> list[dict]:
        floor = datetime.now(UTC) - timedelta(seconds=1)
        items = []
        for _ in range(self.batch):
            self._last_moment = max(self._last_moment + timedelta(microseconds=1), floor)
            metric = self.fixture.metrics[self._counter % len(self.fixture.metrics)]
            cohort = COMPARED[(self._counter // len(self.fixture.metrics)) % 2]
            self._counter += 1
            items.append(
                {
                    "metric": metric,
                    "cohort": cohort,
                    "observed_at": self._last_moment.isoformat(),
                    "value": round(self.random.gauss(90.0, 5.0), 6),
                }
            )
        return items

    def _post(self, items: list[dict], *, retry: bool) -> bool:
        started = time.monotonic()
        status, headers, body = 0, {}, b""
        try:
            status, headers, body = http_request(
                self.base_url,
                "POST",
                f"/api/v1/feeds/{self.fixture.feed}/observations",
                body=json.dumps(items).encode(),
                headers={
                    "Authorization": f"Bearer {self.fixture.token}",
                    "Content-Type": "application/json",
                },
                timeout=self.timeout,
            )
        except (OSError, http.client.HTTPException) as exc:
            body = f"{type(exc).__name__}: {exc}".encode()
        attempt = Attempt(
            started=started,
            seconds=time.monotonic() - started,
            status=status,
            items=len(items),
            retry=retry,
            content_type=headers.get("content-type", ""),
            retry_after=headers.get("retry-after"),
            body=body[:4000].decode(errors="replace"),  # error bodies whole, to parse them
        )
        self.attempts.append(attempt)
        if status != 201:
            return False
        answer = json.loads(body)
        self.created += answer["created"]
        self.duplicates += answer["duplicates"]
        self.accepted.extend(_key(item) for item in items)
        return True

    def run(self) -> None:
        self._began = time.monotonic()
        next_at = self._began
        while True:
            sending = not self._stop_sending.is_set()
            if not sending and (self.pending is None or time.monotonic() > self._drain_deadline):
                break
            retry = self.pending is not None
            items = self.pending if retry else self._next_batch()
            if self._post(items, retry=retry):
                self.pending = None
                next_at = max(next_at + self.interval, time.monotonic() - self.interval)
                self._stop_sending.wait(max(0.0, next_at - time.monotonic()))
            else:
                self.pending = items
                time.sleep(self._backoff(self.attempts[-1]))  # draining or not
        self._ended = time.monotonic()

    @staticmethod
    def _backoff(attempt: Attempt) -> float:
        """Honour a short Retry-After; otherwise a quarter of a second."""
        try:
            return min(float(attempt.retry_after), 1.0) if attempt.retry_after else 0.25
        except ValueError:
            return 0.25

    def wait_accepted(self, items: int, *, timeout: float = 30) -> None:
        """Wait until `items` observations were accepted: deliveries are flowing."""
        try:
            wait_for(lambda: len(self.accepted) >= items, timeout=timeout, what="deliveries")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; the last attempts: {self.attempts[-3:]}") from None

    def stop(self, *, drain: float = 60.0) -> Delivered:
        """Stop sending new batches; keep re-sending a failed one for up to `drain` seconds."""
        self._drain_deadline = time.monotonic() + drain
        self._stop_sending.set()
        self.join(timeout=drain + self.timeout + 5)
        return Delivered(
            accepted=list(self.accepted),
            created=self.created,
            duplicates=self.duplicates,
            attempts=list(self.attempts),
            seconds=(self._ended or time.monotonic()) - self._began,
            pending=len(self.pending or []),
        )


def _key(item: dict) -> Key:
    return (
        int(item["metric"]),
        item["cohort"],
        datetime.fromisoformat(item["observed_at"]).astimezone(UTC),
    )


# Agreement -------------------------------------------------------------------------------


def agree(database_url: str, metrics: Iterable[int], accepted: list[Key]) -> list[str]:
    """Why the metrics' latest snapshots do not (yet) agree with the data; [] when they do.

    For every metric: its latest snapshot's counts and values equal a fresh SQL aggregate
    of the observations in the snapshot's window (window_start < observed_at <= window_end),
    and every accepted observation lies inside that window, so the snapshot was computed
    after all of them arrived. The table holds each accepted observation exactly once, and
    nothing that was not accepted.
    """
    metrics = sorted(set(metrics))
    problems: list[str] = []
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        problems += _table_problems(conn, metrics, accepted)
        for metric, aggregation, snapshot in _latest_snapshots(conn, metrics):
            problems += _snapshot_problems(conn, metric, aggregation, snapshot, accepted)
    return problems


def _table_problems(conn, metrics: list[int], accepted: list[Key]) -> list[str]:
    held = Counter()
    rows = conn.execute(
        "SELECT metric_id, cohort, observed_at, count(*) FROM metrics_observation "
        "WHERE metric_id = ANY(%s) GROUP BY 1, 2, 3",
        [metrics],
    )
    for metric, cohort, moment, count in rows:
        held[(metric, cohort, moment.astimezone(UTC))] = count
    wanted = Counter(accepted)
    problems = []
    doubled_sent = [k for k, n in wanted.items() if n > 1]
    if doubled_sent:
        problems.append(f"the deliverer recorded {len(doubled_sent)} observations twice")
    missing = [k for k in wanted if k not in held]
    extra = [k for k in held if k not in wanted]
    doubled = [k for k, n in held.items() if n > 1]
    for label, keys in (("missing", missing), ("not accepted", extra), ("doubled", doubled)):
        if keys:
            problems.append(f"{len(keys)} observations {label} in the table, e.g. {keys[:3]}")
    return problems


def _latest_snapshots(conn, metrics: list[int]):
    rows = conn.execute(
        """
        SELECT m.id, m.aggregation, s.id, s.computed_at, s.window_start, s.window_end,
               s.pilot_count, s.baseline_count, s.pilot_value, s.baseline_value, s.verdict
        FROM metrics_metric m LEFT JOIN metrics_metricsnapshot s ON s.id = m.latest_snapshot_id
        WHERE m.id = ANY(%s) ORDER BY m.id
        """,
        [metrics],
    ).fetchall()
    names = ("id", "computed_at", "window_start", "window_end", "pilot_count", "baseline_count",
             "pilot_value", "baseline_value", "verdict")  # fmt: skip
    for row in rows:
        snapshot = dict(zip(names, row[2:], strict=True)) if row[2] is not None else None
        yield row[0], row[1], snapshot


def _snapshot_problems(conn, metric: int, aggregation: str, snapshot, accepted) -> list[str]:
    if snapshot is None:
        return [f"metric {metric}: no snapshot yet"]
    start, end = snapshot["window_start"], snapshot["window_end"]
    problems = []
    mine = [k for k in accepted if k[0] == metric]
    late = [k for k in mine if not start < k[2] <= end]
    if late:
        newest = max(k[2] for k in late)
        problems.append(
            f"metric {metric}: {len(late)} accepted observations outside the latest snapshot's "
            f"window (newest {newest.isoformat()}, window ends {end.isoformat()})"
        )
    fresh = _window_aggregates(conn, metric, start, end)
    for cohort in COMPARED:
        count, mean, total, last = fresh.get(cohort, (0, None, None, None))
        value = {"sum": total, "last": last}.get(aggregation, mean)
        got_count, got_value = snapshot[f"{cohort}_count"], snapshot[f"{cohort}_value"]
        if got_count != count or not _close(got_value, value):
            problems.append(
                f"metric {metric} {cohort}: snapshot {snapshot['id']} computed at "
                f"{snapshot['computed_at'].isoformat()} says {got_count} rows, {aggregation} "
                f"{got_value}; the table says {count} rows, {value}"
            )
    return problems


def _window_aggregates(conn, metric: int, start: datetime, end: datetime) -> dict:
    rows = conn.execute(
        """
        SELECT cohort, count(*), avg(value), sum(value),
               (array_agg(value ORDER BY observed_at DESC, id DESC))[1]
        FROM metrics_observation
        WHERE metric_id = %s AND cohort = ANY(%s) AND observed_at > %s AND observed_at <= %s
        GROUP BY cohort
        """,
        [metric, list(COMPARED), start, end],
    )
    return {cohort: tuple(rest) for cohort, *rest in rows}


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0) or a == b


# metrics.recompute_queue.LOCK_SPACE, repeated so that the harness needs no Django set-up
# (tests/faults/test_worker_kills.py checks that the two agree).
LOCK_SPACE = 0x4D52 << 48


def recompute_marks(database_url: str, metrics: Iterable[int]) -> list[dict]:
    """The durable queue's rows for these metrics: what is still to recompute, and who
    claims it (shown when snapshots do not agree)."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        # A claim is a session advisory lock on the metric's key (metrics.recompute_queue).
        rows = conn.execute(
            "SELECT m.metric_id, m.dirty_since, EXISTS ("
            "  SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 1"
            "  AND ((l.classid::bigint << 32) | l.objid::bigint) = %s + m.metric_id"
            ") FROM metrics_recomputemark m WHERE m.metric_id = ANY(%s) ORDER BY m.metric_id",
            [LOCK_SPACE, sorted(set(metrics))],
        ).fetchall()
    return [{"metric": m, "dirty_since": d, "claimed": c} for m, d, c in rows]


class Disagreement(AssertionError):
    """The snapshots did not agree with the data before the deadline."""


def wait_until_agree(
    database_url: str,
    metrics: Iterable[int],
    accepted: list[Key],
    *,
    timeout: float = 60,
    since: float | None = None,
) -> float:
    """Seconds until `agree` finds nothing wrong, counted from `since` (a monotonic time,
    e.g. the end of a fault) or from now. Disagreement with the last problems, and the
    recompute queue's state, when `timeout` seconds pass first."""
    metrics = sorted(set(metrics))
    origin = time.monotonic() if since is None else since
    problems: list[str] = []
    while True:
        try:
            problems = agree(database_url, metrics, accepted)
        except psycopg.OperationalError as exc:  # the database itself may still be coming back
            problems = [f"database unreachable: {exc}"]
        if not problems:
            return time.monotonic() - origin
        if time.monotonic() - origin > timeout:
            try:
                marks = recompute_marks(database_url, metrics)
            except psycopg.Error as exc:
                marks = [{"error": str(exc)}]
            raise Disagreement(
                f"snapshots still disagree {timeout:.0f} s after the fault ended:\n  "
                + "\n  ".join(problems)
                + f"\nrecompute marks (metrics_recomputemark): {marks}"
            )
        time.sleep(0.5)


# Recomputes caught in the act ------------------------------------------------------------


@dataclass
class HeldRows:
    """A transaction holding the metrics' rows: a recompute blocks when it points the metrics
    at their new snapshots (SELECT ... FOR UPDATE), after it claimed them. Deliveries do not
    block: their foreign-key checks take only FOR KEY SHARE, which FOR NO KEY UPDATE allows."""

    database_url: str
    metrics: list[int]
    conn: psycopg.Connection | None = field(default=None, init=False)

    def __enter__(self) -> HeldRows:
        self.conn = psycopg.connect(self.database_url, connect_timeout=5)
        self.conn.execute(
            "SELECT id FROM metrics_metric WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
            [self.metrics],
        )
        return self

    def blocked(self) -> list[tuple[int, str]]:
        """(client port, statement) of every session waiting for these rows' lock."""
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT client_port, query FROM pg_stat_activity "
                "WHERE %s = ANY(pg_blocking_pids(pid)) AND datname = current_database()",
                [self.conn.info.backend_pid],
            ).fetchall()
        return [(port, query) for port, query in rows if port is not None]

    def release(self) -> None:
        if self.conn is not None and not self.conn.closed:
            # The server may have gone away meanwhile (a restart test), ending it already.
            with contextlib.suppress(psycopg.Error):
                self.conn.rollback()
            self.conn.close()

    def __exit__(self, *exc) -> None:
        self.release()


def recompute_in_flight(stack: Stack, held: HeldRows) -> int | None:
    """The pool process blocked on the held rows while its claim on the marks is recorded:
    a recompute between its claim and its commit. None while there is none yet."""
    if not claimed(stack.database_url, stack.fixture.metrics):
        return None
    for port, query in held.blocked():
        # The claimed recompute names its metrics; the hourly recompute of all does not.
        if " IN (" in query:
            return process_with_local_port(port, stack.worker.pool_pids())
    return None


def claimed(database_url: str, metrics: Iterable[int]) -> list[int]:
    """Metrics whose recompute mark a worker has claimed right now."""
    return [m["metric"] for m in recompute_marks(database_url, metrics) if m["claimed"]]


def process_with_local_port(port: int, pids: Iterable[int]) -> int | None:
    """Which of `pids` owns the TCP socket bound locally to `port` (read from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in glob.glob(f"/proc/{pid}/fd/*")]
        except OSError:
            continue
        if any(link == f"socket:[{inode}]" for link in links for inode in inodes):
            return pid
    return None


def publish(broker_url: str, task: str, args: list, *, countdown: float | None = None) -> str:
    """Send a task by name to the broker, as the web does; returns its id."""
    from celery import Celery

    # The connection is explicit: Celery prefers a CELERY_BROKER_URL in the environment to
    # the broker it is given.
    app = Celery("faults-publisher", set_as_current=False)
    try:
        with app.connection_for_write(broker_url) as conn:
            return app.send_task(task, args=args, countdown=countdown, connection=conn).id
    finally:
        app.close()


def hold_message(stack: Stack, *, seconds: float = 30) -> str:
    """Make the worker hold a message unacknowledged: a task due in `seconds`, which the
    worker takes at once and acknowledges only once it has run (as it holds a debounced
    recompute). Returns the task's id once the worker has it."""
    task = publish(stack.redis.url(), "celery.accumulate", [1], countdown=seconds)
    wait_for(
        lambda: f"[{task}] received" in stack.worker.log_text() and stack.redis.unacked(),
        timeout=15,
        what="the worker to receive the held task",
    )
    return task


# The whole stack -------------------------------------------------------------------------


class Stack:
    """Redis, gunicorn, a worker and beat on one database, with one seeded feed: Gantry as
    docker-compose deploys it, in miniature. `close()` stops everything, newest first."""

    def __init__(
        self,
        logdir: Path,
        database_url: str,
        *,
        fast: bool = True,
        settings: str = "tests.settings",
        metrics: int = 3,
    ) -> None:
        self.logdir = Path(logdir)
        self.database_url = database_url
        self.fast = fast
        self.settings = settings
        self.metric_count = metrics
        self.services: list[Service] = []
        self.deliverers: list[Deliverer] = []
        self.redis: RedisServer | None = None
        self.web: Web | None = None
        self.worker: Worker | None = None
        self.beat: Beat | None = None
        self.env: dict[str, str] = {}
        self.fixture: Fixture | None = None

    def _own(self, service: Service) -> Service:
        self.services.append(service)
        return service

    def start(self) -> Stack:
        self.redis = self._own(RedisServer(self.logdir))
        self.redis.start()
        self.env = stack_env(self.database_url, self.redis, fast=self.fast, settings=self.settings)
        self.fixture = seed(self.database_url, self.env, metrics=self.metric_count)
        self.web = self._own(Web(self.logdir, self.env))
        self.web.start()
        self.worker = self._own(Worker(self.logdir, self.env))
        self.worker.start()
        self.beat = self._own(Beat(self.logdir, self.env))
        self.beat.start()
        self.wait_first_tick()
        return self

    def wait_first_tick(self) -> None:
        """Wait until the worker has run a periodic task beat sent. Jobs that never ran run
        on the first tick (the hourly recompute of every metric among them); a fault before
        it would be repaired by that start-up run rather than by what a fault relies on."""
        tick = int(self.env.get("GANTRY_TICK_SECONDS") or 15)
        wait_for(self._ticked, timeout=tick + 45, what="the first periodic task to run")

    def _ticked(self) -> bool:
        sent = set(re.findall(r"Sending due task \S+ \((\S+)\)", self.beat.log_text()))
        done = re.findall(r"Task (\S+)\[[^\]]+\] succeeded", self.worker.log_text())
        return bool(sent & set(done))

    def deliver(self, **options) -> Deliverer:
        """A deliverer to this stack's feed, already sending."""
        deliverer = Deliverer(self.web.url, self.fixture, **options)
        self.deliverers.append(deliverer)
        deliverer.start()
        return deliverer

    def wait_until_agree(self, accepted: list[Key], **options) -> float:
        return wait_until_agree(self.database_url, self.fixture.metrics, accepted, **options)

    def logs(self, lines: int = 60) -> str:
        return "\n".join(service.tail(lines) for service in self.services)

    def close(self) -> None:
        for deliverer in self.deliverers:
            if deliverer.is_alive():
                deliverer.stop(drain=0)
        errors = []
        for service in reversed(self.services):
            try:
                service.close()
            except Exception as exc:
                errors.append(f"{service.name}: {exc}")
        if errors:
            raise RuntimeError("could not stop: " + "; ".join(errors))

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.stack")
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed", help="create an initiative, metrics and a live feed")
    seeding.add_argument("--metrics", type=int, default=3)
    args = parser.parse_args(argv)
    if args.command == "seed":
        print(json.dumps(_seed_here(args.metrics)))


if __name__ == "__main__":
    main()
