"""factory_boy factories for Gantry's models."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from gates.models import GateDecision
from gates.stages import Stage, Transition
from metrics.models import (
    Cohort,
    DataFeed,
    Direction,
    FeedKind,
    Metric,
    MetricSnapshot,
    Observation,
    Verdict,
)
from metrics.services import hash_token
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


class DataFeedFactory(factory.django.DjangoModelFactory):
    """A live feed with a named owner that has not delivered yet.

    Only the token's hash is stored, as metrics.services.create_feed does; pass `token=` to
    know it (`DataFeedFactory(token="gf_known")`). Tests of the API and the pages create feeds
    through the service instead.
    """

    class Meta:
        model = DataFeed

    class Params:
        token = factory.Sequence(lambda n: f"gf_factory-token-{n:06d}")

    initiative = factory.SubFactory(InitiativeFactory)
    name = factory.Sequence(lambda n: f"Feed {n}")
    kind = FeedKind.LIVE
    owner = factory.SubFactory(UserFactory, role=Role.OWNER)
    freshness_hours = 24
    token_hash = factory.LazyAttribute(lambda feed: hash_token(feed.token))
    token_hint = factory.LazyAttribute(lambda feed: feed.token[:10])
    token_rotated_at = factory.LazyFunction(timezone.now)


class ObservationFactory(factory.django.DjangoModelFactory):
    """A pilot observation an hour ago (a second earlier for each one made), feed and metric
    of the same initiative."""

    class Meta:
        model = Observation

    metric = factory.SubFactory(MetricFactory)
    feed = factory.SubFactory(
        DataFeedFactory, initiative=factory.SelfAttribute("..metric.initiative")
    )
    cohort = Cohort.PILOT
    observed_at = factory.Sequence(lambda n: timezone.now() - timedelta(hours=1, seconds=n))
    value = 90.0
    ingested_at = factory.LazyFunction(timezone.now)


class MetricSnapshotFactory(factory.django.DjangoModelFactory):
    """A `meeting` snapshot computed now: pilot 90 against baseline 80, 20 of each.

    `latest=True` also makes it the metric's latest snapshot, as metrics.status.recompute
    does.
    """

    class Meta:
        model = MetricSnapshot
        skip_postgeneration_save = True

    metric = factory.SubFactory(MetricFactory)
    computed_at = factory.LazyFunction(timezone.now)
    window_start = factory.LazyAttribute(
        lambda s: s.computed_at - timedelta(days=s.metric.comparison_window_days)
    )
    window_end = factory.SelfAttribute("computed_at")
    pilot_value = 90.0
    pilot_count = 20
    baseline_value = 80.0
    baseline_count = 20
    # The Welch test's statistics: means as the values above (a mean metric), spread 5.
    pilot_mean = factory.SelfAttribute("pilot_value")
    pilot_stddev = 5.0
    baseline_mean = factory.SelfAttribute("baseline_value")
    baseline_stddev = 5.0
    lift = factory.LazyAttribute(
        lambda s: (
            None
            if s.pilot_value is None or not s.baseline_value
            else (s.pilot_value - s.baseline_value) / abs(s.baseline_value)
        )
    )
    p_value = 0.001
    confidence = factory.LazyAttribute(lambda s: None if s.p_value is None else 1 - s.p_value)
    verdict = Verdict.MEETING
    summary = "pilot mean 90 over 14 days meets 85; baseline 80; +12.5%, 99.9% confidence"

    @factory.post_generation
    def latest(self, create, extracted, **kwargs):
        if create and extracted:
            Metric.objects.filter(pk=self.metric_id).update(
                latest_snapshot=self, latest_verdict=self.verdict
            )
            self.metric.latest_snapshot, self.metric.latest_verdict = self, self.verdict


def _next_checklist_version() -> int:
    from readiness.models import ChecklistTemplate

    latest = ChecklistTemplate.objects.order_by("-version").first()
    return (latest.version if latest else 0) + 1


class ChecklistTemplateFactory(factory.django.DjangoModelFactory):
    """The checklist version after the newest, with no items (add ChecklistItemTemplates)."""

    class Meta:
        model = "readiness.ChecklistTemplate"

    version = factory.LazyFunction(_next_checklist_version)
    notes = "Made for the test."


class ChecklistItemTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "readiness.ChecklistItemTemplate"

    template = factory.SubFactory(ChecklistTemplateFactory)
    key = factory.Sequence(lambda n: f"extra_item_{n}")
    title = factory.Sequence(lambda n: f"Extra check {n}")
    guidance = "Show the evidence for the extra check."
    position = factory.Sequence(lambda n: 100 + n)


class PurgatoryFlagFactory(factory.django.DjangoModelFactory):
    """An active "stuck" flag raised a day ago, as pages.purgatory.sync_flags writes one.

    Pass `cleared_at=` for a cleared one. Tests of the detection rules run sync_flags instead.
    """

    class Meta:
        model = "portfolio.PurgatoryFlag"

    initiative = factory.SubFactory(InitiativeFactory)
    kind = "stuck"
    reason = factory.Sequence(lambda n: f"Flagged for the test ({n}).")
    raised_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    cleared_at = None


# The route to each stage, and the stages a bulk portfolio cycles through.
BULK_ROUTES = [
    [],
    [Transition.APPROVE_FRAME],
    [Transition.APPROVE_FRAME, Transition.SUBMIT_FOR_REVIEW],
    [Transition.APPROVE_FRAME, Transition.SUBMIT_FOR_REVIEW, Transition.PASS_REVIEW],
    [
        Transition.APPROVE_FRAME,
        Transition.SUBMIT_FOR_REVIEW,
        Transition.PASS_REVIEW,
        Transition.WIDEN,
    ],
    [Transition.APPROVE_FRAME, Transition.STOP],
    [Transition.STOP],
]
BULK_VERDICTS = [Verdict.BELOW, Verdict.MEETING, Verdict.STALE, Verdict.INSUFFICIENT_DATA]


def bulk_portfolio(count: int, *, decided_by, start: int = 0) -> list[Initiative]:
    """`count` initiatives made in bulk, for tests that count queries on a large portfolio.

    Initiative k (from `start`) is in the stage of BULK_ROUTES[k % 7], reached through
    gates.services.import_history; it belongs to one of two business units and has a sponsor,
    operational owner and delivery lead (a business owner unless k % 5 == 0), a primary metric
    whose latest snapshot says BULK_VERDICTS[k % 4] (after an older below one), and a live
    feed (stale when k % 3 == 0). pages.purgatory.sync_flags then raises its flags.
    """
    from gates.services import import_history
    from pages.purgatory import sync_flags

    now = timezone.now()
    units = [BusinessUnitFactory(slug=f"bulk-unit-{n}", name=f"Bulk unit {n}") for n in range(2)]
    people = [UserFactory(username=f"bulk-person-{n}", role=Role.OWNER) for n in range(3)]
    numbers = range(start, start + count)
    initiatives = Initiative.objects.bulk_create(
        [
            Initiative(
                title=f"Bulk initiative {k:04d}",
                slug=f"bulk-initiative-{k:04d}",
                summary=f"Summary of bulk initiative {k}.",
                business_unit=units[k % 2],
                sponsor=people[k % 3],
                business_owner=None if k % 5 == 0 else people[(k + 1) % 3],
                operational_owner=people[(k + 2) % 3],
                delivery_lead=people[k % 3],
                stage_entered_at=now - timedelta(days=400),
            )
            for k in numbers
        ]
    )
    for k, initiative in zip(numbers, initiatives, strict=True):
        route = BULK_ROUTES[k % len(BULK_ROUTES)]
        last = now - timedelta(days=k % 120, hours=1)
        import_history(
            initiative=initiative,
            decisions=[
                {
                    "transition": transition,
                    "user": decided_by,
                    "rationale": "Imported for the test.",
                    "decided_at": last - timedelta(days=len(route) - 1 - n),
                    "stop_reason": "superseded" if transition == Transition.STOP else "",
                }
                for n, transition in enumerate(route)
            ],
        )
    metrics = Metric.objects.bulk_create(
        [
            Metric(
                initiative=initiative,
                name=f"Resolution rate {k}",
                slug="resolution-rate",
                unit="%",
                ship_threshold=Decimal("85"),
                baseline=Decimal("78"),
                is_primary=True,
            )
            for k, initiative in zip(numbers, initiatives, strict=True)
        ]
    )

    def snapshot(metric, verdict, days_ago: int) -> MetricSnapshot:
        computed = now - timedelta(days=days_ago, minutes=5)
        return MetricSnapshot(
            metric=metric,
            computed_at=computed,
            window_start=computed - timedelta(days=14),
            window_end=computed,
            pilot_value=80.0 if verdict == Verdict.BELOW else 90.0,
            pilot_count=20,
            verdict=verdict,
            summary=f"{verdict} for the test",
        )

    MetricSnapshot.objects.bulk_create([snapshot(m, Verdict.BELOW, 20) for m in metrics])
    latest = MetricSnapshot.objects.bulk_create(
        [
            snapshot(m, BULK_VERDICTS[k % len(BULK_VERDICTS)], 0)
            for k, m in zip(numbers, metrics, strict=True)
        ]
    )
    for metric, snap in zip(metrics, latest, strict=True):
        metric.latest_snapshot, metric.latest_verdict = snap, snap.verdict
    Metric.objects.bulk_update(metrics, ["latest_snapshot", "latest_verdict"], batch_size=500)
    DataFeed.objects.bulk_create(
        [
            DataFeed(
                initiative=initiative,
                name="Live feed",
                kind=FeedKind.LIVE,
                owner=people[0],
                token_hash=hash_token(f"bulk-feed-{k}"),
                token_hint=f"gf_{k}"[:10],
                last_delivery_at=now - timedelta(days=3 if k % 3 == 0 else 0),
                is_stale=k % 3 == 0,
            )
            for k, initiative in zip(numbers, initiatives, strict=True)
        ]
    )
    sync_flags()
    return initiatives


class FramingChangeFactory(factory.django.DjangoModelFactory):
    """One recorded change of a framing field, people stored as text ids as the services do.

    Writes the record only; the caller changes the initiative's field itself.
    """

    class Meta:
        model = "portfolio.FramingChange"

    initiative = factory.SubFactory(InitiativeFactory)
    field = "business_owner"
    old_value = ""
    new_value = ""
    changed_by = factory.SubFactory(UserFactory, role=Role.PROGRAMME_MANAGER)
    changed_at = factory.LazyFunction(timezone.now)
    reason = "Changed for the test."


def upkeep_line(initiative, *, starts_on=None, ends_on=None, kind="run", amount="12000.00"):
    """An approved budget line for `initiative` (run / upkeep unless `kind`), covering today
    unless dated otherwise, with the request it came from; written directly (no decision, no
    permission checks) and sealed in the audit chain, so the chain stays intact."""
    from gates import audit
    from value.models import BudgetLine, BudgetRequest

    today = timezone.localdate()
    starts_on = starts_on or today - timedelta(days=30)
    ends_on = ends_on or today + timedelta(days=335)
    person = initiative.business_owner or UserFactory(role=Role.OWNER)
    request = BudgetRequest.objects.create(
        initiative=initiative, kind=kind, amount=Decimal(amount), currency="EUR",
        starts_on=starts_on, ends_on=ends_on, purpose="Upkeep for the test.",
        answerable=person, requested_by=person, requested_at=timezone.now(),
    )  # fmt: skip
    line = BudgetLine.objects.create(
        initiative=initiative, kind=kind, amount=request.amount, currency="EUR",
        starts_on=starts_on, ends_on=ends_on, answerable=person, request=request,
        opened_at=timezone.now(),
    )  # fmt: skip
    for row, at in ((request, request.requested_at), (line, line.opened_at)):
        audit.record(
            initiative_id=initiative.pk, kind="budget", actor=person, at=at,
            summary=row.audit_summary(), obj=row,
        )  # fmt: skip
    return line
