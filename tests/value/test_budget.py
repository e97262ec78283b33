"""Budget requests and decisions: who may, what is frozen, what is recorded."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from gates import audit
from gates.models import AuditEntry
from gates.stages import Stage
from metrics.models import Verdict
from portfolio.models import FlagKind
from portfolio.roles import Role
from tests.factories import (
    InitiativeFactory,
    MetricSnapshotFactory,
    PurgatoryFlagFactory,
    UserFactory,
)
from value import services
from value.models import BudgetDecision, BudgetLine, BudgetRequest, Outcome

pytestmark = pytest.mark.django_db

TODAY = date(2026, 12, 5)


def values(**overrides) -> dict:
    return {
        "kind": "run",
        "amount": "24000.00",
        "currency": "eur",
        "starts_on": date(2027, 1, 1),
        "ends_on": date(2027, 12, 31),
        "purpose": "Hosting, monitoring and on-call for 2027.",
        "answerable": UserFactory(username="answerable", role=Role.OWNER),
    } | overrides


def request(initiative, user, **overrides) -> BudgetRequest:
    return services.request_budget(initiative=initiative, user=user, values=values(**overrides))


# Requesting ---------------------------------------------------------------------------------
def test_an_owner_requests_with_the_evidence_frozen_and_sealed(launched, owner):
    PurgatoryFlagFactory(initiative=launched, kind=FlagKind.STUCK, reason="71 days in launch.")

    made = request(launched, owner)

    assert made.amount == Decimal("24000.00") and made.currency == "EUR"
    evidence = made.evidence
    assert evidence["stage"] == Stage.NARROW_LAUNCH
    assert evidence["snapshot"]["verdict"] == Verdict.MEETING
    assert evidence["value"]["status"] == "measured"
    assert evidence["value"]["monthly"] == "456000.00"
    assert Decimal(evidence["value"]["low"]) < Decimal(evidence["value"]["high"])
    assert evidence["flags"] == [
        {"kind": "stuck", "label": "Stuck in stage", "reason": "71 days in launch."}
    ]
    entry = AuditEntry.objects.get(initiative=launched, source="value.budgetrequest")
    assert entry.kind == "budget" and "24,000.00" in entry.summary
    assert audit.verify([launched.pk])[1] == []


def test_the_evidence_does_not_change_when_later_data_arrives(launched, owner):
    made = request(launched, owner)
    frozen = dict(made.evidence)
    metric = launched.metrics.get(is_primary=True)

    MetricSnapshotFactory(
        metric=metric, verdict=Verdict.BELOW, pilot_value=70.0, latest=True,
        computed_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip

    assert BudgetRequest.objects.get(pk=made.pk).evidence == frozen
    assert frozen["snapshot"]["verdict"] == Verdict.MEETING
    assert services.evidence_of(launched)["snapshot"]["verdict"] == Verdict.BELOW


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("manager", True),
        ("owner", True),  # named business owner, owner role
        ("other_owner", False),  # owner role, not named
        ("executive", False),
        ("sponsor", False),
        ("viewer_named", False),  # viewer named as delivery lead: the role bounds the power
        ("viewer", False),
    ],
)
def test_who_may_request(request, launched, who, allowed):
    if who == "other_owner":
        user = UserFactory(role=Role.OWNER)
    elif who == "viewer_named":
        user = UserFactory(role=Role.VIEWER)
        type(launched).objects.filter(pk=launched.pk).update(delivery_lead=user)
        launched.refresh_from_db()
    else:
        user = request.getfixturevalue(who)

    if allowed:
        assert globals()["request"](launched, user).pk
    else:
        with pytest.raises(PermissionDenied):
            globals()["request"](launched, user)
        assert not BudgetRequest.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "twelve"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "10.005"}, "amount"),
        ({"currency": ""}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "€"}, "currency"),
        ({"kind": "bonus"}, "kind"),
        ({"starts_on": None}, "starts_on"),
        ({"ends_on": date(2026, 12, 31)}, "ends_on"),
        ({"purpose": "   "}, "purpose"),
        ({"answerable": None}, "answerable"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(launched, owner, overrides, field):
    with pytest.raises(ValidationError) as raised:
        request(launched, owner, **overrides)

    assert field in raised.value.message_dict
    assert not BudgetRequest.objects.exists()
    assert not AuditEntry.objects.filter(kind="budget").exists()


def test_a_viewer_cannot_be_made_answerable(launched, owner, viewer):
    with pytest.raises(ValidationError) as raised:
        request(launched, owner, answerable=viewer)
    assert "answerable" in raised.value.message_dict


def test_a_stopped_initiative_takes_no_budget(launched, manager):
    type(launched).objects.filter(pk=launched.pk).update(stage=Stage.STOPPED)
    with pytest.raises(ValidationError):
        request(launched, manager)


def test_requests_are_never_changed_or_deleted(launched, owner):
    made = request(launched, owner)
    with pytest.raises(Exception, match="cannot be changed"):
        BudgetRequest.objects.filter(pk=made.pk).update(amount=1)
    with pytest.raises(Exception, match="cannot be deleted"):
        made.delete()


# Deciding -----------------------------------------------------------------------------------
def test_the_sponsor_approves_and_the_line_opens(launched, owner, sponsor):
    made = request(launched, owner)

    decision = services.decide(
        request=made, user=sponsor, outcome=Outcome.APPROVED, rationale="Backed by the pilot."
    )

    line = BudgetLine.objects.get(request=made)
    assert decision.outcome == Outcome.APPROVED
    assert (line.kind, line.amount, line.currency) == ("run", Decimal("24000.00"), "EUR")
    assert (line.starts_on, line.ends_on) == (date(2027, 1, 1), date(2027, 12, 31))
    assert line.answerable == made.answerable
    kinds = list(
        AuditEntry.objects.filter(initiative=launched, kind="budget")
        .order_by("seq")
        .values_list("source", flat=True)
    )
    assert kinds == ["value.budgetrequest", "value.budgetdecision", "value.budgetline"]
    assert audit.verify([launched.pk])[1] == []


def test_a_rejection_opens_no_line(launched, owner, sponsor):
    made = request(launched, owner)

    services.decide(request=made, user=sponsor, outcome=Outcome.REJECTED, rationale="Not yet.")

    assert not BudgetLine.objects.exists()
    assert BudgetDecision.objects.get(request=made).outcome == Outcome.REJECTED


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("sponsor", True),
        ("pm_sponsor", True),
        ("executive", False),  # an executive, not this initiative's sponsor
        ("manager", False),
        ("owner", False),
        ("viewer_sponsor", False),  # a viewer named as sponsor: the role bounds the power
        ("requester_sponsor", False),  # segregation of duties
    ],
)
def test_who_may_decide(request, launched, owner, who, allowed):
    requester = owner
    if who == "pm_sponsor":
        user = UserFactory(role=Role.PROGRAMME_MANAGER)
    elif who == "viewer_sponsor":
        user = UserFactory(role=Role.VIEWER)
    elif who == "requester_sponsor":
        user = requester = UserFactory(role=Role.PROGRAMME_MANAGER)
    else:
        user = request.getfixturevalue(who)
    if who in ("pm_sponsor", "viewer_sponsor", "requester_sponsor"):
        type(launched).objects.filter(pk=launched.pk).update(sponsor=user)
        launched.refresh_from_db()
    made = globals()["request"](launched, requester)

    def deciding():
        return services.decide(request=made, user=user, outcome=Outcome.APPROVED, rationale="Go.")

    if allowed:
        assert deciding().pk
    else:
        with pytest.raises(PermissionDenied):
            deciding()
        assert not BudgetDecision.objects.exists() and not BudgetLine.objects.exists()


def test_a_request_is_decided_once(launched, owner, sponsor):
    made = request(launched, owner)
    services.decide(request=made, user=sponsor, outcome=Outcome.REJECTED, rationale="No.")

    with pytest.raises(ValidationError, match="already been decided"):
        services.decide(request=made, user=sponsor, outcome=Outcome.APPROVED, rationale="Yes.")
    assert not BudgetLine.objects.exists()


@pytest.mark.parametrize(("outcome", "rationale"), [("maybe", "Hm."), ("approved", "  ")])
def test_a_decision_needs_an_outcome_and_a_rationale(launched, owner, sponsor, outcome, rationale):
    made = request(launched, owner)
    with pytest.raises(ValidationError):
        services.decide(request=made, user=sponsor, outcome=outcome, rationale=rationale)
    assert not BudgetDecision.objects.exists()


def test_a_sponsor_replaced_before_deciding_decides_nothing(launched, owner, sponsor):
    made = request(launched, owner)
    # The request object still names the old sponsor on its initiative; the service reads
    # the sponsor again under the lock.
    made.initiative.sponsor = sponsor
    type(launched).objects.filter(pk=launched.pk).update(sponsor=UserFactory(role=Role.EXECUTIVE))

    with pytest.raises(PermissionDenied):
        services.decide(request=made, user=sponsor, outcome=Outcome.APPROVED, rationale="Go.")
    assert not BudgetDecision.objects.exists()


def test_metric_with_no_value_model_is_recorded_as_such(sponsor, owner):
    initiative = InitiativeFactory(
        framed=True, stage=Stage.WIDE_LAUNCH, sponsor=sponsor, business_owner=owner
    )
    made = request(initiative, owner)
    assert made.evidence["value"]["status"] == "no_value_model"
    assert made.evidence["snapshot"] is None
