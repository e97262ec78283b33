"""Fixtures of the readiness tests: a cast of people and an initiative in readiness review."""

from types import SimpleNamespace

import pytest

from portfolio.roles import Role
from readiness import services
from tests.factories import InitiativeFactory, UserFactory
from tests.readiness.helpers import ASSIGNMENT, check, items_of, submit_for_review


@pytest.fixture
def cast(db):
    """One person per part: a programme manager with no stake in the initiative (`pm`), a
    second one (`pm2`), the initiative's three owners, an owner of another initiative, an
    executive and a viewer."""

    def person(username, first, last, role):
        return UserFactory(username=username, first_name=first, last_name=last, role=role)

    return SimpleNamespace(
        pm=person("r-pm", "Priya", "Menon", Role.PROGRAMME_MANAGER),
        pm2=person("r-pm2", "Tomas", "Novak", Role.PROGRAMME_MANAGER),
        executive=person("r-exec", "Elena", "Ruiz", Role.EXECUTIVE),
        business_owner=person("r-bo", "Ada", "Lovelace", Role.OWNER),
        delivery_lead=person("r-dl", "Grace", "Hopper", Role.OWNER),
        operational_owner=person("r-oo", "Olu", "Adeyemi", Role.OWNER),
        other_owner=person("r-other", "Ken", "Thompson", Role.OWNER),
        viewer=person("r-viewer", "Vera", "Watson", Role.VIEWER),
    )


@pytest.fixture
def initiative(cast):
    """Framed, with its three owners and a narrow audience; still in frame."""
    return InitiativeFactory(
        framed=True,
        title="Claims triage",
        business_owner=cast.business_owner,
        delivery_lead=cast.delivery_lead,
        operational_owner=cast.operational_owner,
        narrow_audience="Motor claims team, Leeds",
    )


@pytest.fixture
def review(initiative, cast):
    """The open review of `initiative`, opened through gates.services.decide."""
    return submit_for_review(initiative, user=cast.pm)


@pytest.fixture
def items(review, cast):
    """The review's items by key, each assigned by `pm` as ASSIGNMENT says; none checked."""
    for key, item in items_of(review).items():
        services.assign(item=item, assignee=getattr(cast, ASSIGNMENT[key]), user=cast.pm)
    return items_of(review)


@pytest.fixture
def complete(items, cast):
    """Every item checked with evidence by its assignee."""
    for key, item in items.items():
        check(item, getattr(cast, ASSIGNMENT[key]))
    return items_of(next(iter(items.values())).review)
