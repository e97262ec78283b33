"""Shared fixtures: one user per role, and the switches that turn skips into failures.

A test that needs PostgreSQL, Redis or Chromium skips with a reason on a laptop that lacks
them. CI sets GANTRY_REQUIRE_SERVICES=1 and GANTRY_REQUIRE_BROWSER=1, which turn those skips
into failures, so nothing is skipped silently there.
"""

import os

import pytest
from django.db import connection

from portfolio.roles import Role
from tests.factories import UserFactory


def _required(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str, *, variable: str) -> None:
    if _required(variable):
        pytest.fail(f"{reason} ({variable} is set, so this may not be skipped)")
    pytest.skip(reason)


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
