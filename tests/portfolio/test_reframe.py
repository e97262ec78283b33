"""Reframing: after gate 1 the success definition changes only through a recorded decision
of a programme manager with no stake; owners propose, they never apply."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from gates import audit
from gates.models import GateDecision
from gates.stages import Stage
from gates.stages import Transition as T
from portfolio import services
from portfolio.models import FramingChange, ProposalStatus, ReframeProposal
from portfolio.roles import Role
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance

pytestmark = pytest.mark.django_db


@pytest.fixture
def launched(manager):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.NARROW_LAUNCH, user=manager)
    return initiative


def _form(**overrides) -> dict:
    data = {
        "name": "First-contact resolution",
        "unit": "%",
        "direction": "higher",
        "ship_threshold": "88",
        "baseline": "78",
        "aggregation": "mean",
        "comparison_window_days": "14",
        "rationale": "Finance now needs 88% to cover the running cost.",
    }
    data.update(overrides)
    return data


def test_a_programme_manager_with_no_stake_reframes_and_it_is_recorded(client, launched, manager):
    client.force_login(manager)
    response = client.post(f"/initiatives/{launched.slug}/reframe/", _form())
    assert response.status_code == 302
    assert response["Location"] == launched.get_absolute_url()

    metric = launched.metrics.get(is_primary=True)
    assert metric.ship_threshold == Decimal("88")
    decision = launched.decisions.get(transition=T.REFRAME)
    assert (decision.from_stage, decision.to_stage) == (Stage.NARROW_LAUNCH, Stage.NARROW_LAUNCH)
    assert decision.decided_by == manager
    assert decision.evidence["before"]["ship_threshold"] == "85"
    assert decision.evidence["after"]["ship_threshold"] == "88"
    change = FramingChange.objects.get(field="metric.ship_threshold")
    assert change.decision == decision
    assert (change.old_value, change.new_value) == ("85", "88")
    launched.refresh_from_db()
    assert launched.stage == Stage.NARROW_LAUNCH
    # In the decision history like any gate decision, and sealed.
    body = client.get(launched.get_absolute_url()).content.decode()
    assert "Reframe success definition (in narrow launch)" in body
    assert "Reframed ship threshold: 85 → 88" in body
    assert audit.verify([launched.pk])[1] == []


@pytest.mark.parametrize("who", ["business_owner", "delivery_lead", "executive", "viewer", "owner"])
def test_only_a_programme_manager_with_no_stake_may_reframe(
    client, launched, executive, viewer, owner, who
):
    if who in ("business_owner", "delivery_lead"):
        user = getattr(launched, who)
    else:
        user = {"executive": executive, "viewer": viewer, "owner": owner}[who]
    client.force_login(user)
    assert client.get(f"/initiatives/{launched.slug}/reframe/").status_code == 403
    assert client.post(f"/initiatives/{launched.slug}/reframe/", _form()).status_code == 403
    assert launched.metrics.get(is_primary=True).ship_threshold == Decimal("85")
    assert not launched.decisions.filter(transition=T.REFRAME).exists()


def test_a_programme_manager_who_owns_the_initiative_may_not_reframe(client, launched):
    pm_owner = UserFactory(role=Role.PROGRAMME_MANAGER)
    launched.operational_owner = pm_owner
    launched.save()
    with pytest.raises(PermissionDenied):
        services.reframe(initiative=launched, user=pm_owner, values={}, rationale="Mine.")
    client.force_login(pm_owner)
    assert client.post(f"/initiatives/{launched.slug}/reframe/", _form()).status_code == 403


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rationale": "  "}, "This field is required"),
        ({"ship_threshold": "85"}, "Nothing changes"),
        ({"ship_threshold": "abc"}, "Enter a number"),
        ({"comparison_window_days": "0"}, "greater than or equal to 1"),
        ({"direction": "sideways"}, "Select a valid choice"),
    ],
)
def test_bad_reframe_input_answers_400_and_changes_nothing(
    client, launched, manager, overrides, message
):
    client.force_login(manager)
    response = client.post(f"/initiatives/{launched.slug}/reframe/", _form(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert launched.metrics.get(is_primary=True).ship_threshold == Decimal("85")
    assert not GateDecision.objects.filter(transition=T.REFRAME).exists()
    assert not FramingChange.objects.exists()


def test_reframe_in_frame_or_stopped_is_refused(manager):
    initiative = InitiativeFactory(framed=True)
    with pytest.raises(ValidationError, match="past frame"):
        services.reframe(
            initiative=initiative, user=manager, values={"ship_threshold": 1}, rationale="x"
        )
    advance(initiative, Stage.STOPPED, user=manager)
    with pytest.raises(ValidationError, match="past frame"):
        services.reframe(
            initiative=initiative, user=manager, values={"ship_threshold": 1}, rationale="x"
        )


# Proposals ----------------------------------------------------------------------------------
def test_an_owner_proposes_and_nothing_changes_until_a_manager_applies_it(
    client, launched, manager
):
    owner = launched.business_owner
    client.force_login(owner)
    response = client.post(
        f"/initiatives/{launched.slug}/propose/",
        _form(ship_threshold="80", rationale="The market moved; 80% still pays back."),
    )
    assert response.status_code == 302
    proposal = ReframeProposal.objects.get()
    assert proposal.changes == {"ship_threshold": "80"}
    assert proposal.status == ProposalStatus.OPEN
    assert launched.metrics.get(is_primary=True).ship_threshold == Decimal("85")
    assert launched.audit_entries.filter(kind="proposal").count() == 1

    client.force_login(manager)
    page = client.get(f"/initiatives/{launched.slug}/reframe/?proposal={proposal.pk}")
    assert 'value="80"' in page.content.decode()
    response = client.post(
        f"/initiatives/{launched.slug}/reframe/",
        _form(ship_threshold="80", rationale="Agreed with finance.", proposal=proposal.pk),
    )
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPLIED
    assert proposal.closed_by == manager
    assert launched.metrics.get(is_primary=True).ship_threshold == Decimal("80")
    assert audit.verify([launched.pk])[1] == []


def test_a_manager_declines_a_proposal_with_a_note(client, launched, manager):
    proposal = services.propose_reframe(
        initiative=launched,
        user=launched.business_owner,
        values={"ship_threshold": Decimal("70")},
        reason="Lower the bar.",
    )
    client.force_login(manager)
    empty = client.post(f"/initiatives/{launched.slug}/proposals/{proposal.pk}/decline/", {})
    assert empty.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.OPEN
    response = client.post(
        f"/initiatives/{launched.slug}/proposals/{proposal.pk}/decline/",
        {"note": "The threshold is what the business case rests on."},
    )
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.DECLINED
    assert launched.metrics.get(is_primary=True).ship_threshold == Decimal("85")
    assert "declined" in launched.audit_entries.filter(kind="proposal").last().summary


@pytest.mark.parametrize("who", ["manager", "executive", "viewer_owner"])
def test_only_owners_of_the_initiative_propose(client, launched, manager, executive, viewer, who):
    user = {"manager": manager, "executive": executive, "viewer_owner": viewer}[who]
    if who == "viewer_owner":
        launched.delivery_lead = viewer  # named in a field, yet still a viewer
        launched.save()
    client.force_login(user)
    response = client.post(f"/initiatives/{launched.slug}/propose/", _form())
    assert response.status_code == 403
    assert not ReframeProposal.objects.exists()


def test_a_proposal_without_a_reason_or_change_is_refused(launched):
    with pytest.raises(ValidationError, match="Say why"):
        services.propose_reframe(
            initiative=launched, user=launched.business_owner, values={}, reason=" "
        )
    with pytest.raises(ValidationError, match="Nothing changes"):
        services.propose_reframe(
            initiative=launched,
            user=launched.business_owner,
            values={"ship_threshold": Decimal("85")},
            reason="Same.",
        )
    assert not ReframeProposal.objects.exists()


# Gate 4 judges against the definition in force --------------------------------------------
def test_gate_four_waits_for_a_recompute_after_a_reframe(launched, manager):
    from gates.criteria import registry
    from tests.factories import MetricSnapshotFactory

    metric = launched.metrics.get(is_primary=True)
    MetricSnapshotFactory(metric=metric, latest=True)
    outcome = {o.key: o for o in registry.evaluate(launched, T.WIDEN)}["pilot_meets_threshold"]
    assert outcome.passed
    assert "threshold 85 in force since" in outcome.reason and "gate 1" in outcome.reason

    services.reframe(
        initiative=launched, user=manager, values={"ship_threshold": Decimal("95")}, rationale="Up."
    )
    outcome = {o.key: o for o in registry.evaluate(launched, T.WIDEN)}["pilot_meets_threshold"]
    assert not outcome.passed
    assert "predates the reframe" in outcome.reason


def test_a_reframe_recomputes_the_primary_metric_against_the_new_definition(
    launched, manager, settings, django_capture_on_commit_callbacks
):
    from gantry.celery import app
    from gates.criteria import registry
    from metrics.models import Cohort, Observation
    from tests.factories import DataFeedFactory

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    metric = launched.metrics.get(is_primary=True)
    feed = DataFeedFactory(initiative=launched)
    for hours in range(1, 8):
        for cohort, value in ((Cohort.PILOT, 90.0), (Cohort.BASELINE, 80.0)):
            Observation.objects.create(
                metric=metric,
                feed=feed,
                cohort=cohort,
                observed_at=timezone.now() - timedelta(minutes=hours),
                value=value + hours % 2,
            )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.reframe(
                initiative=launched,
                user=manager,
                values={"ship_threshold": Decimal("95")},
                rationale="Up.",
            )
    finally:
        app.conf.changes.pop("task_always_eager", None)
    metric.refresh_from_db()
    snapshot = metric.latest_snapshot
    assert snapshot is not None and "misses 95" in snapshot.summary
    outcome = {o.key: o for o in registry.evaluate(launched, T.WIDEN)}["pilot_meets_threshold"]
    assert not outcome.passed
    assert "threshold 95 in force since" in outcome.reason and "reframe" in outcome.reason


def test_a_manager_who_hands_ownership_on_still_may_not_reframe(client, launched, manager):
    pm_owner = UserFactory(username="pm-owner", role=Role.PROGRAMME_MANAGER)
    launched.operational_owner = pm_owner
    launched.save()
    # He hands the role on (recorded), then tries to move the goalposts.
    from tests.readiness.helpers import change_owner

    change_owner(launched, "operational_owner", None, by=manager)
    launched.refresh_from_db()
    assert not launched.is_owned_by(pm_owner)
    with pytest.raises(PermissionDenied):
        services.reframe(
            initiative=launched,
            user=pm_owner,
            values={"ship_threshold": Decimal("10")},
            rationale="Handover done.",
        )
    assert launched.metrics.get(is_primary=True).ship_threshold == Decimal("85")


def test_a_recompute_that_read_the_old_definition_is_not_judged_on_the_new_one(launched, manager):
    # A recompute reads the metric, a reframe commits, then the recompute writes its snapshot
    # (stamped after the reframe): gate 4 must not take that snapshot as judged on 95.
    from gates.criteria import registry
    from metrics import status
    from metrics.models import Metric, MetricSnapshot
    from metrics.stats import CohortStats

    read_before = Metric.objects.get(pk=launched.primary_metric.pk)  # threshold 85
    services.reframe(
        initiative=launched, user=manager, values={"ship_threshold": Decimal("95")}, rationale="Up."
    )
    pilot = CohortStats(count=10, mean=90.0, total=900.0, stddev=1.0)
    baseline = CohortStats(count=10, mean=80.0, total=800.0, stddev=1.0)
    row = status.evaluate(read_before, pilot, baseline, now=timezone.now(), stale=False)
    snapshot = MetricSnapshot.objects.create(**row._asdict())
    Metric.objects.filter(pk=read_before.pk).update(latest_snapshot=snapshot)
    launched = type(launched).objects.get(pk=launched.pk)

    outcomes = {o.key: o for o in registry.evaluate(launched, T.WIDEN)}
    assert snapshot.verdict == "meeting"  # against 85
    for key in ("pilot_meets_threshold", "pilot_beats_baseline"):
        assert not outcomes[key].passed
        assert "predates the reframe" in outcomes[key].reason


def test_the_value_model_is_frozen_at_gate_one_and_changed_by_a_reframe(
    client, launched, manager, framing_data
):
    metric = launched.metrics.get(is_primary=True)
    owner = launched.business_owner
    client.force_login(owner)
    # Posted to the framing form after gate 1, the value model is ignored.
    client.post(
        f"/initiatives/{launched.slug}/edit/",
        framing_data(
            launched,
            **{"metric-unit_value": "999", "metric-value_currency": "USD",
               "metric-monthly_volume": "1"},
        ),
    )  # fmt: skip
    metric.refresh_from_db()
    assert metric.unit_value is None and not metric.value_currency

    client.force_login(manager)
    response = client.post(
        f"/initiatives/{launched.slug}/reframe/",
        _form(ship_threshold="85", unit_value="38", value_currency="eur", monthly_volume="1200",
              volume_source="Claims system", rationale="Finance priced an hour saved."),
    )  # fmt: skip
    assert response.status_code == 302
    metric.refresh_from_db()
    assert (metric.unit_value, metric.value_currency) == (Decimal("38"), "EUR")
    changed = set(FramingChange.objects.values_list("field", flat=True))
    assert {"metric.unit_value", "metric.value_currency", "metric.monthly_volume"} <= changed
    assert audit.verify([launched.pk])[1] == []
