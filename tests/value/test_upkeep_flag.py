"""The purgatory flag "no budget line for its upkeep": launched with no approved run line
covering today."""

from datetime import timedelta

import pytest
from django.utils import timezone

from gates.stages import Stage
from pages import purgatory
from portfolio.models import FlagKind, PurgatoryFlag
from tests.factories import InitiativeFactory, upkeep_line
from value import services
from value.models import Outcome

pytestmark = pytest.mark.django_db


def upkeep_flag(initiative) -> PurgatoryFlag | None:
    return PurgatoryFlag.objects.filter(
        initiative=initiative, kind=FlagKind.NO_UPKEEP, cleared_at__isnull=True
    ).first()


@pytest.mark.parametrize("stage", [Stage.NARROW_LAUNCH, Stage.WIDE_LAUNCH])
def test_a_launched_initiative_without_upkeep_is_flagged(stage):
    initiative = InitiativeFactory(framed=True, stage=stage)

    purgatory.sync_flags()

    flag = upkeep_flag(initiative)
    assert flag.reason == "Launched with no approved run / upkeep budget line for today."


@pytest.mark.parametrize(
    "stage", [Stage.FRAME, Stage.THIN_SLICE, Stage.READINESS_REVIEW, Stage.STOPPED]
)
def test_before_launch_or_stopped_nobody_needs_upkeep(stage):
    initiative = InitiativeFactory(framed=True, stage=stage)

    purgatory.sync_flags()

    assert upkeep_flag(initiative) is None


def test_an_approved_run_line_for_today_clears_the_flag(launched, owner, sponsor):
    purgatory.sync_flags()
    assert upkeep_flag(launched) is not None
    today = timezone.localdate()
    made = services.request_budget(
        initiative=launched,
        user=owner,
        values={
            "kind": "run", "amount": "9000", "currency": "EUR", "starts_on": today,
            "ends_on": today + timedelta(days=364), "purpose": "Upkeep.", "answerable": owner,
        },
    )  # fmt: skip
    purgatory.sync_flags()
    assert upkeep_flag(launched) is not None  # requested is not granted

    services.decide(request=made, user=sponsor, outcome=Outcome.APPROVED, rationale="Go.")
    purgatory.sync_flags()

    assert upkeep_flag(launched) is None
    assert PurgatoryFlag.objects.get(initiative=launched, kind=FlagKind.NO_UPKEEP).cleared_at


@pytest.mark.parametrize(
    ("kind", "start", "end"),
    [
        ("build", -10, 100),  # build money is not upkeep
        ("run", 1, 100),  # not started yet
        ("run", -100, -1),  # ended yesterday
    ],
    ids=["build line", "future line", "past line"],
)
def test_only_a_run_line_covering_today_counts(kind, start, end):
    initiative = InitiativeFactory(framed=True, stage=Stage.NARROW_LAUNCH)
    today = timezone.localdate()
    upkeep_line(
        initiative,
        kind=kind,
        starts_on=today + timedelta(days=start),
        ends_on=today + timedelta(days=end),
    )

    purgatory.sync_flags()

    assert upkeep_flag(initiative) is not None


def test_a_line_that_ran_out_dates_the_flag_from_the_day_after():
    initiative = InitiativeFactory(
        framed=True, stage=Stage.WIDE_LAUNCH, stage_entered_at=timezone.now() - timedelta(days=500)
    )
    today = timezone.localdate()
    ended = today - timedelta(days=3)
    upkeep_line(initiative, starts_on=today - timedelta(days=400), ends_on=ended)

    purgatory.sync_flags()

    flag = upkeep_flag(initiative)
    assert flag.reason == (
        f"Its last run / upkeep budget line ended on {ended:%Y-%m-%d}; no approved line "
        "covers today."
    )
    assert timezone.localtime(flag.since).date() == ended + timedelta(days=1)
