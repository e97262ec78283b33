"""The budget pages: request form, request page with the sponsor's decision form, and the
value and budget panel of the initiative page."""

from decimal import Decimal

import pytest

from portfolio.roles import Role
from tests.factories import UserFactory
from tests.value.test_budget import request as make_request
from value.models import BudgetDecision, BudgetLine, BudgetRequest

pytestmark = pytest.mark.django_db


def form_data(answerable, **overrides) -> dict:
    return {
        "kind": "run",
        "amount": "24000",
        "currency": "eur",
        "starts_on": "2027-01-01",
        "ends_on": "2027-12-31",
        "purpose": "Hosting and on-call for 2027.",
        "answerable": str(answerable.pk),
    } | overrides


def create_url(initiative) -> str:
    return f"/initiatives/{initiative.slug}/budget/request/"


def test_an_owner_sends_a_request_and_lands_on_it(client, launched, owner):
    client.force_login(owner)
    page = client.get(create_url(launched))
    assert page.status_code == 200
    assert b"Evidence attached" in page.content
    assert b"EUR 456,000.00" in page.content

    response = client.post(create_url(launched), form_data(owner))

    made = BudgetRequest.objects.get()
    assert response.status_code == 302
    assert response.url == made.get_absolute_url()
    assert (made.amount, made.currency, made.requested_by) == (Decimal("24000"), "EUR", owner)
    shown = client.get(response.url)
    assert b"Awaiting the sponsor" in shown.content
    assert b"Evidence, frozen when requested" in shown.content


def test_the_form_suggests_upkeep_answered_for_by_whoever_runs_a_launched_initiative(
    client, launched, owner
):
    runner = UserFactory(username="runner", role=Role.OWNER)
    launched.operational_owner = runner
    launched.save(update_fields=["operational_owner"])
    client.force_login(owner)

    initial = client.get(create_url(launched)).context["form"].initial

    assert initial == {"currency": "EUR", "kind": "run", "answerable": runner.pk}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "-1"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"currency": ""}, "currency"),
        ({"ends_on": "2026-01-01"}, "ends_on"),
        ({"purpose": ""}, "purpose"),
    ],
)
def test_bad_input_shows_the_field_error_and_writes_nothing(
    client, launched, owner, overrides, field
):
    client.force_login(owner)

    response = client.post(create_url(launched), form_data(owner, **overrides))

    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert not BudgetRequest.objects.exists()


def test_a_viewer_answerable_is_refused(client, launched, owner, viewer):
    client.force_login(owner)
    response = client.post(create_url(launched), form_data(viewer))
    assert response.status_code == 400
    assert "answerable" in response.context["form"].errors


@pytest.mark.parametrize("who", ["viewer", "executive", "sponsor"])
def test_who_may_not_request_gets_403_for_the_form_and_the_post(client, request, launched, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    assert client.get(create_url(launched)).status_code == 403
    assert client.post(create_url(launched), form_data(user)).status_code == 403
    assert not BudgetRequest.objects.exists()


def test_the_sponsor_approves_from_the_request_page(client, launched, owner, sponsor):
    made = make_request(launched, owner)
    client.force_login(sponsor)
    page = client.get(made.get_absolute_url())
    assert b"Record the decision" in page.content

    response = client.post(
        made.get_absolute_url() + "decide/", {"outcome": "approved", "rationale": "Backed."}
    )

    assert response.status_code == 302 and response.url == made.get_absolute_url()
    assert BudgetLine.objects.get().request == made
    after = client.get(made.get_absolute_url())
    assert b"Record the decision" not in after.content
    initiative_page = client.get(launched.get_absolute_url())
    assert b"Budget lines" in initiative_page.content
    assert b"EUR 24,000.00" in initiative_page.content


def test_a_decision_without_rationale_shows_the_error(client, launched, owner, sponsor):
    made = make_request(launched, owner)
    client.force_login(sponsor)

    response = client.post(made.get_absolute_url() + "decide/", {"outcome": "approved"})

    assert response.status_code == 400
    assert response.context["form"].errors["rationale"]
    assert not BudgetDecision.objects.exists()


@pytest.mark.parametrize("who", ["manager", "executive", "owner", "viewer"])
def test_only_the_sponsor_decides(client, request, launched, owner, who):
    made = make_request(launched, owner)
    client.force_login(request.getfixturevalue(who))

    page = client.get(made.get_absolute_url())
    response = client.post(
        made.get_absolute_url() + "decide/", {"outcome": "approved", "rationale": "Go."}
    )

    assert page.status_code == 200  # everyone sees the request and its evidence
    assert b"Record the decision" not in page.content
    assert response.status_code == 403
    assert not BudgetDecision.objects.exists()


def test_a_get_of_the_decide_address_goes_back_to_the_request(client, launched, owner, sponsor):
    made = make_request(launched, owner)
    client.force_login(sponsor)

    response = client.get(made.get_absolute_url() + "decide/")

    assert response.status_code == 302 and response.url == made.get_absolute_url()


def test_a_request_of_another_initiative_is_not_found(client, launched, owner, sponsor):
    from tests.factories import InitiativeFactory

    made = make_request(launched, owner)
    other = InitiativeFactory()
    client.force_login(sponsor)

    response = client.get(f"/initiatives/{other.slug}/budget/requests/{made.pk}/")

    assert response.status_code == 404


def test_the_initiative_page_shows_value_realised_with_its_interval(client, launched):
    client.force_login(UserFactory(role=Role.VIEWER))

    page = client.get(launched.get_absolute_url())

    assert b"Value and budget" in page.content
    assert b"EUR 456,000.00" in page.content
    assert b"90% interval" in page.content
    assert b"Request budget" not in page.content  # a viewer asks for nothing


def test_the_admin_shows_budget_rows_and_writes_none(admin_client, launched, owner):
    made = make_request(launched, owner)
    for path in ("budgetrequest", "budgetdecision", "budgetline"):
        assert admin_client.get(f"/admin/value/{path}/").status_code == 200
        assert admin_client.get(f"/admin/value/{path}/add/").status_code == 403
    page = admin_client.get(f"/admin/value/budgetrequest/{made.pk}/change/")
    assert page.status_code == 200 and b'name="amount"' not in page.content
    admin_client.post(f"/admin/value/budgetrequest/{made.pk}/delete/", {"post": "yes"})
    assert BudgetRequest.objects.filter(pk=made.pk).exists()
