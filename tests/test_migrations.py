"""The migrations describe the models exactly, and they create what Gantry needs to run."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from portfolio.roles import Role

pytestmark = pytest.mark.django_db


def test_models_have_no_changes_missing_from_migrations():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exit_:  # --check exits 1 when a migration is missing
        pytest.fail(f"makemigrations --check found missing migrations:\n{out.getvalue()}")
        raise AssertionError from exit_
    assert "No changes detected" in out.getvalue()


def test_migrations_create_one_group_per_role():
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.values)
