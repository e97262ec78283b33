"""Fixtures of the fault tests: a real stack per test, a hard time bound, and a report.

Each test gets its own redis-server, gunicorn, Celery worker and beat (tests.faults.stack)
on the pytest-django test database, or on a PostgreSQL cluster of its own when the test
restarts PostgreSQL. Missing services skip with the reason on a laptop and fail in CI
(GANTRY_REQUIRE_SERVICES=1). A failing test shows the last lines of every process's log,
and the figures each test measured are printed at the end of the run.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import connection

from tests.conftest import skip_or_fail
from tests.faults import stack as faults

# Each test's own bound, from the end of its set-up (starting the stack has its own
# timeouts): well under the two minutes a fault test may take.
TEST_SECONDS = 100
REQUIRE = "GANTRY_REQUIRE_SERVICES"
_FIGURES: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the processes' logs to a failed test's report."""
    report = yield
    stack = getattr(item, "fault_stack", None)
    if report.failed and stack is not None:
        report.sections.append(("process logs", stack.logs()))
    return report


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section("fault figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def figures(request):
    """figures("...") records a measured figure, printed at the end of the run."""

    def record(text: str) -> None:
        _FIGURES.append(f"{request.node.name}: {text}")

    return record


@pytest.fixture
def converged(figures):
    """converged(stack, accepted, since=...) waits until the snapshots agree with the data,
    within the goal of the fault's end (`since`), and records how long it took either way."""

    def wait(stack: faults.Stack, accepted, *, since: float) -> float:
        try:
            seconds = stack.wait_until_agree(accepted, timeout=faults.GOAL_SECONDS, since=since)
        except faults.Disagreement:
            figures(f"snapshots did NOT agree within {faults.GOAL_SECONDS} s of the fault's end")
            raise
        figures(f"snapshots agree {seconds:.1f} s after the fault's end "
                f"(goal {faults.GOAL_SECONDS} s)")  # fmt: skip
        return seconds

    return wait


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())


@pytest.fixture
def deadline():
    """The test body's hard bound: SIGALRM interrupts whatever waits past it, and the stack's
    own fixture (set up before, so torn down after) still stops every process."""

    def expire(signum, frame):
        # pytest.fail raises a BaseException: no `except Exception` in a wait swallows it.
        pytest.fail(f"the test ran past its bound of {TEST_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, TEST_SECONDS)
    try:
        yield Deadline(TEST_SECONDS)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def test_database_url(transactional_db) -> str:
    """The test database's URL, for processes of their own (committed data only)."""
    if connection.vendor != "postgresql":
        skip_or_fail("needs PostgreSQL: set DATABASE_URL=postgres://...", variable=REQUIRE)
    return _database_url()


def _running(request, logdir, database_url: str) -> faults.Stack:
    stack = faults.Stack(logdir, database_url)
    request.node.fault_stack = stack
    request.addfinalizer(stack.close)
    try:
        stack.start()
    except faults.Unavailable as exc:
        skip_or_fail(f"the fault tests need {exc}", variable=REQUIRE)
    return stack


@pytest.fixture
def stack(request, tmp_path, test_database_url) -> faults.Stack:
    """Redis, web, worker and beat on the test database, with a seeded live feed."""
    return _running(request, tmp_path / "logs", test_database_url)


@pytest.fixture
def cluster(request):
    """A PostgreSQL cluster of this test's own, started; gone afterwards."""
    try:
        cluster = faults.PostgresCluster()
    except faults.Unavailable as exc:
        skip_or_fail(f"the PostgreSQL restart test needs {exc}", variable=REQUIRE)
    request.addfinalizer(cluster.close)
    cluster.init()
    cluster.start()
    return cluster


@pytest.fixture
def cluster_stack(request, tmp_path, cluster) -> faults.Stack:
    """The stack on a migrated database in the test's own PostgreSQL cluster."""
    url = cluster.create_database("gantry_faults")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": url}
    faults.run_manage(["migrate", "--no-input"], env)
    return _running(request, tmp_path / "logs", url)
