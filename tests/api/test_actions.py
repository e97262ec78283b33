"""Acting through the API: the same services, permissions and refusals as the pages."""

from decimal import Decimal

import pytest

from gates.models import GateDecision
from gates.stages import Stage
from portfolio.roles import Role
from readiness.models import ReviewItem
from tests.factories import InitiativeFactory, UserFactory
from tests.helpers import advance
from tests.readiness.helpers import EVIDENCE, LINK
from value.models import BudgetRequest

pytestmark = pytest.mark.django_db


def decide(api, initiative, transition, **body):
    body.setdefault("rationale", "Framed well; the metric is live.")
    body.setdefault("expected_stage", initiative.stage)
    return api.post(f"/api/v1/initiatives/{initiative.slug}/transitions/{transition}", body)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.EXECUTIVE, True),
        (Role.PROGRAMME_MANAGER, True),
        (Role.OWNER, False),
        (Role.VIEWER, False),
    ],
)
def test_approve_frame_follows_the_permission_table(api_as, role, allowed):
    framed = InitiativeFactory(framed=True)
    person = UserFactory(role=role)
    response = decide(api_as(person), framed, "approve_frame")
    framed.refresh_from_db()
    if allowed:
        assert response.status_code == 201, response.content
        assert response.json()["to_stage"] == framed.stage == Stage.THIN_SLICE
        assert GateDecision.objects.get(initiative=framed).decided_by == person
    else:
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert framed.stage == Stage.FRAME and not GateDecision.objects.exists()


def test_a_viewer_named_as_owner_still_writes_nothing(api_as):
    viewer = UserFactory(role=Role.VIEWER)
    framed = InitiativeFactory(framed=True, business_owner=viewer, delivery_lead=viewer)
    assert decide(api_as(viewer), framed, "approve_frame").status_code == 403


def test_a_read_token_acts_on_nothing_whatever_the_role(api_as, manager):
    framed = InitiativeFactory(framed=True)
    response = decide(api_as(manager, scope="read"), framed, "approve_frame")
    assert response.status_code == 403 and "read" in response.json()["detail"]
    framed.refresh_from_db()
    assert framed.stage == Stage.FRAME


def test_a_decision_without_a_rationale_or_a_stop_reason_is_400_with_field_errors(api_as, manager):
    framed = InitiativeFactory(framed=True)
    api = api_as(manager)
    blank = decide(api, framed, "approve_frame", rationale="   ")
    assert blank.status_code == 400 and "rationale" in blank.json()["errors"]
    no_reason = decide(api, framed, "stop")
    assert no_reason.status_code == 400 and "stop_reason" in no_reason.json()["errors"]
    missing = api.post(f"/api/v1/initiatives/{framed.slug}/transitions/stop", {})
    assert missing.status_code == 400 and "rationale" in missing.json()["errors"]
    assert not GateDecision.objects.exists()


def test_a_decision_on_a_stage_that_moved_is_409(api_as, manager):
    framed = InitiativeFactory(framed=True)
    api = api_as(manager)
    assert decide(api, framed, "approve_frame").status_code == 201
    again = decide(api, framed, "stop", stop_reason="other", expected_stage=Stage.FRAME)
    assert again.status_code == 409
    assert GateDecision.objects.count() == 1


def test_unmet_criteria_are_422_naming_them(api_as, manager):
    unframed = InitiativeFactory()  # nothing framed: gate 1 refuses
    response = decide(api_as(manager), unframed, "approve_frame")
    assert response.status_code == 422
    assert "Not yet met" in response.json()["detail"]


def test_an_unknown_transition_or_initiative_is_404(api_as, manager):
    framed = InitiativeFactory(framed=True)
    assert decide(api_as(manager), framed, "teleport").status_code == 404
    response = api_as(manager).post(
        "/api/v1/initiatives/nope/transitions/stop", {"rationale": "x", "expected_stage": "frame"}
    )
    assert response.status_code == 404


def test_malformed_json_is_a_400_problem(api_as, manager):
    framed = InitiativeFactory(framed=True)
    api = api_as(manager)
    response = api.client.post(
        f"/api/v1/initiatives/{framed.slug}/transitions/stop",
        data="{not json",
        content_type="application/json",
        headers=api.headers,
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"


def item_url(item, action):
    review = item.review
    return (
        f"/api/v1/initiatives/{review.initiative.slug}/reviews/{review.pk}/items/{item.pk}/{action}"
    )


def test_assigning_follows_the_review_pages_rules(api_as, cast, review):
    item = review.items.first()
    ok = api_as(cast.pm).post(
        item_url(item, "assign"), {"assignee": cast.delivery_lead.username, "version": 1}
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["assignee"] == cast.delivery_lead.username
    stale = api_as(cast.pm).post(item_url(item, "assign"), {"assignee": None, "version": 1})
    assert stale.status_code == 409
    for person in (cast.business_owner, cast.viewer, cast.executive):
        refused = api_as(person).post(item_url(item, "assign"), {"assignee": None, "version": 2})
        assert refused.status_code == 403
    unknown = api_as(cast.pm).post(item_url(item, "assign"), {"assignee": "nobody", "version": 2})
    assert unknown.status_code == 400 and "assignee" in unknown.json()["errors"]
    assert ReviewItem.objects.get(pk=item.pk).assignee == cast.delivery_lead


def test_only_the_assignee_checks_and_unchecks(api_as, cast, items):
    item = items["data_pipeline"]  # the delivery lead's
    body = {"evidence_text": EVIDENCE, "evidence_url": LINK, "version": item.version}
    for person in (cast.pm, cast.business_owner, cast.viewer):
        assert api_as(person).post(item_url(item, "check"), body).status_code == 403
    checked = api_as(cast.delivery_lead).post(item_url(item, "check"), body)
    assert checked.status_code == 200, checked.content
    assert checked.json()["checked"] is True
    version = checked.json()["version"]
    assert api_as(cast.pm).post(item_url(item, "uncheck"), {"version": version}).status_code == 403
    unchecked = api_as(cast.delivery_lead).post(item_url(item, "uncheck"), {"version": version})
    assert unchecked.status_code == 200 and unchecked.json()["checked"] is False


def test_checking_without_evidence_is_400_and_changes_nothing(api_as, cast, items):
    item = items["data_pipeline"]
    response = api_as(cast.delivery_lead).post(
        item_url(item, "check"), {"evidence_url": "not a link", "version": item.version}
    )
    assert response.status_code == 400
    assert response.json()["errors"]
    assert not ReviewItem.objects.get(pk=item.pk).checked


def budget_body(person, **changes):
    return {
        "kind": "run",
        "amount": "18000.00",
        "currency": "eur",
        "starts_on": "2027-01-01",
        "ends_on": "2027-12-31",
        "purpose": "Hosting and on-call for the launched assistant.",
        "answerable": person.username,
        **changes,
    }


@pytest.fixture
def launched(manager):
    initiative = InitiativeFactory(framed=True)
    advance(initiative, Stage.NARROW_LAUNCH, user=manager, upkeep=False)
    return initiative


def test_an_owner_requests_budget_with_the_evidence_frozen(api_as, launched):
    owner = launched.business_owner
    response = api_as(owner).post(
        f"/api/v1/initiatives/{launched.slug}/budget-requests", budget_body(owner)
    )
    assert response.status_code == 201, response.content
    body = response.json()
    made = BudgetRequest.objects.get(pk=body["id"])
    assert (made.requested_by, made.currency, made.amount) == (owner, "EUR", Decimal("18000.00"))
    assert body["evidence"]["stage"] == Stage.NARROW_LAUNCH == made.evidence["stage"]


@pytest.mark.parametrize("role", [Role.EXECUTIVE, Role.VIEWER, Role.OWNER])
def test_people_without_a_stake_or_the_role_request_nothing(api_as, launched, role):
    person = UserFactory(role=role)
    response = api_as(person).post(
        f"/api/v1/initiatives/{launched.slug}/budget-requests", budget_body(launched.delivery_lead)
    )
    assert response.status_code == 403
    assert not BudgetRequest.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"currency": "EURO"}, "currency"),
        ({"ends_on": "2026-12-31"}, "ends_on"),
        ({"kind": "party"}, "kind"),
        ({"answerable": "nobody"}, "answerable"),
        ({"purpose": ""}, "purpose"),
    ],
)
def test_a_bad_budget_request_is_400_naming_the_field(api_as, launched, changes, field):
    owner = launched.business_owner
    response = api_as(owner).post(
        f"/api/v1/initiatives/{launched.slug}/budget-requests", budget_body(owner, **changes)
    )
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not BudgetRequest.objects.exists()
