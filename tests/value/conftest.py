"""An initiative in narrow launch with a value model, a measured snapshot and a sponsor."""

from decimal import Decimal

import pytest

from gates.stages import Stage
from portfolio.roles import Role
from tests.factories import InitiativeFactory, MetricSnapshotFactory, UserFactory


@pytest.fixture
def sponsor(db):
    return UserFactory(username="sponsor", role=Role.EXECUTIVE)


@pytest.fixture
def launched(sponsor, owner):
    initiative = InitiativeFactory(
        framed=True, stage=Stage.NARROW_LAUNCH, sponsor=sponsor, business_owner=owner
    )
    metric = initiative.metrics.get(is_primary=True)
    type(metric).objects.filter(pk=metric.pk).update(
        unit_value=Decimal("38"), value_currency="EUR", monthly_volume=Decimal("1200")
    )
    MetricSnapshotFactory(metric=metric, latest=True)
    return initiative
