"""Shared fixtures: one user per role, and the switches that turn skips into failures.

A test that needs PostgreSQL, Redis or Chromium skips with a reason on a laptop that lacks
them. CI sets GANTRY_REQUIRE_SERVICES=1 and GANTRY_REQUIRE_BROWSER=1, which turn those skips
into failures, so nothing is skipped silently there.
"""

import os
from collections import Counter

import pytest
from django.core.cache import cache
from django.db import connection

from portfolio.roles import Role
from tests.factories import UserFactory


def _required(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str, *, variable: str) -> None:
    if _required(variable):
        pytest.fail(f"{reason} ({variable} is set, so this may not be skipped)")
    pytest.skip(reason)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Keep `pytest.mark.xdist_group` working under `--dist loadgroup` (make test).

    pytest-xdist tells its scheduler a test's group by appending "@group" to the test's node
    id in each worker. pytest 9.2 keeps node ids in `Item._id`, so xdist 3.8's write to the
    old `_nodeid` attribute is lost and grouped tests are silently spread over the workers
    (pytest-dev/pytest-xdist#1386). Add the suffix the way xdist would, where it is missing.
    """
    if not getattr(config.option, "loadgroup", False):  # set in xdist workers only
        return
    for item in items:
        names = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        suffix = "@" + "_".join(sorted(names))
        if names and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = type(item._id).parse(item.nodeid + suffix)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: cached dashboards and debounce keys of one test
    must not answer for another (SQLite reuses primary keys after a rollback)."""
    cache.clear()


@pytest.fixture
def require_postgres(db):
    if connection.vendor != "postgresql":
        skip_or_fail(
            "needs PostgreSQL: set DATABASE_URL=postgres://...", variable="GANTRY_REQUIRE_SERVICES"
        )


@pytest.fixture
def executive(db):
    return UserFactory(username="exec", role=Role.EXECUTIVE)


@pytest.fixture
def manager(db):
    return UserFactory(username="pm", role=Role.PROGRAMME_MANAGER)


@pytest.fixture
def owner(db):
    return UserFactory(username="owner", role=Role.OWNER)


@pytest.fixture
def viewer(db):
    return UserFactory(username="viewer", role=Role.VIEWER)


@pytest.fixture
def superuser(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def framing_data(db):
    """POST data for the framing form (initiative and primary metric), valid by default.

    Given an initiative, the data repeats its current framing; keyword arguments override
    single fields, e.g. `framing_data(title="")` or `framing_data(**{"metric-unit": ""})`.
    """
    from tests.factories import BusinessUnitFactory

    def build(initiative=None, **overrides) -> dict:
        if initiative is None:
            data = {
                "title": "Claims triage",
                "summary": "Triage incoming claims with a language model.",
                "business_unit": BusinessUnitFactory().pk,
                "sponsor": "",
                "business_owner": "",
                "operational_owner": "",
                "delivery_lead": "",
                "decision_changed": "Which claims an adjuster reviews first.",
                "security_model": "",
                "logging_evidence": "",
                "narrow_audience": "",
            }
        else:
            data = {
                "title": initiative.title,
                "summary": initiative.summary,
                "business_unit": initiative.business_unit_id,
                "decision_changed": initiative.decision_changed,
                "security_model": initiative.security_model,
                "logging_evidence": initiative.logging_evidence,
                "narrow_audience": initiative.narrow_audience,
            }
            for name in ("sponsor", "business_owner", "operational_owner", "delivery_lead"):
                data[name] = getattr(initiative, f"{name}_id") or ""
        metric = initiative.primary_metric if initiative is not None else None
        data.update(
            {
                "metric-name": metric.name if metric else "First-contact resolution",
                "metric-unit": metric.unit if metric else "%",
                "metric-direction": metric.direction if metric else "higher",
                "metric-ship_threshold": str(metric.ship_threshold) if metric else "85",
                "metric-baseline": ""
                if not metric or metric.baseline is None
                else str(metric.baseline),
                "metric-comparison_window_days": str(metric.comparison_window_days)
                if metric
                else "14",
            }
        )
        data.update(overrides)
        return data

    return build


@pytest.fixture
def computed(monkeypatch) -> Counter:
    """How often each of the dashboard's sections is computed from here on."""
    from pages import dashboard

    counts: Counter = Counter()
    for name, section in dashboard.SECTIONS.items():

        def counted(base, now, _compute=section.compute, _name=name):
            counts[_name] += 1
            return _compute(base, now)

        monkeypatch.setattr(section, "compute", counted)
    return counts


@pytest.fixture
def worker(settings, tmp_path):
    """A `celery worker` process on its own queue, pointed at the test database; yields its
    log file (tests.celery_worker)."""
    from tests.celery_worker import worker as start

    yield from start(settings, tmp_path)
