"""factory_boy factories for Gantry's models."""

from decimal import Decimal

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from gates.models import GateDecision
from gates.stages import Stage, Transition
from metrics.models import Direction, Metric
from portfolio.models import BusinessUnit, Initiative, User
from portfolio.roles import Role


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            # get_or_create: transactional tests flush the groups the migration made.
            self.groups.add(Group.objects.get_or_create(name=Role(extracted).value)[0])


class BusinessUnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BusinessUnit
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Business unit {n}")
    slug = factory.Sequence(lambda n: f"unit-{n}")


class InitiativeFactory(factory.django.DjangoModelFactory):
    """An initiative in frame with nothing framed yet; see `framed` for a gate-1-ready one."""

    class Meta:
        model = Initiative
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Initiative {n}")
    summary = "Triage incoming requests with a language model."
    business_unit = factory.SubFactory(BusinessUnitFactory)

    class Params:
        framed = factory.Trait(
            decision_changed="Which claims an adjuster reviews first.",
            business_owner=factory.SubFactory(UserFactory, role=Role.OWNER),
            delivery_lead=factory.SubFactory(UserFactory, role=Role.OWNER),
            primary=factory.RelatedFactory(
                "tests.factories.MetricFactory", factory_related_name="initiative"
            ),
        )


class MetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Metric

    initiative = factory.SubFactory(InitiativeFactory)
    name = "First-contact resolution"
    slug = factory.Sequence(lambda n: f"metric-{n}")
    unit = "%"
    direction = Direction.HIGHER
    ship_threshold = Decimal("85")
    baseline = Decimal("78")
    is_primary = True


class GateDecisionFactory(factory.django.DjangoModelFactory):
    """A decision row written directly, as history for pages: it does not move the stage.

    Tests that need a real stage change go through gates.services.decide (tests.helpers).
    """

    class Meta:
        model = GateDecision

    initiative = factory.SubFactory(InitiativeFactory)
    transition = Transition.APPROVE_FRAME
    from_stage = Stage.FRAME
    to_stage = Stage.THIN_SLICE
    decided_by = factory.SubFactory(UserFactory)
    decided_at = factory.LazyFunction(timezone.now)
    rationale = factory.Sequence(lambda n: f"Recorded decision {n} for the test.")
    evidence = factory.LazyFunction(dict)
