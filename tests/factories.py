"""factory_boy factories for Gantry's models."""

from decimal import Decimal

import factory
from django.contrib.auth.models import Group

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
            self.groups.add(Group.objects.get(name=Role(extracted).value))


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
